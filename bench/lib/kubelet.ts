// What kubelet sends, for the benches that drive crisp as kubelet does, and the daemon's own
// view of its RPC latencies (its metrics histogram).
import { spawnSync } from 'node:child_process';
import type * as grpc from '@grpc/grpc-js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { TestNode, TestNodeOptions } from '../../test/helpers/node-env.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { fullPackageDefinition } from '../../src/cri/proto.js';
import { EVENT_LOOP_SAMPLE_MS } from '../../src/metrics/crisp-metrics.js';
import { call } from '../../test/helpers/cri-client.js';

export const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

/**
 * A relist call as kubelet's client makes it, minus the decoding: the response is taken as bytes
 * and only its items are counted. Decoding 100 pods with protobufjs (toObject, defaults) costs
 * this Node client ~3 ms of CPU a call, several times what the daemon spends answering and far
 * more than kubelet's Go decoder; on a 2-core node that cost would be the bench's, not crisp's.
 * Resolves with the number of items (field 1 of ListPodSandboxResponse / ListContainersResponse).
 */
export async function listItemCount(client: grpc.Client, method: 'ListPodSandbox' | 'ListContainers', timeoutMs = 30_000): Promise<number> {
  return countField1(await emptyRequestBytes(client, method, timeoutMs));
}

/** A RuntimeService method called with an empty request (no filter), its response left as bytes. */
export function emptyRequestBytes(client: grpc.Client, method: string, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      `/runtime.v1.RuntimeService/${method}`,
      () => Buffer.alloc(0),
      (bytes) => bytes,
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (err, bytes) => (err ? reject(err) : resolve(bytes!)),
    );
  });
}

function countField1(b: Buffer): number {
  let count = 0;
  for (let pos = 0; pos < b.length;) {
    const tag = b[pos++]!;
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = b[pos++]!;
      len += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    if (tag === 0x0a) count++;
    pos += len;
  }
  return count;
}

