// The few runc invocations the monitor makes directly (state, start, kill, delete, update):
// everything else runs under conmon. Errors carry runc's own words.
import { run } from '../../host/run.js';
import { internal, notFound, failedPrecondition, type CrispError } from '../../errors.js';

export interface RuncResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** runc's logrus lines (`level=error msg="..."`) → just the messages; plain text passes through. */
export function runcErrorText(stderr: string): string {
  const messages: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /\bmsg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (m?.[1] !== undefined) {
      const level = /\blevel=(\w+)/.exec(line)?.[1];
      if (level === undefined || level === 'error' || level === 'fatal') messages.push(unquoteGo(m[1]));
    } else if (line.trim() !== '') {
      messages.push(line.trim());
    }
  }
  return messages.join('; ') || stderr.trim();
}

function unquoteGo(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s.replace(/\\"/g, '"');
  }
}

export function isNotExist(text: string): boolean {
  return /does not exist|not exist|no such container/i.test(text);
}

export class Runc {
  constructor(
    readonly path: string,
    readonly root: string,
  ) {}

  /** The global flags every invocation carries. */
  globalArgs(): string[] {
    return ['--root', this.root];
  }

  async run(args: string[], o: { input?: string | Buffer } = {}): Promise<RuncResult> {
    let r;
    try {
      r = await run(this.path, [...this.globalArgs(), ...args], { ...(o.input !== undefined && { input: o.input }) });
    } catch (e) {
      throw internal(`cannot run ${this.path}: ${(e as Error).message}`, e);
    }
    return { stdout: r.stdout, stderr: r.stderr, code: r.code ?? 128 + (r.signal ? 9 : 0) };
  }

  /** Runs and throws a typed error with runc's message when it fails. */
  async check(args: string[], what: string, o: { input?: string | Buffer } = {}): Promise<string> {
    const r = await this.run(args, o);
    if (r.code !== 0) throw runcFailure(what, runcErrorText(r.stderr || r.stdout));
    return r.stdout;
  }
}

export function runcFailure(what: string, text: string): CrispError {
  if (isNotExist(text)) return notFound(`${what}: ${text}`);
  if (/not running|already (finished|stopped|exited)|process already finished|cannot .* (stopped|created)/i.test(text)) {
    return failedPrecondition(`${what}: ${text}`);
  }
  return internal(`${what}: ${text}`);
}
