import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { MetricsRegistry } from '../../src/metrics/exposition.js';
import { PositionalCounter, PositionalHistogram } from '../../src/metrics/positional-metrics.js';

// The exposition of the metrics crisp records per event and per RPC must read as prom-client's
// (which crisp used before) does: same lines, same values, for the same observations.
test('a positional histogram exposes what a prom-client histogram does for the same observations', async () => {
  const ours = new MetricsRegistry();
  const theirs = new Registry();
  const buckets = [0.001, 0.01, 0.1, 1];
  const h = new PositionalHistogram({ name: 'x_seconds', help: 'x', labelNames: ['kind', 'stage'], buckets, registry: ours });
  const p = new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['kind', 'stage'], buckets, registers: [theirs] });
  const samples: [number, string, string][] = [
    [0.0005, 'sandbox', 'cni_add'], [0.001, 'sandbox', 'cni_add'], [0.05, 'sandbox', 'cni_add'], [5, 'sandbox', 'cni_add'],
    [0.02, 'container', 'spec'], [0.02, 'container', 'spec'],
  ];
  for (const [v, kind, stage] of samples) {
    h.observe(v, kind, stage);
    p.observe({ kind, stage }, v);
  }
  const lines = (text: string) => text.split('\n').map((l) => l.replace(/\{(.*)\}/, (_, inner: string) => `{${inner.split(',').sort().join(',')}}`)).sort();
  assert.deepEqual(lines(ours.metrics()), lines(await theirs.metrics()));
  assert.match(ours.metrics(), /^x_seconds_bucket\{kind="sandbox",stage="cni_add",le="0.001"\} 2$/m);
  assert.match(ours.metrics(), /^x_seconds_bucket\{kind="sandbox",stage="cni_add",le="\+Inf"\} 4$/m);
  assert.match(ours.metrics(), /^x_seconds_count\{kind="container",stage="spec"\} 2$/m);
});

test('unlabelled positional metrics are exposed at zero before anything is recorded', async () => {
  const registry = new MetricsRegistry();
  const h = new PositionalHistogram({ name: 'append_seconds', help: 'a', labelNames: [], buckets: [0.1, 1], registry });
  const c = new PositionalCounter({ name: 'bytes_total', help: 'b', labelNames: [], registry });
  const text = registry.metrics();
  assert.match(text, /^append_seconds_bucket\{le="\+Inf"\} 0$/m);
  assert.match(text, /^append_seconds_count 0$/m);
  assert.match(text, /^bytes_total 0$/m);
  h.observe(0.5);
  c.inc(300);
  c.inc(12);
  const after = registry.metrics();
  assert.match(after, /^append_seconds_bucket\{le="0.1"\} 0$/m);
  assert.match(after, /^append_seconds_bucket\{le="1"\} 1$/m);
  assert.match(after, /^append_seconds_sum 0.5$/m);
  assert.match(after, /^bytes_total 312$/m);
});

test('a positional counter keeps one series per combination of label values', async () => {
  const registry = new MetricsRegistry();
  const c = new PositionalCounter({ name: 'rpc_total', help: 'r', labelNames: ['rpc', 'code'], registry });
  c.inc(1, 'RunPodSandbox', 'OK');
  c.inc(1, 'RunPodSandbox', 'OK');
  c.inc(1, 'RunPodSandbox', 'INVALID_ARGUMENT');
  const text = registry.metrics();
  assert.match(text, /^# TYPE rpc_total counter$/m);
  assert.match(text, /^rpc_total\{rpc="RunPodSandbox",code="OK"\} 2$/m);
  assert.match(text, /^rpc_total\{rpc="RunPodSandbox",code="INVALID_ARGUMENT"\} 1$/m);
});