/** A pod as kubelet runs it: namespace options, cgroup parent, DNS config, labels, annotations. */
export function kubeletPod(node: TestNode, i: number): PodSandboxConfig {
  const name = `density-${i}`;
  const uid = `uid-${node.tag}-${i}`;
  const labels = { 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': 'bench', 'io.kubernetes.pod.uid': uid, app: 'density' };
  return {
    metadata: { name, namespace: 'bench', uid, attempt: 0 },
    hostname: name,
    log_directory: join(node.logDir, `bench_${name}_${uid}`),
    dns_config: { servers: ['10.96.0.10'], searches: ['bench.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] },
    port_mappings: [],
    labels,
    annotations: { 'kubernetes.io/config.seen': new Date().toISOString(), 'kubernetes.io/config.source': 'api' },
    linux: {
      cgroup_parent: `${node.cgroupParent}/pod${uid}`,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  } as PodSandboxConfig;
}

/** Its one container, as kubelet asks for it (kubeletPreparesContainer adds what kubelet makes on the node). */
export function kubeletContainer(node: TestNode, i: number): ContainerConfig {
  return {
    metadata: { name: 'app', attempt: 0 },
    image: { image: node.image },
    command: ['sleep', '100000'],
    log_path: 'app/0.log',
    labels: { 'io.kubernetes.container.name': 'app', 'io.kubernetes.pod.name': `density-${i}`, 'io.kubernetes.pod.namespace': 'bench', 'io.kubernetes.pod.uid': `uid-${node.tag}-${i}` },
    annotations: { 'io.kubernetes.container.hash': 'abc123', 'io.kubernetes.container.restartCount': '0', 'io.kubernetes.container.terminationMessagePath': '/dev/termination-log' },
    linux: {
      resources: { cpu_shares: 2, memory_limit_in_bytes: 0, oom_score_adj: 1000 },
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  };
}

/**
 * What kubelet makes on the node before RunPodSandbox (kuberuntime's createPodSandbox): the pod's
 * log directory. The runtime only writes into it.
 */
export function kubeletPreparesPod(pod: PodSandboxConfig): void {
  mkdirSync(pod.log_directory!, { recursive: true, mode: 0o755 });
}

/**
 * What kubelet makes on the node before CreateContainer (kuberuntime's generateContainerConfig
 * and makeMounts): the container's log directory, and an empty termination-message file in the
 * pod's own kubelet directory, bind-mounted at the container's terminationMessagePath. Returns
 * the container's config with that mount; given it, the runtime makes no file of its own.
 */
export function kubeletPreparesContainer(node: TestNode, pod: PodSandboxConfig, container: ContainerConfig): ContainerConfig {
  mkdirSync(join(pod.log_directory!, dirname(container.log_path!)), { recursive: true, mode: 0o755 });
  const dir = join(node.daemon.dir, 'kubelet-pods', pod.metadata!.uid!, 'containers', container.metadata!.name!);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const file = join(dir, randomBytes(4).toString('hex'));
  writeFileSync(file, '', { mode: 0o644 });
  const path = container.annotations?.['io.kubernetes.container.terminationMessagePath'] ?? '/dev/termination-log';
  return { ...container, mounts: [...(container.mounts ?? []), { container_path: path, host_path: file }] };
}

/**
 * Starts pod `i` with one container as kubelet does: what kubelet makes on the node first, then
 * RunPodSandbox, CreateContainer and StartContainer.
 */
export async function kubeletStartsPod(node: TestNode, i: number, timeoutMs = 60_000): Promise<{ pod: string; ctr: string }> {
  const rt = node.daemon.clients.runtime;
  const config = kubeletPod(node, i);
  kubeletPreparesPod(config);
  const { pod_sandbox_id: pod } = await call(rt, rt.RunPodSandbox, { config }, timeoutMs);
  const ctrConfig = kubeletPreparesContainer(node, config, kubeletContainer(node, i));
  const { container_id: ctr } = await call(rt, rt.CreateContainer, { pod_sandbox_id: pod, sandbox_config: config, config: ctrConfig }, timeoutMs);
  await call(rt, rt.StartContainer, { container_id: ctr }, timeoutMs);
  return { pod, ctr };
}

/**
 * The daemon a node runs is the compiled one (`npm start`), not the sources through tsx: builds
 * it and points the test daemon helper at it, with metrics on a loopback port of its own (the
 * server-side RPC latencies come from its histogram). Returns the daemon's arguments, and the
 * test node's options: its runroot on a tmpfs, as /run is on a node.
 */
export async function benchDaemon(): Promise<{ metricsPort: number; daemonArgs: string[]; nodeArgs: string[]; nodeOptions: TestNodeOptions }> {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  process.env['CRISP_TEST_DAEMON_ENTRY'] = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
  const metricsPort = await freePort();
  return {
    metricsPort,
    daemonArgs: ['--log-level', process.env['CRISP_BENCH_LOG_LEVEL'] ?? 'info', '--enable-metrics=true', '--metrics-address', `127.0.0.1:${metricsPort}`],
    // the node flags `npm start` runs the daemon with
    nodeArgs: readFileSync(join(PACKAGE_ROOT, 'scripts', 'daemon-node-flags'), 'utf8').split(/\s+/).filter(Boolean),
    nodeOptions: { runrootTmpfs: true },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RpcHistogram {
  buckets: { le: number; count: number }[];
  sum: number;
}

/** The daemon's crisp_rpc_duration_seconds histogram, per RPC, read from its /metrics. */
export async function rpcHistograms(port: number): Promise<Map<string, RpcHistogram>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, RpcHistogram>();
  for (const line of text.split('\n')) {
    const rpc = /rpc="([^"]+)"/.exec(line)?.[1];
    if (!rpc || !line.startsWith('crisp_rpc_duration_seconds_')) continue;
    const h = out.get(rpc) ?? out.set(rpc, { buckets: [], sum: 0 }).get(rpc)!;
    const value = Number(line.split(' ').at(-1));
    if (line.startsWith('crisp_rpc_duration_seconds_sum{')) h.sum = value;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le !== undefined) h.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: value });
  }
  return out;
}

type GcTotals = Map<string, { count: number; ms: number }>;

/**
 * One scrape of the daemon's runtime figures, for a wave boundary:
 * - `lag`: the event-loop delay since the previous scrape (the daemon's monitor restarts at each
 *   one), p50, p99 and max in ms. A stall here is time every RPC waited before its handler ran,
 *   which the RPC histogram does not see. The monitor records the interval between the ticks of
 *   its timer, so the timer's period is taken off: what is left is how late a tick was.
 * - `gc`: its GC pauses so far by kind (minor = scavenge, major = mark-compact, ...), count and ms.
 */
export async function daemonRuntime(port: number): Promise<{ lag: { p50: number; p99: number; max: number }; gc: GcTotals }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^crisp_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000 - EVENT_LOOP_SAMPLE_MS;
  const gc: GcTotals = new Map();
  for (const m of text.matchAll(/^crisp_nodejs_gc_duration_seconds_(sum|count)\{kind="([^"]+)"\} (\S+)$/gm)) {
    let entry = gc.get(m[2]!);
    if (!entry) gc.set(m[2]!, (entry = { count: 0, ms: 0 }));
    if (m[1] === 'sum') entry.ms = Number(m[3]) * 1000;
    else entry.count = Number(m[3]);
  }
  return { lag: { p50: value('p50'), p99: value('p99'), max: value('max') }, gc };
}

