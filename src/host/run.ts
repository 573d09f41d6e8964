// The one way crisp runs programs. A short-lived command whose output is collected goes
// through the spawn helper when there is one (see spawn-helper.ts for why), directly otherwise
// (`run`); a program crisp talks to through its stdio while it runs (a relay, zstd, an exec) is
// started by `start`, which every such caller shares: no shell, its exit as one number, a
// closed stdin never an unhandled error.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { HelperGone, spawnHelper, type Helper } from './spawn-helper.js';

export interface StartedProgram {
  child: ChildProcess;
  /**
   * Its exit code (128+n when signal n ended it) once it has exited and its stdio closed.
   * Rejects with Node's spawn error (which names the program) when it could not be started.
   */
  exited: Promise<number>;
  /** Whether it has been started and not yet exited. */
  running(): boolean;
}

/** Starts a program without a shell; the caller owns its stdio and its end. */
export function start(file: string, args: readonly string[], options: SpawnOptions = {}): StartedProgram {
  const child = spawn(file, args, options);
  // A program that exits or closes its stdin makes later writes fail with EPIPE; its exit
  // status is what matters, so the stream error is ignored.
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
  });
  exited.catch(() => undefined); // a caller that only kills the program need not await it
  return { child, exited, running: () => child.pid !== undefined && child.exitCode === null && child.signalCode === null };
}

/** The number of a signal by name (0 for none or an unknown name). */
export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : ((osConstants.signals as Record<string, number | undefined>)[signal] ?? 0);
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** The child's whole environment (not merged with ours). Defaults to ours. */
  env?: NodeJS.ProcessEnv;
  /** SIGKILL the child after this long; the result then has `timedOut: true`. */
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a program without a shell and collects its output. Never rejects for a non-zero exit:
 * callers decide what a failure means (a CNI plugin's error is JSON on stdout, for instance).
 * Rejects only when the program cannot be started at all.
 */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const helper = spawnHelper();
  return helper ? runThrough(helper, file, args, options) : runDirect(file, args, options);
}

/** run() through a given spawn helper. */
export async function runThrough(helper: Helper, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  try {
    const r = await helper.run({ file, args, ...options });
    if (r.spawnError) throw Object.assign(new Error(`spawn ${file} ${r.spawnError}`), { code: r.spawnError.split(/[\s:]/)[0], path: file });
    return { code: r.code, signal: r.signal, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), timedOut: r.timedOut };
  } catch (err) {
    // Sent but not answered: whether it ran is unknown, so it is not run again here.
    if (err instanceof HelperGone) throw new Error(`${file}: ${err.message} before it answered`);
    throw err;
  }
}

export async function runDirect(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { child, exited } = start(file, args, {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let timedOut = false;
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs);
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.end(options.input ?? '');
  try {
    await exited;
  } finally {
    if (timer) clearTimeout(timer);
  }
  return {
    code: child.exitCode,
    signal: child.signalCode,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    timedOut,
  };
}

/** One line describing why a command failed, for error messages. */
export function describeFailure(file: string, args: readonly string[], r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ');
  return `${[file, ...args].join(' ')} ${how}${detail ? `: ${detail}` : ''}`;
}
