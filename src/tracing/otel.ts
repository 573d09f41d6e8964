// OpenTelemetry traces, off by default ([crisp.tracing]). Every CRI call is a span (its parent
// is kubelet's W3C `traceparent` when it sends one). Every step the log records becomes a span
// with the log's own start and end: a request (RunPodSandbox's SandboxRunRequested, a stop, a
// remove, a pull...) opens an operation span on its stream, a child of the call that appended
// it; each later event closes a step, a child of that operation, running from the event before
// it; the operation ends when the stream is at rest again (ready, running, exited, gone). Spans
// go out over OTLP/HTTP protobuf in batches. The same exporter sends `crisp trace --format otlp`.
//
// Which call requested an operation is found by what the call names (a pod or container id,
// the pod's metadata, the container's name in its pod, the image), not by an AsyncLocalStorage:
// on Node 20 that turns on promise hooks for every promise of the daemon, which cost far more
// than tracing itself.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type HrTime, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { EventStore, StoredEvent } from '../events/store.js';
import { failureOf, streamAttributes, type StreamSpans } from '../events/spans.js';
import { nowNs } from '../events/clock.js';
import type { StreamKind } from '../machines/events.js';
import type { Logger } from '../log.js';

export interface TracingConfig {
  endpoint: string;
  /** Traces kept per million started without a sampled parent. */
  samplingRatePerMillion: number;
  serviceVersion: string;
}

/** Nanoseconds since the epoch as OpenTelemetry's [seconds, nanoseconds]. */
const hr = (ns: bigint): HrTime => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];

// States in which a stream waits for its next request: an operation that reaches one has ended.
const AT_REST: Record<StreamKind, Set<string>> = {
  sandbox: new Set(['ready', 'notready', 'removed']),
  container: new Set(['created', 'running', 'exited', 'removed']),
  pull: new Set(['completed', 'failed']),
  image: new Set(['present', 'removed']),
  runtime: new Set(['running', 'stopped']),
};

const VERBS: [RegExp, string][] = [[/^Sandbox(\w+)Requested$/, 'sandbox'], [/^Container(\w+)Requested$/, 'container'], [/^ImagePull(Requested)$/, 'pull']];

function operationName(type: string): string {
  for (const [re, noun] of VERBS) {
    const m = re.exec(type);
    if (m) return noun === 'pull' ? 'image pull' : `${noun} ${m[1]!.toLowerCase()}`;
  }
  return type;
}

type Req = Record<string, unknown> & { config?: { metadata?: Record<string, unknown> }; image?: { image?: string } };

/** What a call names, as keys an event of the operation it requests can be matched with. */
function keysOfCall(method: string, request: unknown): string[] {
  const r = (request ?? {}) as Req;
  const keys: string[] = [];
  for (const field of ['pod_sandbox_id', 'container_id']) if (typeof r[field] === 'string' && r[field]) keys.push(`stream:${r[field] as string}`);
  const m = r.config?.metadata;
  if (method === 'RunPodSandbox' && m) keys.push(`sandbox:${String(m['name'])}_${String(m['namespace'])}_${String(m['uid'])}_${String(m['attempt'] ?? 0)}`);
  if (method === 'CreateContainer' && m) keys.push(`container:${String(r['pod_sandbox_id'])}/${String(m['name'])}/${String(m['attempt'] ?? 0)}`);
  if (method === 'PullImage' && r.image?.image) keys.push(`pull:${r.image.image}`);
  return method === 'CreateContainer' || method === 'RunPodSandbox' ? keys.filter((k) => !k.startsWith('stream:')) : keys;
}

/** The keys under which the call that requested this event's operation registered. */
function keysOfEvent(e: StoredEvent): string[] {
  const event = e.event;
  if (event.type === 'SandboxRunRequested') return [`sandbox:${event.nameKey}`];
  if (event.type === 'ContainerCreateRequested') return [`container:${event.nameKey}`];
  if (event.type === 'ImagePullRequested') {
    // The event holds the normalised reference; the call, what kubelet sent.
    const short = event.reference.replace(/^docker\.io\/(library\/)?/, '');
    return [`pull:${event.reference}`, `pull:${short}`, `pull:${short.replace(/:latest$/, '')}`];
  }
  return [`stream:${e.streamId}`];
}

interface Open {
  op: Span | undefined;
  context: Context | undefined;
  lastNs: bigint;
  attributes: Record<string, string>;
  idKey: string;
}

