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

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const FULL_TEXT = /no space left on device|disk quota exceeded|database or disk is full/i;

/**
 * Whether `err` says a disk (or quota, or the SQLite database) is full: the node's resource ran
 * out, which a caller can act on (free space, retry), so it is answered RESOURCE_EXHAUSTED, never
 * INTERNAL. Child processes (runc, conmon, CNI plugins) only say so in their message.
 */
export function isDiskFull(err: unknown): boolean {
  if (err instanceof CrispError) return err.kind === 'ResourceExhausted';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && FULL_CODES.has(code)) return true;
  return err instanceof Error && FULL_TEXT.test(err.message);
}

/**
 * `err` as a RESOURCE_EXHAUSTED error naming `where` (the file, directory or database that could
 * not be written) when it says a disk is full; otherwise `err` itself.
 */
export function diskFullAt(err: unknown, where: string): unknown {
  if (!isDiskFull(err) || (err instanceof CrispError && err.message.includes(where))) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new CrispError('ResourceExhausted', clip(`no space left to write ${where}: ${reason}`), { cause: err });
}

/** Any thrown value as a CrispError: full disks are RESOURCE_EXHAUSTED, the unknown is INTERNAL. */
export function asCrispError(err: unknown): CrispError {
  if (err instanceof CrispError) return err;
  const message = messageOf(err);
  return new CrispError(isDiskFull(err) ? 'ResourceExhausted' : 'Internal', message, { cause: err });
}

/** Kinds a failure event keeps so that the RPC waiting on it answers with them, not INTERNAL. */
export type RecordedKind = 'InvalidArgument' | 'FailedPrecondition' | 'NotFound' | 'ResourceExhausted';

/**
 * The kind to record with a failed step: a full disk always, the request's own fault when the
 * step can judge the request (`callerMayBeAtFault`); undefined means INTERNAL.
 */
export function recordedKind(err: unknown, callerMayBeAtFault = true): RecordedKind | undefined {
  if (isDiskFull(err)) return 'ResourceExhausted';
  if (!callerMayBeAtFault || !(err instanceof CrispError)) return undefined;
  return err.kind === 'InvalidArgument' || err.kind === 'FailedPrecondition' || err.kind === 'NotFound' ? err.kind : undefined;
}
