// The system calls Node lacks that layers and root filesystems need. mknod and setxattr/getxattr
// are done with the standard tools of coreutils and attr, spawned without a shell: a fresh node
// would need a compiler and Node headers for an N-API addon, and these calls are rare (a layer
// makes one mknod, its whiteouts are hard links to it, and one setfattr for all its xattrs). The
// *Sync variants block their thread and are meant for the unpack worker only. mount and umount
// are in host/syscalls.ts (the spawn helper's system calls), used by overlay.ts.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { run as runCommand } from '../../host/run.js';
import { internal } from '../../errors.js';

export type DeviceKind = 'char' | 'block';
export type Xattr = { path: string; name: string; value: Buffer };

const modeArg = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/** Creates a device node with exactly `mode` (the umask does not apply). */
export function mknodSync(path: string, kind: DeviceKind, major: number, minor: number, mode: number): void {
  checkSync(
    'mknod',
    spawnSync('mknod', ['-m', modeArg(mode), '--', path, kind === 'char' ? 'c' : 'b', String(major), String(minor)]),
  );
}

/** Creates FIFOs, all in one process, with exactly `mode`. */
export function mkfifoSync(paths: string[], mode: number): void {
  if (paths.length === 0) return;
  checkSync('mkfifo', spawnSync('mkfifo', ['-m', modeArg(mode), '--', ...paths]));
}

/**
 * Sets many extended attributes in one process (setfattr --restore), on the links themselves
 * rather than what symlinks point to. Relative paths are taken from `cwd`.
 */
export function setXattrsSync(cwd: string, xattrs: Xattr[]): void {
  if (xattrs.length === 0) return;
  const lines: string[] = [];
  for (const x of xattrs) {
    lines.push(`# file: ${quote(Buffer.from(x.path))}`, `${quote(Buffer.from(x.name))}=0x${x.value.toString('hex')}`, '');
  }
  checkSync('setfattr', spawnSync('setfattr', ['-h', '--restore=-'], { cwd, input: lines.join('\n') }));
}

/** All extended attributes of a path (not following a final symlink), every namespace. */
export async function getXattrs(path: string): Promise<Map<string, Buffer>> {
  const out = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', path]);
  const xattrs = new Map<string, Buffer>();
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) xattrs.set(unquote(m[1]!), Buffer.from(m[2]!, 'hex'));
  }
  return xattrs;
}

async function run(cmd: string, args: string[]): Promise<string> {
  let r;
  try {
    r = await runCommand(cmd, args);
  } catch (err) {
    throw internal(`${cmd} ${args.join(' ')} failed: ${(err as Error).message}`, err);
  }
  if (r.code !== 0) throw internal(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || `exited with ${r.signal ?? r.code}`}`);
  return r.stdout;
}

function checkSync(cmd: string, r: SpawnSyncReturns<Buffer>): void {
  if (r.error) throw internal(`${cmd} could not run: ${r.error.message}`, r.error);
  if (r.status !== 0) {
    throw internal(`${cmd} failed (${r.status ?? r.signal}): ${r.stderr.toString().trim()}`);
  }
}

/**
 * The escaping attr and the kernel's mountinfo share: a backslash and 3 octal digits for bytes
 * that would break the line-oriented format.
 */
function quote(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) {
    s += b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  return s;
}

function unquote(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.toString('latin1', i + 1, i + 4))) {
      bytes.push(parseInt(raw.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
