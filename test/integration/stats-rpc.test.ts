// Container and pod stats over the real daemon socket, with real containers: the figures must
// follow what the containers actually do (burn CPU, allocate memory, write files, talk).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { call } from '../helpers/cri-client.js';
import { eventually, startStatsNode, type StatsNode } from './stats-fixture.js';

let node: StatsNode;
let podId: string;
const rt = () => node.daemon.clients.runtime;
const MB = 1024 * 1024;
const stats = async (id: string) => (await call(rt(), rt().ContainerStats, { container_id: id })).stats!;
const n = (v: { value?: unknown } | null | undefined) => Number(v?.value ?? NaN);

before(async () => {
  node = await startStatsNode();
  podId = await node.runPod('statspod');
});
after(async () => {
  await node?.cleanup();
});

test('a container burning CPU: usage core nanoseconds rise by about a core each second, and nano cores say so', async () => {
  const id = await node.createStarted(podId, ['/bin/sh', '-c', 'while :; do :; done'], { role: 'burner' });
  const first = await stats(id);
  await sleep(1500);
  const second = await stats(id);
  const used = n(second.cpu?.usage_core_nano_seconds) - n(first.cpu?.usage_core_nano_seconds);
  const wall = Number(BigInt(String(second.cpu!.timestamp)) - BigInt(String(first.cpu!.timestamp)));
  assert.ok(used > 0.5 * wall, `used ${used} ns of CPU in ${wall} ns`);
  assert.ok(n(second.cpu?.usage_nano_cores) > 0.5e9 && n(second.cpu?.usage_nano_cores) < 1.5e9, `nano cores ${n(second.cpu?.usage_nano_cores)}`);
  assert.equal(second.attributes?.id, id);
  assert.equal(second.attributes?.labels?.['role'], 'burner');
  await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 30_000);
});

