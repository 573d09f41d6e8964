// The spans crisp sends are on one clock: a call's span and the spans of the steps it started
// (timed by the event log, src/events/clock.ts) must nest in a trace viewer, so the call's own
// start and end are read from the event log's clock too, not the SDK's performance timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HrTime } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Tracing } from '../../src/tracing/otel.js';
import { nowNs } from '../../src/events/clock.js';
import { silentLogger } from '../../src/log.js';

const ns = ([s, n]: HrTime) => BigInt(s) * 1_000_000_000n + BigInt(n);

test("a call's span is timed by the event log's clock: it starts before and ends after what the call records", async () => {
  const got: ReadableSpan[] = [];
  const exporter: SpanExporter = {
    export: (spans, done) => {
      got.push(...spans);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const tracing = new Tracing({ endpoint: 'http://127.0.0.1:9/unused', samplingRatePerMillion: 1_000_000, serviceVersion: 'test' }, silentLogger, exporter);
  const checks: string[] = [];
  for (let i = 0; i < 20; i++) {
    const before = nowNs();
    const { result: recorded, end } = tracing.rpc('Version', undefined, {}, () => nowNs());
    const returned = nowNs();
    end(0);
    const after = nowNs();
    checks.push(`${before} ${recorded} ${returned} ${after}`);
  }
  await tracing.shutdown();
  const spans = got.filter((s) => s.name === 'Version');
  assert.equal(spans.length, 20);
  spans.forEach((span, i) => {
    const [before, recorded, returned, after] = checks[i]!.split(' ').map(BigInt) as [bigint, bigint, bigint, bigint];
    const start = ns(span.startTime);
    const end = ns(span.endTime);
    assert.ok(before <= start && start <= recorded, `call ${i}: the span starts at ${start}, outside [${before}, ${recorded}]`);
    assert.ok(returned <= end && end <= after, `call ${i}: the span ends at ${end}, outside [${returned}, ${after}]`);
  });
});