/** GC pauses between two readings: "minor 69 (9.3 ms each, 6.4 ms/pod), ..."; kinds with none are left out. */
export function describeGcPauses(after: GcTotals, before: GcTotals, pods: number): string {
  const parts: string[] = [];
  for (const [kind, a] of after) {
    const count = a.count - (before.get(kind)?.count ?? 0);
    const ms = a.ms - (before.get(kind)?.ms ?? 0);
    if (count > 0) parts.push(`${kind} ${count} (${fmt(ms / count)} ms each, ${fmt(ms / pods)} ms/pod)`);
  }
  return parts.join(', ') || 'none';
}

const READS = ['ListPodSandbox', 'ListContainers', 'PodSandboxStatus', 'ContainerStatus', 'ListContainerStats', 'ListPodSandboxStats'];
const WRITES = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox'];

/**
 * One RPC's calls between two readings of the histogram: how many, their mean (ms), and the
 * bucket bound (ms) that `q` of them fall under; undefined when there were none.
 */
export function rpcLatency(rpc: string, after: Map<string, RpcHistogram>, before?: Map<string, RpcHistogram>):
  { count: number; meanMs: number; boundMs(q: number): number } | undefined {
  const a = after.get(rpc);
  if (!a) return undefined;
  const b = before?.get(rpc);
  const buckets = a.buckets.map((x, i) => ({ le: x.le, count: x.count - (b?.buckets[i]?.count ?? 0) }));
  const count = buckets.at(-1)?.count ?? 0;
  if (count === 0) return undefined;
  const sum = a.sum - (b?.sum ?? 0);
  return { count, meanMs: (sum / count) * 1000, boundMs: (q) => buckets.find((x) => x.count >= q * count)!.le * 1000 };
}

/**
 * Server-side latency of the calls between two readings of the histograms (or since start):
 * calls, mean, and p50/p99 as the bucket bounds they fall under.
 */
export function describeLatencies(after: Map<string, RpcHistogram>, before?: Map<string, RpcHistogram>, rpcs = [...READS, ...WRITES]): string[] {
  const lines: string[] = [];
  for (const rpc of rpcs) {
    const l = rpcLatency(rpc, after, before);
    if (!l) continue;
    lines.push(`  ${rpc.padEnd(20)} ${String(l.count).padStart(5)} calls  mean ${fmt(l.meanMs)} ms  p50 ≤ ${l.boundMs(0.5)} ms  p99 ≤ ${l.boundMs(0.99)} ms`);
  }
  return lines;
}

/**
 * The bench's clients generate a message type's codecs (protobufjs, in this process) the first
 * time they send or read one, ~5 ms each for RunPodSandbox and CreateContainer; kubelet's are
 * compiled Go. Encoding and decoding one of each of a pod's start here first keeps that out of
 * a timed first call, so that it times the daemon.
 */
export function warmClientCodecs(node: TestNode): void {
  const runtime = fullPackageDefinition()['runtime.v1.RuntimeService'] as grpc.ServiceDefinition;
  const pod = kubeletPod(node, 0);
  const requests: Record<string, unknown> = {
    RunPodSandbox: { config: pod, runtime_handler: '' },
    CreateContainer: { pod_sandbox_id: 'warm', sandbox_config: pod, config: kubeletContainer(node, 0) },
    StartContainer: { container_id: 'warm' },
  };
  for (const [method, request] of Object.entries(requests)) {
    const definition = runtime[method]!;
    definition.requestSerialize(request);
    definition.responseDeserialize(Buffer.alloc(0));
  }
}
