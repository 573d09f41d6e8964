// `crisp trace ID`: a pod's (with its containers), a container's or a pull's history as a
// waterfall, from the log's timestamps alone, so a trace exists after the fact and without any
// tracing set up. Text draws each step as a bar on one time axis; `--format chrome` writes the
// Trace Event JSON that Perfetto and chrome://tracing open.
import type { Db } from '../events/database.js';
import { formatNs } from '../events/clock.js';
import { streamSpans, type Span, type StreamSpans } from '../events/spans.js';
import { openLog, queryEvents, resolveStream } from './events.js';
import { createLogger } from '../log.js';
import { CRISP_VERSION } from '../daemon.js';

type TraceFormat = 'text' | 'chrome';

export interface TraceOptions {
  db: string;
  idOrPrefix: string;
  format: TraceFormat;
  /** Columns for the bars of the text waterfall. */
  width?: number;
  out: (line: string) => void;
}

/** The stream's spans, and for a pod those of its containers, in the order they began. */
function collectTrace(db: Db, idOrPrefix: string): StreamSpans[] {
  const { id, kind } = resolveStream(db, idOrPrefix);
  const own = streamSpans(queryEvents(db, { streamId: id }));
  if (!own) return [];
  const all = [own];
  if (kind === 'sandbox') {
    const containers = queryEvents(db, { kind: 'container' })
      .filter((e) => e.event.type === 'ContainerCreateRequested' && e.event.sandboxId === id)
      .map((e) => e.streamId);
    for (const c of containers) {
      const spans = streamSpans(queryEvents(db, { streamId: c }));
      if (spans) all.push(spans);
    }
  }
  return all.sort((a, b) => (a.stream.startNs < b.stream.startNs ? -1 : a.stream.startNs > b.stream.startNs ? 1 : 0));
}

function formatDuration(ns: bigint): string {
  const ms = Number(ns) / 1e6;
  if (ms < 1) return `${(ms * 1000).toFixed(0)}µs`;
  if (ms < 1000) return `${ms.toFixed(1)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

/** One line per stream and one per step: name, offset, a bar on the shared axis, duration. */
function renderWaterfall(trace: StreamSpans[], width = 48): string[] {
  if (trace.length === 0) return [];
  const start = trace.reduce((t, s) => (s.stream.startNs < t ? s.stream.startNs : t), trace[0]!.stream.startNs);
  const end = trace.reduce((t, s) => (s.stream.endNs > t ? s.stream.endNs : t), trace[0]!.stream.endNs);
  const total = end - start > 0n ? end - start : 1n;
  const column = (ns: bigint) => Math.min(width - 1, Number(((ns - start) * BigInt(width)) / total));
  const nameWidth = Math.min(40, Math.max(...trace.flatMap((s) => [s.stream.name.length, ...s.steps.map((x) => x.name.length + 2)])));
  const row = (span: Span, indent: string) => {
    const from = column(span.startNs);
    const to = Math.max(from + 1, column(span.endNs) + (span.endNs > span.startNs ? 1 : 0));
    const bar = `${' '.repeat(from)}${(span.error ? '!' : span.step ? '█' : '─').repeat(Math.min(width, to) - from)}`.padEnd(width);
    const label = `${indent}${span.name}`.slice(0, nameWidth).padEnd(nameWidth);
    const offset = `+${formatDuration(span.startNs - start)}`.padStart(9);
    return `${label} ${offset} |${bar}| ${formatDuration(span.endNs - span.startNs)}${span.error ? `  ${span.error}` : ''}`;
  };
  const lines = [`trace from ${formatNs(start)}, ${formatDuration(end - start)} in all`];
  for (const s of trace) {
    lines.push(row(s.stream, ''));
    for (const step of s.steps) lines.push(row(step, '  '));
  }
  return lines;
}

/** Trace Event JSON (the format chrome://tracing and Perfetto read): one thread per stream. */
function renderChrome(trace: StreamSpans[]): string {
  const us = (ns: bigint) => Number(ns / 1000n);
  const events: Record<string, unknown>[] = [{ name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'crisp' } }];
  trace.forEach((s, i) => {
    const tid = i + 1;
    events.push({ name: 'thread_name', ph: 'M', pid: 1, tid, args: { name: s.stream.name } });
    for (const span of [s.stream, ...s.steps]) {
      events.push({
        name: span.name, cat: span.step ? 'step' : span.kind, ph: 'X', pid: 1, tid,
        ts: us(span.startNs), dur: Math.max(0, us(span.endNs) - us(span.startNs)),
        args: { ...span.attributes, ...(span.error !== undefined && { error: span.error }) },
      });
    }
  });
  return JSON.stringify({ traceEvents: events, displayTimeUnit: 'ms' });
}

export function trace(o: TraceOptions): void {
  const db = openLog(o.db);
  try {
    const spans = collectTrace(db, o.idOrPrefix);
    if (o.format === 'chrome') o.out(renderChrome(spans));
    else for (const line of renderWaterfall(spans, o.width)) o.out(line);
  } finally {
    db.close();
  }
}

/** `--format otlp`: the recorded spans, sent to an OTLP/HTTP collector; returns how many. */
export async function sendTrace(o: { db: string; idOrPrefix: string; endpoint: string }): Promise<number> {
  const db = openLog(o.db);
  let spans: StreamSpans[];
  try {
    spans = collectTrace(db, o.idOrPrefix);
  } finally {
    db.close();
  }
  const { Tracing } = await import('../tracing/otel.js');
  const tracing = new Tracing({ endpoint: o.endpoint, samplingRatePerMillion: 1_000_000, serviceVersion: CRISP_VERSION }, createLogger('warn'));
  tracing.exportRecorded(spans);
  await tracing.shutdown();
  return spans.reduce((n, s) => n + 1 + s.steps.length, 0);
}
