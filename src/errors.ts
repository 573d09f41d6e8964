// Typed domain errors. Everything below the CRI layer throws these; the one RPC wrapper
// (src/cri/wrap.ts) maps each kind to its gRPC status code, so no module deals in codes.

export type ErrorKind =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Unimplemented'
  | 'DeadlineExceeded'
  | 'ResourceExhausted'
  | 'Conflict'
  | 'Internal';

export class CrispError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = `${kind}Error`;
  }
}

export const invalidArgument = (message: string) => new CrispError('InvalidArgument', message);
export const notFound = (message: string) => new CrispError('NotFound', message);
export const alreadyExists = (message: string) => new CrispError('AlreadyExists', message);
export const failedPrecondition = (message: string) => new CrispError('FailedPrecondition', message);
export const unavailable = (message: string) => new CrispError('Unavailable', message);
export const unimplemented = (message: string) => new CrispError('Unimplemented', message);
export const deadlineExceeded = (message: string) => new CrispError('DeadlineExceeded', message);
export const conflict = (message: string) => new CrispError('Conflict', message);
export const internal = (message: string, cause?: unknown) => new CrispError('Internal', message, { cause });

export function isCrispError(err: unknown, kind?: ErrorKind): err is CrispError {
  return err instanceof CrispError && (kind === undefined || err.kind === kind);
}

/**
 * How much of a message crisp repeats in a reply, a log line or a failure event. A caller's bad
 * value is often quoted in its error; quoting a 1 MiB pod name whole made a megabyte grpc-message
 * trailer that a Node gRPC client never receives (its connection then hangs), and a 1 MB log line.
 */
export const MESSAGE_LIMIT = 1024;

/** `text` cut to `limit` characters, saying how much was left out. */
export function clip(text: string, limit = MESSAGE_LIMIT): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;
}

/** The message of anything thrown, for error events and logs, clipped to MESSAGE_LIMIT. */
export function messageOf(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err));
}
