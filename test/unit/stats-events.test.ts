import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore } from '../../src/events/store.js';
import { ContainerEventHub } from '../../src/actors/stats/container-events.js';
import { EventLogMetrics } from '../../src/metrics/event-log-metrics.js';
import { CrispMetrics, EVENT_LOOP_SAMPLE_MS } from '../../src/metrics/crisp-metrics.js';
import { MetricsRegistry, type Sample } from '../../src/metrics/exposition.js';
import * as grpc from '@grpc/grpc-js';
import { containerCreate, containerLife, hexId, sandboxRun } from '../helpers/events.js';
import type { ContainerEvent } from '../../src/machines/events.js';

function openStore(t: { after(fn: () => void): void }): EventStore {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-stats-'));
  const store = EventStore.open(join(dir, 'state.db'));
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

function appendEach(store: EventStore, id: string, events: ContainerEvent[]): void {
  for (const event of events) {
    const version = store.stream(id)?.version ?? 0;
    store.append({ kind: 'container', streamId: id, expectedVersion: version, events: [event] });
  }
}

const never = new AbortController().signal;

/** A store with a started hub over it, both closed when the test ends. */
function openHub(t: { after(fn: () => void): void }): { store: EventStore; hub: ContainerEventHub } {
  const store = openStore(t);
  const hub = new ContainerEventHub(store);
  hub.start();
  t.after(() => hub.stop());
  return { store, hub };
}

test('container events: a full life in order, with the pod status and the pod\'s container statuses, to two subscribers', async (t) => {
  const { store, hub } = openHub(t);
  const pod = hexId();
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p'), { type: 'SandboxReady' }] });
  const a = hub.subscribe();
  const b = hub.subscribe();
  const id = hexId();
  appendEach(store, id, containerLife(pod));
  for (const sub of [a, b]) {
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await sub.next(never))!);
    assert.deepEqual(got.map((e) => e.container_event_type), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    assert.ok(got.every((e) => e.container_id === id && /^\d{19}$/.test(String(e.created_at))));
    assert.equal(got[0]!.pod_sandbox_status?.id, pod);
    assert.equal(got[0]!.pod_sandbox_status?.state, 'SANDBOX_READY');
    assert.deepEqual(got[1]!.containers_statuses!.map((s) => [s.id, s.state]), [[id, 'CONTAINER_RUNNING']]);
    assert.deepEqual(got[2]!.containers_statuses!.map((s) => [s.id, s.state, s.exit_code]), [[id, 'CONTAINER_EXITED', 0]]);
    assert.deepEqual(got[3]!.containers_statuses, [], 'a deleted container is no longer among the pod\'s');
    assert.equal(sub.pending, 0);
  }
});

test('container events: a create that failed is never reported deleted', async (t) => {
  const { store, hub } = openHub(t);
  const sub = hub.subscribe();
  const pod = hexId();
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p')] });
  appendEach(store, hexId(), [containerCreate(pod), { type: 'ContainerCreateFailed', step: 'spec', message: 'x' }, { type: 'ContainerRemoved' }]);
  assert.equal(sub.pending, 0);
});

test('container events: a stalled subscriber is bounded and drops past it; appends never wait; others still get everything', async (t) => {
  const { store, hub } = openHub(t);
  const pod = hexId();
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p'), { type: 'SandboxReady' }] });
  const stalled = hub.subscribe(5);
  const live = hub.subscribe();
  for (let i = 0; i < 10; i++) appendEach(store, hexId(), containerLife(pod));
  assert.equal(stalled.pending, 5);
  assert.equal(stalled.dropped, 35);
  assert.equal(live.pending, 40);
  hub.unsubscribe(stalled);
  let drained = 0;
  while (await stalled.next(never)) drained++;
  assert.equal(drained, 5, 'a closed subscriber hands out what it holds, then ends');
  assert.equal(hub.subscriberCount, 1);
});

test('container events: next() returns undefined when the client goes away', async (t) => {
  const { hub } = openHub(t);
  const sub = hub.subscribe();
  const controller = new AbortController();
  const pending = sub.next(controller.signal);
  controller.abort();
  assert.equal(await pending, undefined);
});

/** A store with event-log metrics attached, and the registry they are in. */
function withLogMetrics(t: { after(fn: () => void): void }): { store: EventStore; registry: MetricsRegistry } {
  const store = openStore(t);
  const registry = new MetricsRegistry();
  const m = new EventLogMetrics(registry);
  m.attach(store);
  t.after(() => m.detach());
  return { store, registry };
}

