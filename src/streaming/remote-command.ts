// One exec or attach session, whatever the wire protocol: the client's stdin into the
// process, its stdout and stderr back, window sizes to the TTY, and at the end the exit
// code as Kubernetes reports it (a Status object on the error stream from v4 on). A client
// that goes away takes the process with it.
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log.js';
import type { StreamedProcess, TerminalSize } from './exec-process.js';

export type Outcome = { exitCode: number } | { error: string };

/** The client's side of a session, as a protocol adapter presents it. */
export interface ClientChannels {
  stdin: Readable | null;
  stdout: Writable | null;
  stderr: Writable | null;
  /** Emits 'resize' with a TerminalSize. */
  resizes: ResizeDecoder | null;
  /** Reports the outcome and closes the connection. */
  finish(outcome: Outcome): Promise<void>;
  /** Resolves when the client has gone away. */
  gone: Promise<void>;
}

export interface K8sStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason: string; message: string }[] };
}

/** The Status object remotecommand v4+ clients read from the error stream. */
export function outcomeStatus(outcome: Outcome, cmd: string[] | undefined): K8sStatus {
  if ('error' in outcome) return { metadata: {}, status: 'Failure', message: outcome.error, reason: 'InternalError' };
  if (outcome.exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command ${JSON.stringify(cmd ?? [])}, exit code ${outcome.exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(outcome.exitCode) }] },
  };
}

/** What pre-v4 clients read from the error stream: nothing on success, else a message. */
export function outcomeText(outcome: Outcome, cmd: string[] | undefined): string {
  const status = outcomeStatus(outcome, cmd);
  return status.status === 'Success' ? '' : status.message!;
}

/** Parses the resize stream: JSON objects {"Width","Height"}, one per line. */
export class ResizeDecoder extends EventEmitter {
  private text = '';
  /**
   * The newest size, kept because clients send their window size at once, often before the
   * process exists to take it (the exec's process file is written first).
   */
  latest: TerminalSize | undefined;
  push(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    for (let nl = this.text.indexOf('\n'); nl >= 0; nl = this.text.indexOf('\n')) {
      this.emitLine(this.text.slice(0, nl));
      this.text = this.text.slice(nl + 1);
    }
    // clients that send one object per message without a newline
    if (this.text.trim().endsWith('}')) {
      if (this.emitLine(this.text)) this.text = '';
    }
    if (this.text.length > 4096) this.text = '';
  }
  private emitLine(line: string): boolean {
    if (!line.trim()) return true;
    try {
      const size = JSON.parse(line) as { Width?: unknown; Height?: unknown };
      if (typeof size.Width === 'number' && typeof size.Height === 'number') {
        this.latest = { width: size.Width, height: size.Height };
        this.emit('resize', this.latest);
      }
      return true;
    } catch {
      return false;
    }
  }
}

/** Runs the session to its end: the process's exit (or the client's departure). */
export async function serveCommand(client: ClientChannels, proc: StreamedProcess, log: Logger): Promise<Outcome> {
  let clientGone = false;
  void client.gone.then(() => {
    clientGone = true;
    void proc.kill();
  });
  if (client.stdin && proc.stdin) {
    const sink = proc.stdin;
    client.stdin.pipe(sink);
    sink.on('error', () => client.stdin?.unpipe(sink));
  } else {
    proc.stdin?.end();
  }
  const resize = (size: TerminalSize) => proc.resize(size).catch((err: unknown) => log.debug({ err }, 'resize failed'));
  client.resizes?.on('resize', resize);
  const early = client.resizes?.latest;
  if (early) void resize(early);
  const copies = [copy(proc.stdout, client.stdout), copy(proc.stderr, client.stderr)];
  let outcome: Outcome;
  try {
    outcome = { exitCode: await proc.exited };
  } catch (err) {
    outcome = { error: err instanceof Error ? err.message : String(err) };
  }
  await Promise.all(copies);
  if (!clientGone) await client.finish(outcome);
  return outcome;
}

/** Copies until the source ends, then ends the destination; drains the source when nobody listens. */
function copy(from: Readable | null, to: Writable | null): Promise<void> {
  if (!from) {
    to?.end();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    from.once('close', () => resolve());
    from.once('end', () => {
      to?.end();
      resolve();
    });
    from.once('error', () => resolve());
    if (to) from.pipe(to, { end: false });
    else from.resume();
  });
}