// sort holds its whole input (one 64 MiB line) while it waits to write to a reader that never reads.
test('a container allocating 64 MiB: working set and RSS reflect it; an idle one stays small', async () => {
  const idle = await node.createStarted(podId, ['/bin/sleep', '600']);
  const id = await node.createStarted(podId, ['/bin/sh', '-c', 'head -c 67108864 /dev/zero | tr "\\000" a | sort | sleep 600']);
  let last: unknown;
  const s = await eventually('the allocation', async () => {
    const got = await stats(id);
    last = got.memory;
    // sort is still reading when the working set passes 60 MiB: wait for its RSS too.
    return n(got.memory?.working_set_bytes) >= 60 * MB && n(got.memory?.rss_bytes) >= 60 * MB ? got : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last memory stats ${JSON.stringify(last)}`);
  });
  assert.ok(n(s.memory?.working_set_bytes) < 400 * MB, `working set ${n(s.memory?.working_set_bytes)}`);
  assert.ok(n(s.memory?.rss_bytes) >= 60 * MB, `rss ${n(s.memory?.rss_bytes)}`);
  assert.ok(n(s.memory?.usage_bytes) >= n(s.memory?.working_set_bytes));
  assert.ok(n(s.memory?.page_faults) > 0);
  assert.ok(/^\d{19}$/.test(String(s.memory?.timestamp)));
  const quiet = await stats(idle);
  assert.ok(n(quiet.memory?.working_set_bytes) < 16 * MB, `idle working set ${n(quiet.memory?.working_set_bytes)}`);
});

test('writable layer bytes grow after writing a file in the container', async () => {
  const id = await node.createStarted(podId, ['/bin/sleep', '600']);
  const before = await stats(id);
  assert.ok(before.writable_layer?.fs_id?.mountpoint);
  const out = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/dd', 'if=/dev/zero', 'of=/big', 'bs=1048576', 'count=20'], timeout: 30 }, 60_000);
  assert.equal(out.exit_code, 0, Buffer.from(out.stderr).toString());
  // the walk is refreshed in the background at most every 10 s
  const after = await eventually('the writable layer to grow', async () => {
    const got = await stats(id);
    return n(got.writable_layer?.used_bytes) >= n(before.writable_layer?.used_bytes) + 20 * MB ? got : undefined;
  }, 30_000);
  assert.ok(n(after.writable_layer?.inodes_used) > n(before.writable_layer?.inodes_used));
});

test('ListContainerStats filters by id prefix, pod and labels; ContainerStats of an unknown id is NotFound', async () => {
  const id = await node.createStarted(podId, ['/bin/sleep', '600'], { pick: 'me' });
  const all = (await call(rt(), rt().ListContainerStats, { filter: null })).stats;
  assert.ok(all.some((s) => s.attributes?.id === id));
  assert.deepEqual((await call(rt(), rt().ListContainerStats, { filter: { id: id.slice(0, 12) } })).stats.map((s) => s.attributes?.id), [id]);
  assert.deepEqual((await call(rt(), rt().ListContainerStats, { filter: { label_selector: { pick: 'me' } } })).stats.map((s) => s.attributes?.id), [id]);
  assert.equal((await call(rt(), rt().ListContainerStats, { filter: { pod_sandbox_id: podId } })).stats.length, all.filter((s) => s.attributes).length);
  assert.equal((await call(rt(), rt().ListContainerStats, { filter: { pod_sandbox_id: 'f'.repeat(64) } })).stats.length, 0);
  await assert.rejects(call(rt(), rt().ContainerStats, { container_id: 'f'.repeat(64) }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
});

test('pressure stall information: more busy loops than cores show CPU pressure for the container and its pod', async () => {
  const loops = 'while :; do :; done';
  const id = await node.createStarted(podId, ['/bin/sh', '-c', `${loops} & ${loops} & ${loops}`], { role: 'psi' });
  try {
    const psi = await eventually('CPU pressure', async () => {
      const s = await stats(id);
      return Number(s.cpu?.psi?.Some?.Total ?? 0) > 0 ? s : undefined;
    });
    for (const usage of [psi.cpu!.psi!, psi.memory!.psi!, psi.io!.psi!]) {
      assert.match(String(usage.Some!.Total), /^\d+$/);
      assert.match(String(usage.Full!.Total), /^\d+$/);
      assert.ok(Number(usage.Some!.Avg10) >= 0 && Number(usage.Some!.Avg10) <= 100);
    }
    const pod = (await call(rt(), rt().PodSandboxStats, { pod_sandbox_id: podId })).stats!;
    assert.ok(Number(pod.linux?.cpu?.psi?.Some?.Total ?? 0) > 0, "the pod's cgroup saw the stall too");
    assert.ok(pod.linux?.io?.psi, 'pod IO pressure');
  } finally {
    await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 30_000);
  }
});

test('pod stats for a pod without cgroup_parent: CPU, memory, processes and its containers', async () => {
  const pod = await node.runPod('nocg', { cgroupParent: null });
  const id = await node.createStarted(pod, ['/bin/sh', '-c', 'while :; do :; done']);
  await sleep(500);
  const s = (await call(rt(), rt().PodSandboxStats, { pod_sandbox_id: pod })).stats!;
  assert.equal(s.attributes?.id, pod);
  assert.ok(n(s.linux?.cpu?.usage_core_nano_seconds) > 1e8, `pod cpu ${n(s.linux?.cpu?.usage_core_nano_seconds)}`);
  assert.ok(n(s.linux?.memory?.working_set_bytes) > 0);
  assert.ok(n(s.linux?.process?.process_count) >= 1);
  assert.deepEqual(s.linux?.containers?.map((c) => c.attributes?.id), [id]);
  const listed = (await call(rt(), rt().ListPodSandboxStats, { filter: { label_selector: { pod: 'nocg' } } })).stats;
  assert.deepEqual(listed.map((p) => p.attributes?.id), [pod]);
  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: pod }, 60_000);
});

test('pod network counters grow after traffic between two test pods', async () => {
  const server = await node.runPod('netsrv');
  const client = await node.runPod('netcli');
  await node.createStarted(server, ['/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1048576 count=3 && exec httpd -f -p 8080 -h /']);
  const fetcher = await node.createStarted(client, ['/bin/sleep', '600']);
  const ip = (await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: server })).status!.network!.ip!;
  const net = async (pod: string) => (await call(rt(), rt().PodSandboxStats, { pod_sandbox_id: pod })).stats!.linux!.network!.default_interface!;
  const [srvBefore, cliBefore] = [await net(server), await net(client)];
  assert.equal(cliBefore.name, 'eth0');
  const out = await eventually('the download', async () => {
    const r = await call(rt(), rt().ExecSync, { container_id: fetcher, cmd: ['/bin/wget', '-q', '-O', '/dev/null', `http://${ip}:8080/big`], timeout: 30 }, 60_000);
    return r.exit_code === 0 ? r : undefined;
  }, 15_000);
  assert.equal(out.exit_code, 0);
  await eventually('the counters to grow by 3 MiB', async () => {
    const [srv, cli] = [await net(server), await net(client)];
    return n(srv.tx_bytes) >= n(srvBefore.tx_bytes) + 3 * MB && n(cli.rx_bytes) >= n(cliBefore.rx_bytes) + 3 * MB ? true : undefined;
  }, 10_000);
});

