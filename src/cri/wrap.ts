import * as grpc from '@grpc/grpc-js';
import { customAlphabet } from 'nanoid';
import type { Logger } from '../log.js';
import { CrispError, MESSAGE_LIMIT, clip, isDiskFull, messageOf, unavailable } from '../errors.js';
import { GRPC_CODE } from './errors.js';

const requestId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 12);

/** What every handler gets besides its request. */
interface Rpc {
  id: string;
  log: Logger;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
}

export type UnaryHandler<Req, Res> = (request: Req, rpc: Rpc) => Res | Promise<Res>;
/**
 * `send` resolves once the message is written or queued within gRPC's buffer; a handler that
 * awaits it stops producing while a slow client catches up, so its own bounded queue, not an
 * unbounded transport buffer, decides what a stalled client costs.
 */
export type StreamHandler<Req, Res> = (request: Req, rpc: Rpc, send: (response: Res) => Promise<void>) => Promise<void>;

/** Serving is refused until start-up recovery is done (DESIGN.md rule 6). */
export class Readiness {
  private isReady = false;
  private reason = 'crisp is starting: replaying the event log and reconciling with the node';
  private listeners: ((ready: boolean) => void)[] = [];
  get ready() {
    return this.isReady;
  }
  markReady(): void {
    this.isReady = true;
    this.listeners.forEach((l) => l(true));
  }
  markNotReady(reason: string): void {
    this.isReady = false;
    this.reason = reason;
    this.listeners.forEach((l) => l(false));
  }
  check(): void {
    if (!this.isReady) throw unavailable(this.reason);
  }
  onChange(listener: (ready: boolean) => void): void {
    this.listeners.push(listener);
  }
}

export interface RpcObserver {
  (rpc: string, code: grpc.status, seconds: number): void;
}

/** Spans for calls (src/tracing/otel.ts); absent when tracing is off, which then costs nothing. */
interface RpcTracer {
  rpc<T>(method: string, traceparent: string | undefined, request: unknown, run: () => T): { result: T; end(code: number, message?: string): void };
}

export interface WrapDeps {
  logger: Logger;
  readiness: Readiness;
  observe?: RpcObserver;
  tracer?: RpcTracer;
}

/** Runs the call's work inside its span when tracing is on; `end` closes the span with the status. */
function traced<T>(name: string, deps: WrapDeps, call: { metadata: grpc.Metadata; request: unknown }, work: () => T): { result: T; end(code: number, message?: string): void } {
  if (!deps.tracer) return { result: work(), end: () => undefined };
  const traceparent = call.metadata.get('traceparent')[0];
  return deps.tracer.rpc(name, typeof traceparent === 'string' ? traceparent : undefined, call.request, work);
}

// kubelet polls these every second or so; logging them at info would drown everything else.
const QUIET = /^(List|Status|.*Status$|Version$|ImageFsInfo$|.*Stats$|ListMetricDescriptors$)/;

function toServiceError(err: unknown): Partial<grpc.ServiceError> & { code: grpc.status; details: string } {
  if (err instanceof CrispError) return { code: GRPC_CODE[err.kind], details: clip(err.message) };
  if (isDiskFull(err)) return { code: grpc.status.RESOURCE_EXHAUSTED, details: messageOf(err) };
  return { code: grpc.status.INTERNAL, details: `internal error: ${messageOf(err)}` };
}

function begin(name: string, deps: WrapDeps, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) {
  const id = requestId();
  const log = deps.logger.child({ rpc: name, req: id });
  // The signal is made when a handler first asks for it (most never do), and a cancel that
  // arrives once the call has finished (grpc-js reports one when the stream closes) is dropped:
  // an error with its stack and an abort per call cost ~25 µs of a ~600 µs List call.
  let controller: AbortController | undefined;
  let cancelled = false;
  let finished = false;
  const cancel = () => controller?.abort(new CrispError('Unavailable', `${name} was cancelled by the client`));
  call.on('cancelled', () => {
    if (finished) return;
    cancelled = true;
    cancel();
  });
  const started = process.hrtime.bigint();
  const finish = (code: grpc.status, err?: unknown) => {
    finished = true;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    deps.observe?.(name, code, seconds);
    const fields = { code: grpc.status[code], ms: Math.round(seconds * 1e6) / 1e3 };
    if (code === grpc.status.OK) {
      if (QUIET.test(name)) log.debug(fields, 'done');
      else log.info(fields, 'done');
    }
    else if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) {
      // The whole error (stack, cause) unless its message is too long to repeat.
      const long = err instanceof Error && err.message.length > MESSAGE_LIMIT;
      log.error({ ...fields, ...(long ? { error: messageOf(err) } : { err }) }, 'failed');
    }
    else log.info({ ...fields, error: messageOf(err) }, 'refused');
  };
  return {
    rpc: {
      id,
      log,
      get signal() {
        if (!controller) {
          controller = new AbortController();
          if (cancelled) cancel();
        }
        return controller.signal;
      },
    },
    finish,
  };
}

/** Wraps a unary handler: request id, logger, readiness, timing and the error table. */
export function unary<Req, Res>(name: string, deps: WrapDeps, handler: UnaryHandler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { rpc, finish } = begin(name, deps, call);
    const work = traced(name, deps, call, () => Promise.resolve().then(() => {
      deps.readiness.check();
      return handler(call.request, rpc);
    }));
    work.result.then(
      (response) => {
        finish(grpc.status.OK);
        work.end(grpc.status.OK);
        callback(null, response);
      },
      (err: unknown) => {
        const serviceError = toServiceError(err);
        finish(serviceError.code, err);
        work.end(serviceError.code, serviceError.details);
        callback(serviceError);
      },
    );
  };
}

function writeWithBackpressure<Res>(call: grpc.ServerWritableStream<unknown, Res>, response: Res, signal: AbortSignal): Promise<void> {
  if (call.write(response)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Wraps a server-streaming handler the same way; the stream ends when the handler resolves. */
export function serverStream<Req, Res>(
  name: string,
  deps: WrapDeps,
  handler: StreamHandler<Req, Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const { rpc, finish } = begin(name, deps, call);
    const work = traced(name, deps, call, () => Promise.resolve().then(() => {
      deps.readiness.check();
      return handler(call.request, rpc, (response) => writeWithBackpressure(call, response, rpc.signal));
    }));
    work.result.then(
      () => {
        finish(grpc.status.OK);
        work.end(grpc.status.OK);
        call.end();
      },
      (err: unknown) => {
        const serviceError = toServiceError(err);
        finish(serviceError.code, err);
        work.end(serviceError.code, serviceError.details);
        call.emit('error', serviceError);
      },
    );
  };
}
