// The one way crisp runs a short-lived command and collects its output: through the spawn
// helper when there is one (see spawn-helper.ts for why), directly otherwise.
import { spawn } from 'node:child_process';
import { HelperGone, spawnHelper } from './spawn-helper.js';

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
  if (helper) {
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
  return runDirect(file, args, options);
}

export function runDirect(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
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
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; its exit
    // status is what matters, so the stream error is ignored.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** One line describing why a command failed, for error messages. */
export function describeFailure(file: string, args: readonly string[], r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ');
  return `${[file, ...args].join(' ')} ${how}${detail ? `: ${detail}` : ''}`;
}