test('event-log metrics: stage and operation durations come from the facts\' timestamps', async (t) => {
  const { store, registry } = withLogMetrics(t);
  const pod = hexId();
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p')] });
  await new Promise((r) => setTimeout(r, 20));
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 1, events: [{ type: 'SandboxNamespacesPinned', paths: { net: '/x' } }] });
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 2, events: [{ type: 'SandboxReady' }] });
  const stage = [...registry.family('crisp_stage_duration_seconds')!.samples()];
  const pinCount = stage.find((v) => v.name === 'crisp_stage_duration_seconds_count' && v.labels?.['stage'] === 'namespace_pin');
  const pinSum = stage.find((v) => v.name === 'crisp_stage_duration_seconds_sum' && v.labels?.['stage'] === 'namespace_pin');
  assert.equal(pinCount?.value, 1);
  assert.ok(pinSum!.value >= 0.015 && pinSum!.value < 5, `namespace_pin took ${pinSum!.value} s`);
  const ops = [...registry.family('crisp_operation_duration_seconds')!.samples()];
  assert.equal(ops.find((v) => v.name === 'crisp_operation_duration_seconds_count' && v.labels?.['operation'] === 'sandbox_run' && v.labels?.['outcome'] === 'ok')?.value, 1);
});

test('event-log metrics: facts recorded in one append with their own times keep their steps apart, and the append is timed once', async (t) => {
  const { store, registry } = withLogMetrics(t);
  const pod = hexId();
  const [requested] = store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p')] });
  // The pin happened 30 ms after the request, the CNI ADD 50 ms after that; both recorded now.
  const pinnedAt = requested!.ts + 30_000_000n;
  store.append({
    kind: 'sandbox', streamId: pod, expectedVersion: 1, at: [pinnedAt, pinnedAt + 50_000_000n],
    events: [{ type: 'SandboxNamespacesPinned', paths: { net: '/x' } }, { type: 'SandboxNetworkAttached', ips: ['10.0.0.2'], network: 'net' }],
  });
  const values = (name: string) => [...registry.family(name)!.samples()];
  const sum = (vs: Sample[], stage: string) => vs.find((v) => v.name === 'crisp_stage_duration_seconds_sum' && v.labels?.['stage'] === stage)?.value;
  const stage = values('crisp_stage_duration_seconds');
  assert.ok(Math.abs(sum(stage, 'namespace_pin')! - 0.03) < 1e-6, `namespace_pin ${sum(stage, 'namespace_pin')}`);
  assert.ok(Math.abs(sum(stage, 'cni_add')! - 0.05) < 1e-6, `cni_add ${sum(stage, 'cni_add')}`);
  const commits = (values('crisp_event_log_append_duration_seconds')).find((v) => v.name === 'crisp_event_log_append_duration_seconds_count');
  assert.equal(commits?.value, 2, 'two appends, each timed once');
  assert.deepEqual(store.readStream(pod).map((e) => e.ts), [requested!.ts, pinnedAt, pinnedAt + 50_000_000n]);
});

test('crisp metrics: RPC observations, state gauges and the log size appear in the text output', async (t) => {
  const store = openStore(t);
  const metrics = new CrispMetrics(store, { processMetrics: false });
  metrics.start();
  t.after(() => metrics.stop());
  const pod = hexId();
  store.append({ kind: 'sandbox', streamId: pod, expectedVersion: 0, events: [sandboxRun('p'), { type: 'SandboxReady' }] });
  metrics.observeRpc('RunPodSandbox', grpc.status.OK, 0.2);
  metrics.observeRpc('RunPodSandbox', grpc.status.INVALID_ARGUMENT, 0.001);
  const text = metrics.registry.metrics();
  assert.match(text, /^crisp_rpc_duration_seconds_count\{rpc="RunPodSandbox"\} 2$/m);
  assert.match(text, /^crisp_rpc_errors_total\{rpc="RunPodSandbox",code="INVALID_ARGUMENT"\} 1$/m);
  assert.match(text, /^crisp_pod_sandboxes\{state="ready"\} 1$/m);
  assert.match(text, /^crisp_event_log_events 2$/m);
  assert.match(text, /^crisp_event_log_size_bytes [1-9]\d*$/m);
});

test('crisp metrics: the process figures are there and the event-loop delay is sampled every 100 ms, not 10', async (t) => {
  const store = openStore(t);
  const metrics = new CrispMetrics(store);
  metrics.registry.metrics(); // a scrape resets the delay histogram
  await new Promise((resolve) => setTimeout(resolve, 450));
  const text = metrics.registry.metrics();
  assert.match(text, /^crisp_process_cpu_seconds_total [\d.e-]+$/m);
  const value = (name: string) => Number(new RegExp(`^crisp_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1]);
  // The histogram holds the intervals between the timer's ticks: at a 10 ms period the
  // shortest would be ~0.01 s; at 100 ms none is shorter than the period.
  assert.ok(value('min') >= (EVENT_LOOP_SAMPLE_MS - 1) / 1000, `shortest interval ${value('min')} s`);
});
