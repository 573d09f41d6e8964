// OpenTelemetry traces (issue 14, section 3): with [crisp.tracing] on, an OTLP/HTTP receiver of
// the test's own gets a span per CRI call, parented on kubelet's traceparent, an operation span
// per request under it, and a span per step with the log's own timestamps; `crisp trace
// --format otlp` sends a recorded pod the same way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { eventually } from '../helpers/eventually.js';
import { CRISP_BIN } from '../helpers/daemon.js';

const run = promisify(execFile);
let node: TestNode;
let receiver: OtlpReceiver;

before(async () => {
  receiver = await startOtlpReceiver();
  node = await startTestNode(['--enable-tracing=true', '--tracing-endpoint', receiver.url]);
});
after(async () => {
  await node?.cleanup();
  await receiver?.stop();
});

/** A unary call with metadata (the shared helper sends none). */
function callWith<Res>(method: string, request: unknown, metadata: grpc.Metadata): Promise<Res> {
  const client = node.daemon.clients.runtime as unknown as Record<string, (r: unknown, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>;
  return new Promise((resolve, reject) => client[method]!.call(client, request, metadata, { deadline: Date.now() + 60_000 }, (e, r) => (e ? reject(e) : resolve(r!))));
}

/** Nanoseconds since the epoch from the log's RFC 3339 time with nanoseconds. */
function ns(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{9})Z$/.exec(time)!;
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt(m[2]!);
}

test('RunPodSandbox and CreateContainer are spans under kubelet\'s traceparent; each logged step is a child span with the log\'s times', async () => {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  const md = new grpc.Metadata();
  md.set('traceparent', `00-${traceId}-${parentId}-01`);
  const config = node.podConfig(`traced${node.tag}`);
  const { pod_sandbox_id: pod } = await callWith<{ pod_sandbox_id: string }>('RunPodSandbox', { config }, md);
  const { container_id: ctr } = await callWith<{ container_id: string }>('CreateContainer', {
    pod_sandbox_id: pod, config: { metadata: { name: 'traced', attempt: 0 }, image: { image: node.image }, command: ['sleep', '60'] }, sandbox_config: config,
  }, md);

  const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
  const byName = (name: string) => inTrace().find((s) => s.name === name);
  await eventually(() => {
    assert.ok(byName('RunPodSandbox') && byName('SandboxReady') && byName('ContainerCreated'), `spans so far: ${inTrace().map((s) => s.name).join(', ')}`);
  }, 15_000);

  const rpc = byName('RunPodSandbox')!;
  assert.equal(rpc.parentSpanId, parentId, 'the call span is a child of kubelet\'s span');
  assert.equal(rpc.attributes['rpc.method'], 'RunPodSandbox');
  assert.equal(rpc.service, 'crisp');
  const op = inTrace().find((s) => s.name === 'sandbox run')!;
  assert.equal(op.parentSpanId, rpc.spanId, 'the operation is a child of the call that requested it');
  assert.equal(op.attributes['k8s.pod.name'], config.metadata!.name);
  assert.equal(op.attributes['crisp.sandbox.id'], pod);

  // Each step: a child of the operation, from the event before it to its own event.
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'events', '--root', node.daemon.root, '--stream', pod, '--json']);
  const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as { time: string; event: { type: string } });
  const readyAt = events.findIndex((e) => e.event.type === 'SandboxReady');
  for (let i = 1; i <= readyAt; i++) {
    const step = byName(events[i]!.event.type);
    assert.ok(step, `a span for ${events[i]!.event.type}`);
    assert.equal(step.parentSpanId, op.spanId);
    assert.equal(step.startNs, ns(events[i - 1]!.time), `${step.name} starts when the event before it was recorded`);
    assert.equal(step.endNs, ns(events[i]!.time), `${step.name} ends when it was recorded`);
  }
  assert.equal(op.startNs, ns(events[0]!.time));
  assert.equal(op.endNs, ns(events[readyAt]!.time), 'the operation ends when the pod is ready');
  assert.ok(rpc.startNs <= op.startNs && rpc.endNs >= op.endNs, 'the call spans its operation');

  const create = byName('CreateContainer')!;
  const createOp = inTrace().find((s) => s.name === 'container create')!;
  assert.equal(createOp.parentSpanId, create.spanId);
  assert.equal(createOp.attributes['crisp.container.id'], ctr);
  assert.equal(byName('ContainerCreated')!.parentSpanId, createOp.spanId);
});

test('a failed step is an error span, and so is its call', async () => {
  const md = new grpc.Metadata();
  const traceId = randomBytes(16).toString('hex');
  md.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
  const config = node.podConfig(`traced-fail${node.tag}`);
  const { pod_sandbox_id: pod } = await callWith<{ pod_sandbox_id: string }>('RunPodSandbox', { config }, md);
  await assert.rejects(callWith('CreateContainer', {
    pod_sandbox_id: pod, config: { metadata: { name: 'bad', attempt: 0 }, image: { image: node.image }, command: ['sleep', '1'], devices: [{ host_path: '/nonexistent-device', container_path: '/dev/x', permissions: 'rwm' }] }, sandbox_config: config,
  }, md));
  await eventually(() => assert.ok(receiver.spans.some((s) => s.traceId === traceId && s.name === 'ContainerCreateFailed'), receiver.spans.filter((s) => s.traceId === traceId).map((s) => s.name).join(', ')), 15_000);
  const failed = receiver.spans.find((s) => s.traceId === traceId && s.name === 'ContainerCreateFailed')!;
  assert.equal(failed.status.code, 2, 'ERROR');
  assert.match(failed.status.message, /step spec-write: .*nonexistent-device/);
  const call = receiver.spans.find((s) => s.traceId === traceId && s.name === 'CreateContainer')!;
  assert.equal(call.status.code, 2);
  assert.equal(call.attributes['rpc.grpc.status_code'], String(grpc.status.NOT_FOUND));
});

test('crisp trace --format otlp sends a recorded pod: its streams as roots, their steps as children', async () => {
  const before = receiver.spans.length;
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'trace', '--db', 'state.db.example', 'aa821e', '--format', 'otlp', '--endpoint', receiver.url]);
  const count = Number(/^sent (\d+) spans/.exec(stdout)![1]);
  await eventually(() => assert.equal(receiver.spans.length - before, count), 10_000);
  const sent: ReceivedSpan[] = receiver.spans.slice(before);
  const roots = sent.filter((s) => s.parentSpanId === '');
  assert.deepEqual(roots.map((r) => r.name).sort(), ['container sidecar', 'container web', 'pod sandbox default/example']);
  for (const s of sent.filter((x) => x.parentSpanId !== '')) assert.ok(roots.some((r) => r.spanId === s.parentSpanId && r.traceId === s.traceId), `${s.name} hangs under a stream`);
});
