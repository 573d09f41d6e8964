// Launching conmon the way CRI-O does: conmon gets two extra descriptors, a start pipe it
// blocks on until we are ready (so it can be adjusted before it forks anything) and a sync
// pipe on which it reports the container's pid as JSON, or pid -1 with runc's stderr.
// conmon double-forks into its own session, so it outlives us.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { basename, join } from 'node:path';
import { internal, deadlineExceeded } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { adjustOomScore } from './oom-score.js';
import { runcErrorText } from './runc.js';
import { spawnHelper, type Helper } from '../../host/spawn-helper.js';

export interface ConmonCreateOptions {
  conmonPath: string;
  runtimePath: string;
  runtimeRoot: string;
  id: string;
  bundle: string;
  logPath: string;
  exitsDir: string;
  /** conmon's persist dir and working directory: its `exit` and `oom` files land here. */
  containerDir: string;
  containerPidFile: string;
  conmonPidFile: string;
  /** conmon links `<socketDir>/<id>` to the bundle, where the attach socket lives. */
  socketDir: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  logSizeMax?: number;
  /**
   * cgroup directories (one per hierarchy) conmon is moved into before it is let run, made when
   * missing: it and the runtime it starts never run in the daemon's cgroup.
   */
  cgroupDirs?: readonly string[];
}

/** conmon's command line for a container create (no exec): pure, for tests and logs. */
export function conmonCreateArgs(o: ConmonCreateOptions): string[] {
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.id,
    '-n', o.id,
    '-b', o.bundle,
    '-r', o.runtimePath,
    '--runtime-arg', `--root=${o.runtimeRoot}`,
    '-p', o.containerPidFile,
    '-P', o.conmonPidFile,
    '--persist-dir', o.containerDir,
    '--exit-dir', o.exitsDir,
    '--socket-dir-path', o.socketDir,
    '-l', `k8s-file:${o.logPath}`,
    '--log-level', 'warning',
  ];
  if (o.logSizeMax !== undefined && o.logSizeMax > 0) args.push('--log-size-max', String(o.logSizeMax));
  if (o.terminal) {
    args.push('-t');
  } else if (o.stdin) {
    args.push('-i');
    if (!o.stdinOnce) args.push('--leave-stdin-open');
  }
  return args;
}

interface SyncMessage {
  data?: number;
  pid?: number;
  message?: string;
}

export interface LaunchedConmon {
  /** The container's init pid. */
  pid: number;
  /** The daemonized conmon (not the short-lived process we spawned). */
  conmonPid: number;
  /**
   * conmon's sync pipe, whose other end conmon holds until it exits: 'close' is conmon's death
   * notice for as long as this process (or the spawn helper holding the pipe) lives.
   */
  lifeline: ConmonLifeline;
}

export interface ConmonLifeline {
  once(event: 'close', listener: () => void): unknown;
  destroy(): void;
}

/**
 * Starts conmon, lets it run `runc create`, and returns the pids. On failure throws with
 * runc's own error text; conmon has exited (or been killed) by then. The caller owns the
 * cleanup of runc state, cgroup and files.
 */
export async function launchConmon(
  o: ConmonCreateOptions,
  opts: { timeoutMs: number; logger?: Logger },
): Promise<LaunchedConmon> {
  const helper = spawnHelper();
  return helper ? launchThroughHelper(helper, o, opts) : launchDirectly(o, opts);
}

