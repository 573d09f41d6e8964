// The floor every container benchmark is measured against: conmon + runc driven by hand on a
// prepared bundle, with the same sync-pipe protocol crisp speaks and nothing else.
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const RUNC = '/usr/sbin/runc';
export const CONMON = '/usr/bin/conmon';

export interface Sample {
  createStartMs: number;
  cycleMs: number;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args[2]}: ${err.trim()}`))));
  });
}

/** Resolves once `dir/name` exists (an exit file conmon writes). */
export function waitForFile(dir: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const w = watch(dir, (_e, f) => {
      if (f === name) done();
    });
    const done = () => {
      w.close();
      resolve();
    };
    access(join(dir, name)).then(done, () => undefined);
  });
}

export interface HandCreate {
  id: string;
  bundle: string;
  runcRoot: string;
  exits: string;
  attachDir: string;
  /** conmon's persist dir and cwd: pid files and the log land here. */
  dir: string;
}

/** conmon runs `runc create`, with the sync and start pipes CRI-O's protocol uses, and nothing else. */
export async function createByHand(o: HandCreate): Promise<void> {
  const { id, dir } = o;
  const child = spawn(
    CONMON,
    ['--api-version', '1', '-c', id, '-u', id, '-n', id, '-b', o.bundle, '-r', RUNC, '--runtime-arg', `--root=${o.runcRoot}`,
      '-p', join(dir, 'pidfile'), '-P', join(dir, 'conmon.pid'), '--persist-dir', dir, '--exit-dir', o.exits,
      '--socket-dir-path', o.attachDir, '-l', `k8s-file:${join(dir, 'log')}`],
    { cwd: dir, detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'], _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' } },
  );
  const sync = child.stdio[3] as Readable;
  const reply = new Promise<string>((resolve, reject) => {
    let buf = '';
    sync.once('close', () => reject(new Error(`conmon exited without reporting a pid for ${id}`)));
    sync.on('data', (b: Buffer) => {
      buf += b;
      if (buf.includes('\n')) resolve(buf);
    });
  });
  (child.stdio[4] as Writable).end(Buffer.from([0]));
  const msg = JSON.parse(await reply) as { data: number; message?: string };
  sync.destroy();
  child.unref();
  if (msg.data <= 0) throw new Error(`create by hand failed: ${msg.message}`);
}

/**
 * conmon + runc by hand: the least work a conmon-based runtime can do per container. `runDir` holds
 * what a runtime keeps under its runroot: runc's state, conmon's files, the exit files.
 */
export async function directCycle(runDir: string, bundle: string, id: string): Promise<Sample> {
  const root = join(runDir, 'direct-runc');
  const exits = join(runDir, 'direct-exits');
  const dir = join(runDir, 'direct-run', id);
  await mkdir(dir, { recursive: true });
  await mkdir(exits, { recursive: true });
  await mkdir(join(runDir, 'direct-attach'), { recursive: true });
  const t0 = performance.now();
  await createByHand({ id, bundle, runcRoot: root, exits, attachDir: join(runDir, 'direct-attach'), dir });
  await run(RUNC, ['--root', root, 'start', id]);
  const t1 = performance.now();
  const exited = waitForFile(exits, id);
  await run(RUNC, ['--root', root, 'kill', id, 'KILL']);
  await exited;
  await run(RUNC, ['--root', root, 'delete', '--force', id]);
  await rm(dir, { recursive: true, force: true });
  await rm(join(exits, id), { force: true });
  await rm(join(runDir, 'direct-attach', id), { force: true });
  return { createStartMs: t1 - t0, cycleMs: performance.now() - t0 };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