// kubelet runs no infra container for a pod whose containers have their own PID namespaces, so
// once its only container has exited nothing lives in the pod's network namespace: its counters
// are then read from inside the pinned namespace, and must still hold the traffic it had.
test('a pod with no process left still reports the traffic its exited container had', async () => {
  const server = await node.runPod('netsrv2');
  const client = await node.runPod('netcli2');
  await node.createStarted(server, ['/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1048576 count=3 && exec httpd -f -p 8080 -h /']);
  const ip = (await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: server })).status!.network!.ip!;
  const script = `for i in $(seq 1 50); do wget -q -O /dev/null http://${ip}:8080/big && exit 0; sleep 0.2; done; exit 1`;
  const fetcher = await node.createStarted(client, ['/bin/sh', '-c', script]);
  const exited = await eventually('the download to finish', async () => {
    const status = (await call(rt(), rt().ContainerStatus, { container_id: fetcher })).status!;
    return status.state === 'CONTAINER_EXITED' ? status : undefined;
  }, 20_000);
  assert.equal(exited.exit_code, 0, 'the container downloaded the file');
  const pod = (await call(rt(), rt().PodSandboxStats, { pod_sandbox_id: client })).stats!;
  const eth0 = pod.linux!.network!.default_interface!;
  assert.equal(eth0.name, 'eth0');
  assert.ok(n(eth0.rx_bytes) >= 3 * MB, `received ${n(eth0.rx_bytes)} bytes`);
  assert.deepEqual(pod.linux!.network!.interfaces.map((i) => i.name), ['eth0'], "the pod's interfaces only, loopback left out");
  const listed = (await call(rt(), rt().ListPodSandboxStats, { filter: { id: client } })).stats[0]!.linux!.network!.default_interface!;
  assert.ok(n(listed.rx_bytes) >= n(eth0.rx_bytes));
  for (const id of [client, server]) await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000);
});

test('pod sandbox metrics carry the cAdvisor series kubelet reads, each described', async () => {
  const descriptors = (await call(rt(), rt().ListMetricDescriptors, {})).descriptors;
  const keys = new Map(descriptors.map((d) => [d.name, d.label_keys.length]));
  assert.ok(keys.has('container_cpu_usage_seconds_total') && keys.has('container_memory_working_set_bytes'));
  const pods = (await call(rt(), rt().ListPodSandboxMetrics, {})).pod_metrics;
  const ours = pods.find((p) => p.pod_sandbox_id === podId)!;
  const names = new Set(ours.container_metrics.flatMap((c) => c.metrics.map((m) => m.name)));
  for (const name of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes', 'container_fs_usage_bytes']) assert.ok(names.has(name), name);
  for (const m of [...ours.metrics, ...ours.container_metrics.flatMap((c) => c.metrics)]) assert.equal(m.label_values.length, keys.get(m.name), m.name);
});