const conmonEnv = () => ({ PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' });

/** The pid conmon reported, or the runtime's error it carried. */
function reportedPid(o: ConmonCreateOptions, msg: SyncMessage): number {
  const pid = msg.data ?? msg.pid ?? -1;
  if (pid <= 0) {
    const text = msg.message ? runcErrorText(msg.message) : 'the runtime reported no error text';
    throw internal(`container ${o.id}: create failed: ${text}`);
  }
  return pid;
}

/** The spawn helper forks conmon (see host/spawn-helper.ts), so the daemon's fork cost is not paid. */
async function launchThroughHelper(helper: Helper, o: ConmonCreateOptions, opts: { timeoutMs: number }): Promise<LaunchedConmon> {
  const { reply, lifeline } = helper.launchConmon({
    file: o.conmonPath, args: conmonCreateArgs(o), cwd: o.containerDir, env: conmonEnv(), timeoutMs: opts.timeoutMs,
    cgroups: o.cgroupDirs,
  });
  try {
    const r = await reply;
    // The helper's own failure to move it (it killed conmon then), or conmon that could not start.
    if (r.spawnError.startsWith('moving conmon into ')) throw internal(`container ${o.id}: ${r.spawnError}`);
    if (r.spawnError) throw internal(`cannot run conmon at ${o.conmonPath}: ${r.spawnError}`);
    if (r.timedOut) throw deadlineExceeded(`container ${o.id}: conmon did not report within ${opts.timeoutMs} ms`);
    if (r.code !== 0) throw internal(`container ${o.id}: conmon failed (exit ${r.code ?? r.signal}): ${r.stderr.toString().trim()}`);
    if (!r.sync) throw internal('conmon exited without reporting the container pid');
    let msg: SyncMessage;
    try {
      msg = JSON.parse(r.sync) as SyncMessage;
    } catch {
      throw internal(`conmon sent an unreadable sync message: ${JSON.stringify(r.sync.slice(0, 200))}`);
    }
    const pid = reportedPid(o, msg);
    const conmonPid = Number.parseInt(readFileSync(o.conmonPidFile, 'utf8').trim(), 10);
    return { pid, conmonPid, lifeline };
  } catch (err) {
    lifeline.destroy();
    throw err;
  }
}

async function launchDirectly(o: ConmonCreateOptions, opts: { timeoutMs: number; logger?: Logger }): Promise<LaunchedConmon> {
  const logger = opts.logger ?? silentLogger;
  const child = spawn(o.conmonPath, conmonCreateArgs(o), {
    cwd: o.containerDir,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: conmonEnv(),
  });
  const sync = child.stdio[3] as Readable & Socket;
  const start = child.stdio[4] as Writable & Socket;
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(internal(`cannot run conmon at ${o.conmonPath}: ${e.message}`, e)));
  });
  const intermediateExit = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  const report = readSyncMessage(sync);
  report.catch(() => undefined); // awaited below; this only keeps an early EOF from going unhandled
  let timer: NodeJS.Timeout | undefined;
  try {
    await spawned;
    if (child.pid !== undefined) moveIntoCgroups(o.id, child.pid, o.cgroupDirs ?? []);
    // conmon tries -1000 itself and fails without CAP_SYS_RESOURCE; give it the best we may
    if (child.pid !== undefined) await adjustOomScore(child.pid, -1000, logger);
    start.end(Buffer.from([0]));
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(deadlineExceeded(`container ${o.id}: conmon did not report within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
    });
    const code = await Promise.race([intermediateExit, timeout]);
    if (code !== 0) {
      throw internal(`container ${o.id}: conmon failed (exit ${code}): ${Buffer.concat(stderr).toString().trim()}`);
    }
    const msg = await Promise.race([report, timeout]);
    const pid = reportedPid(o, msg);
    const conmonPid = Number.parseInt(readFileSync(o.conmonPidFile, 'utf8').trim(), 10);
    sync.unref();
    return { pid, conmonPid, lifeline: sync };
  } catch (err) {
    sync.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
    start.destroy();
    child.stderr?.destroy();
    child.unref();
  }
}

/** What the spawn helper does for a conmon it launches, here for one started directly. */
function moveIntoCgroups(id: string, pid: number, dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    } catch (err) {
      throw internal(`container ${id}: moving conmon into ${dir}: ${(err as Error).message}`, err);
    }
  }
}

/** The first JSON line conmon writes on the sync pipe; EOF first means conmon died silently. */
function readSyncMessage(sync: Readable): Promise<SyncMessage> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sync.off('data', onData);
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as SyncMessage);
      } catch {
        reject(internal(`conmon sent an unreadable sync message: ${JSON.stringify(buf.slice(0, 200))}`));
      }
    };
    sync.on('data', onData);
    sync.once('close', () => reject(internal('conmon exited without reporting the container pid')));
    sync.once('error', () => undefined);
  });
}

/** Whether `pid` is a live conmon monitoring container `id` (guards against pid reuse). */
export async function isConmonFor(pid: number, id: string, conmonPath: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    // procfs: sync reads cost a tenth of fs/promises' CPU (see files.ts)
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // a zombie has no cmdline and is as good as gone
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const exe = argv[0] ?? '';
    if (exe !== conmonPath && basename(exe) !== basename(conmonPath)) return false;
    const cid = argv.indexOf('-c');
    return cid >= 0 && argv[cid + 1] === id;
  } catch {
    return false;
  }
}
