// A stream's history as spans, read from the log's own timestamps: the stream itself is one span
// from its first event to its last, and each later event closes a step that began when the
// event before it was recorded (the driver starts a step as soon as the previous one is
// recorded). The time before a request (StopRequested, RemoveRequested...) is spent waiting for
// the caller, not working, so it is no step. `crisp trace` draws them; an exporter can send
// them. Pure: no I/O.
import type { StoredEvent } from './store.js';
import type { StreamKind } from '../machines/events.js';

export interface Span {
  /** The stream the span belongs to; the stream's own span has `step` undefined. */
  streamId: string;
  kind: StreamKind;
  name: string;
  step?: string;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string>;
  /** A failure the step recorded: the span's error status. */
  error?: string;
}

export interface StreamSpans {
  stream: Span;
  steps: Span[];
}

const LABELS: Record<StreamKind, string> = { sandbox: 'pod sandbox', container: 'container', image: 'image', pull: 'pull', runtime: 'runtime' };

/** What to call a stream, and its attributes, from its first event. */
function describe(kind: StreamKind, streamId: string, first: StoredEvent['event']): { name: string; attributes: Record<string, string> } {
  const attributes: Record<string, string> = { [`crisp.${kind}.id`]: streamId };
  let label = streamId.slice(0, 13);
  if (first.type === 'SandboxRunRequested') {
    const m = first.config.metadata;
    if (m) Object.assign(attributes, { 'k8s.pod.name': m.name, 'k8s.namespace.name': m.namespace, 'k8s.pod.uid': m.uid });
    if (m) label = `${m.namespace}/${m.name}`;
  } else if (first.type === 'ContainerCreateRequested') {
    const name = first.config.metadata?.name ?? '';
    Object.assign(attributes, { 'k8s.container.name': name, 'crisp.sandbox.id': first.sandboxId, 'container.image.name': first.image.requested });
    label = name || label;
  } else if (first.type === 'ImagePullRequested') {
    attributes['container.image.name'] = first.reference;
    label = first.reference;
  }
  return { name: `${LABELS[kind]} ${label}`, attributes };
}

/** The attributes of every span of a stream (ids, pod and container names, image), from its first event. */
export function streamAttributes(kind: StreamKind, streamId: string, first: StoredEvent['event']): Record<string, string> {
  return describe(kind, streamId, first).attributes;
}

/** The failure an event records, as a span's error status; undefined for any other event. */
export function failureOf(event: StoredEvent['event']): string | undefined {
  if (event.type === 'SandboxRunFailed' || event.type === 'ContainerCreateFailed') return `step ${event.step}: ${event.message}`;
  if (event.type === 'ContainerStartFailed' || event.type === 'ImagePullFailed') return event.message;
  return undefined;
}

/** The spans of one stream's events (in log order). */
export function streamSpans(events: StoredEvent[]): StreamSpans | undefined {
  const first = events[0];
  if (!first) return undefined;
  const last = events[events.length - 1]!;
  const { name, attributes } = describe(first.kind, first.streamId, first.event);
  const steps: Span[] = [];
  for (let i = 1; i < events.length; i++) {
    const e = events[i]!;
    // A request (stop, remove, start) ends a wait for the caller, not a step: no span.
    if (e.event.type.endsWith('Requested')) continue;
    const error = failureOf(e.event);
    steps.push({
      streamId: e.streamId, kind: e.kind, name: e.event.type, step: e.event.type,
      startNs: events[i - 1]!.ts, endNs: e.ts, attributes: { ...attributes, 'crisp.event.seq': String(e.seq) },
      ...(error !== undefined && { error }),
    });
  }
  const error = steps.find((s) => s.error !== undefined)?.error;
  return {
    stream: { streamId: first.streamId, kind: first.kind, name, startNs: first.ts, endNs: last.ts, attributes, ...(error !== undefined && { error }) },
    steps,
  };
}
