// ExecSync: `runc exec` in the foreground, output captured up to a cap, with a deadline.
// On the deadline the exec'd processes are killed while runc is still alive to reap them;
// killing runc first would hand them to the container's init, which may never reap them.
import type { Readable } from 'node:stream';
import { internal } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { errCode, removePath, waitForFile } from '../../host/files.js';
import { start } from '../../host/run.js';
import { killProcessTree, readPidFile } from './process-tree.js';
import type { Runc } from './runc.js';
import type { ExecSyncResult } from './types.js';

export const DEFAULT_MAX_EXEC_OUTPUT = 16 * 1024 * 1024;
const RUNC_EXIT_GRACE_MS = 5000;

class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(b: Buffer): void {
    const room = this.cap - this.size;
    if (b.length > room) {
      this.truncated = true;
      if (room > 0) {
        this.chunks.push(b.subarray(0, room));
        this.size += room;
      }
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
  }
  value(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export interface ExecSyncOptions {
  runc: Runc;
  id: string;
  cmd: string[];
  timeoutSeconds: number;
  maxOutputBytes: number;
  /** Where runc writes the exec'd process's host pid; removed afterwards. */
  pidFile: string;
  /** The process to run (exec-process-file.ts); removed afterwards. */
  processFile: string;
  logger?: Logger;
}

export async function execSyncWithRunc(o: ExecSyncOptions): Promise<ExecSyncResult> {
  const logger = o.logger ?? silentLogger;
  const { child, exited } = start(o.runc.path, [...o.runc.globalArgs(), 'exec', '--pid-file', o.pidFile, '--process', o.processFile, o.id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = new CappedBuffer(o.maxOutputBytes);
  const stderr = new CappedBuffer(o.maxOutputBytes);
  (child.stdout as Readable).on('data', (b: Buffer) => stdout.push(b));
  (child.stderr as Readable).on('data', (b: Buffer) => stderr.push(b));
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const closed = exited.catch((e: Error) => Promise.reject(internal(`cannot run ${o.runc.path}: ${e.message}`, e)));
  try {
    if (o.timeoutSeconds > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        void killExecTree(child.pid!, o.pidFile, closed, logger);
      }, o.timeoutSeconds * 1000);
    }
    const exitCode = await closed;
    return { stdout: stdout.value(), stderr: stderr.value(), exitCode, truncated: stdout.truncated || stderr.truncated, timedOut };
  } finally {
    clearTimeout(timer);
    await removePath(o.pidFile);
    await removePath(o.processFile);
  }
}

/**
 * Kills the exec'd process and everything it started, leaves first: a parent still alive
 * reaps its killed child, whereas a child orphaned by its parent's death is handed to the
 * container's init, which may never reap it (a zombie until the container ends). The exec'd
 * process itself is runc's child, so runc reaps it and exits; runc is killed only if it
 * lingers past a grace period.
 */
async function killExecTree(runcPid: number, pidFile: string, closed: Promise<number>, logger: Logger): Promise<void> {
  const runcDone = closed.then(() => true, () => true);
  let execPid = await readPidFile(pidFile);
  if (execPid === null) {
    // runc has not started the process yet; give it a moment rather than orphan runc init
    await waitForFile(pidFile, AbortSignal.timeout(1000)).catch(() => undefined);
    execPid = await readPidFile(pidFile);
  }
  await killProcessTree(execPid ?? runcPid, { untilReaped: true, logger });
  const exited = await Promise.race([runcDone, sleepUnref(RUNC_EXIT_GRACE_MS).then(() => false)]);
  if (!exited) {
    logger.warn({ runcPid }, 'exec timeout: runc exec did not exit after its process was killed; killing it');
    sigkill(runcPid, logger);
  }
}

function sigkill(pid: number, logger: Logger): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errCode(err) !== 'ESRCH') logger.warn({ pid, err }, 'exec timeout: kill failed');
  }
}

function sleepUnref(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