export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  /** Correlation key (see keysOfCall) → the context of the call in flight that named it. */
  private readonly calls = new Map<string, Context>();
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly open = new Map<string, Open>();
  private readonly settling = new Set<string>();

  constructor(config: TracingConfig, private readonly logger: Logger, exporter: SpanExporter = new OTLPTraceExporter({ url: config.endpoint })) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'crisp', 'service.version': config.serviceVersion }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplingRatePerMillion / 1_000_000) }),
      // Batches of up to 512 every 5 s (the SDK's defaults): fewer, larger exports cost less.
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 5000 })],
    });
    this.tracer = this.provider.getTracer('crisp');
  }

  /**
   * Runs one CRI call (`method`: RunPodSandbox...) inside its span; `traceparent` is the
   * caller's W3C header, if it sent one. `end` closes the span with the call's gRPC status.
   */
  rpc<T>(method: string, traceparent: string | undefined, request: unknown, run: () => T): { result: T; end: (code: number, message?: string) => void } {
    const parent = traceparent ? this.propagator.extract(ROOT_CONTEXT, { traceparent }, { get: (c, k) => c[k as 'traceparent'], keys: () => ['traceparent'] }) : ROOT_CONTEXT;
    // The call's span is timed by the event log's clock, as its operation's and steps' spans are:
    // the SDK's own clock (the performance timer's origin) sits up to a millisecond off it, enough
    // to put a step's start before its call's in a trace.
    const span = this.tracer.startSpan(method, {
      kind: SpanKind.SERVER,
      startTime: hr(nowNs()),
      attributes: { 'rpc.system': 'grpc', 'rpc.service': 'runtime.v1', 'rpc.method': method },
    }, parent);
    const ctx = trace.setSpan(parent, span);
    const keys = keysOfCall(method, request);
    for (const key of keys) this.calls.set(key, ctx);
    const result = run();
    return {
      result,
      end: (code, message) => {
        for (const key of keys) if (this.calls.get(key) === ctx) this.calls.delete(key);
        span.setAttribute('rpc.grpc.status_code', code);
        if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
        span.end(hr(nowNs()));
      },
    };
  }

  /** Turns every committed event into the spans of its stream's operations and steps. */
  follow(store: EventStore): () => void {
    const subscription = store.committed$.subscribe((e) => {
      try {
        this.onEvent(store, e);
      } catch (err) {
        this.logger.warn({ err }, 'tracing: could not record a span');
      }
    });
    return () => subscription.unsubscribe();
  }

  private onEvent(store: EventStore, e: StoredEvent): void {
    if (e.kind === 'runtime' || e.kind === 'image') return;
    let open = this.open.get(e.streamId);
    if (!open) {
      open = { op: undefined, context: undefined, lastNs: e.ts, attributes: streamAttributes(e.kind, e.streamId, e.event), idKey: `crisp.${e.kind}.id` };
      this.open.set(e.streamId, open);
    }
    const type = e.event.type;
    if (type.endsWith('Requested')) {
      open.op?.end(hr(open.lastNs));
      const parent = keysOfEvent(e).map((k) => this.calls.get(k)).find((c) => c !== undefined) ?? ROOT_CONTEXT;
      open.op = this.tracer.startSpan(operationName(type), { startTime: hr(e.ts), attributes: open.attributes }, parent);
      open.context = trace.setSpan(parent, open.op);
    } else {
      const failure = failureOf(e.event);
      // The operation span carries names and namespace; a step, its stream's id and its event.
      const step = this.tracer.startSpan(type, { startTime: hr(open.lastNs), attributes: { [open.idKey]: e.streamId, 'crisp.event.seq': e.seq } }, open.context ?? ROOT_CONTEXT);
      if (failure !== undefined) {
        step.setStatus({ code: SpanStatusCode.ERROR, message: failure });
        open.op?.setStatus({ code: SpanStatusCode.ERROR, message: failure });
      }
      step.end(hr(e.ts));
    }
    open.lastNs = e.ts;
    // Whether the operation has ended is read from the stream's state once every event of this
    // append has been seen: subscribers hear a batch's events after it committed whole, so the
    // live state is the batch's last (a step with no effect shares its append with the step
    // before it), and its later events still belong to the operation.
    if (this.settling.has(e.streamId)) return;
    this.settling.add(e.streamId);
    queueMicrotask(() => {
      this.settling.delete(e.streamId);
      this.settle(store, e.streamId, e.kind);
    });
  }

  private settle(store: EventStore, streamId: string, kind: StreamKind): void {
    const open = this.open.get(streamId);
    if (!open) return;
    const live = store.stream(streamId);
    const state = live ? String((live.snapshot as { value: unknown }).value) : 'removed';
    if (AT_REST[kind].has(state)) {
      open.op?.end(hr(open.lastNs));
      open.op = undefined;
      open.context = undefined;
    }
    if (!live) this.open.delete(streamId);
  }

  /** Sends spans read back from the log (`crisp trace --format otlp`): streams as roots, steps as children. */
  exportRecorded(trace_: StreamSpans[]): void {
    for (const s of trace_) {
      const root = this.tracer.startSpan(s.stream.name, { startTime: hr(s.stream.startNs), attributes: s.stream.attributes }, ROOT_CONTEXT);
      const ctx = trace.setSpan(ROOT_CONTEXT, root);
      for (const step of s.steps) {
        const span = this.tracer.startSpan(step.name, { startTime: hr(step.startNs), attributes: step.attributes }, ctx);
        if (step.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: step.error });
        span.end(hr(step.endNs));
      }
      if (s.stream.error !== undefined) root.setStatus({ code: SpanStatusCode.ERROR, message: s.stream.error });
      root.end(hr(s.stream.endNs));
    }
  }

  /** Sends what is batched and stops. */
  async shutdown(): Promise<void> {
    for (const open of this.open.values()) open.op?.end(hr(open.lastNs));
    this.open.clear();
    await this.provider.shutdown();
  }
}
