// Many pods at once, as kubelet starts them: N pods of one busybox container each, B at a time
// (RunPodSandbox → CreateContainer → StartContainer per pod, with the namespace options, cgroup
// parent, DNS config, labels and annotations kubelet sends; the client makes what kubelet makes on
// the node first: the log directories, and the termination-message file it mounts into the
// container), while a PLEG-like poller relists
// every second (ListPodSandbox + ListContainers) and asks for stats every 10 s; then
// StopContainer → RemoveContainer → StopPodSandbox → RemovePodSandbox for all, B at a time.
// The daemon runs in a cgroup of its own, as crisp.service does under systemd (the bench's own
// processes, its pollers among them, stay where the bench runs, as kubelet.service would).
//
// The floor, measured in the same run at the same parallelism with no daemon: the per-pod
// system work by hand (pin namespaces with unshare, lo up, CNI ADD, conmon + runc create,
// runc start; and back: runc kill, exit file, runc delete, CNI DEL, unpin).
//
// It prints startup p50/p90/p99/max against the floor's, wave wall times, the daemon's own CPU
// per pod (utime+stime of the daemon process, children excluded) and its page faults per pod (each
// costs ~10 µs of the daemon's system time on this VM), its spawn helper's CPU, how long
// the event loop's thread waited for a core, relist latency during the wave
// and at steady state, the daemon's CPU and event-loop wake-ups per second at steady state (the
// pods running, only the poller calling), daemon RSS (fresh, with the pods, peak) and the
// conmons' RSS.
//
// Run as root: node --import tsx bench/density.bench.ts [pods=100] [batch=10]
//   CRISP_DENSITY_CPU_PROF=DIR  writes a V8 CPU profile of the daemon to DIR
//   CRISP_DENSITY_NODE_ARGS='…'  more options for the daemon's node
//   CRISP_DENSITY_DAEMON_ARGS='…'  more options for the daemon (`crisp daemon --help`)
//   CRISP_BENCH_LOG_LEVEL=warn  the daemon's log level (default info, as `npm start` runs it)
//   CRISP_DENSITY_LOG_SUMMARY=1  also prints the daemon's most frequent log messages
//   CRISP_DENSITY_DAEMON_CGROUP=bench  the daemon in the bench's cgroup rather than one of its own
import { fork, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeBundle, makeBusyboxRootfs, makeTempDir } from '../test/helpers/bundle.js';
import { startTestNode, type TestNode } from '../test/helpers/node-env.js';
import { mountTmpfs, unmountAllUnder } from '../test/helpers/mounts.js';
import { call } from '../test/helpers/cri-client.js';
import { RUNC, createByHand, percentile, waitForFile } from './lib/floor.js';
import {
  benchDaemon, daemonRuntime, describeGcPauses, describeLatencies, fmt, kubeletContainer, kubeletPod, kubeletPreparesContainer, kubeletPreparesPod, rpcHistograms,
} from './lib/kubelet.js';
import { EVENT_LOOP_SAMPLE_MS } from '../src/metrics/crisp-metrics.js';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import type { PollerSample } from './lib/poller.js';
import { startBareListServer } from './lib/bare-list.js';
import { describeTargets } from './lib/targets.js';
import { cpuMsOf, procStat, schedStat } from './lib/proc.js';
import { makeServiceCgroup } from '../test/helpers/service-cgroup.js';
import { spawnHelperOf } from '../test/helpers/daemon.js';

const PODS = Number(process.argv[2] ?? process.env['BENCH_PODS'] ?? 100);
const BATCH = Number(process.argv[3] ?? process.env['BENCH_BATCH'] ?? 10);
// Long enough to hold one round of the poller's stats calls (every 10 s) and ten relists.
const STEADY_SECONDS = 10;
const PLUGIN_DIR = '/usr/lib/cni';

// ---- process figures --------------------------------------------------------------------------

interface CpuMs {
  user: number;
  system: number;
  /** The event loop's own thread (user + system), the rest being libuv's pool and V8's helpers. */
  main: number;
  /** Minor page faults of all its threads: each costs ~10 µs of system time on this VM. */
  faults: number;
}

function cpuOf(pid: number): CpuMs {
  const all = procStat(`/proc/${pid}/stat`);
  const main = procStat(`/proc/${pid}/task/${pid}/stat`);
  return { user: all.userMs, system: all.systemMs, main: main.userMs + main.systemMs, faults: all.minorFaults };
}

/** CPU ms per pod between two readings: total, and its user, system and event-loop-thread parts. */
function perPod(from: CpuMs, to: CpuMs, pods: number) {
  const user = (to.user - from.user) / pods;
  const system = (to.system - from.system) / pods;
  return { total: user + system, user, system, main: (to.main - from.main) / pods, faults: (to.faults - from.faults) / pods };
}

/** CPU ms of a process's own threads (its children excluded); 0 once it is gone. */
function ownCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return cpuMsOf(pid);
  } catch {
    return 0;
  }
}

/**
 * The event loop's thread (pid's main thread), from one read of its schedstat and status: its time
 * on a core (ms); how long it waited for one (run_delay, ms) and how many times it got one: on a
 * saturated node, what a call waits before the daemon even runs. It gets a core back either after
 * a wake-up (a voluntary switch: it went to sleep and was woken) or after the scheduler took the
 * core from it while it still had work (an involuntary switch, a preemption): on a 2-core node
 * busy with runc and CNI plugins most of its waiting follows preemptions (README, density).
 */
function loopThread(pid: number): { cpuMs: number; waitedMs: number; slices: number; wakeUps: number; preemptions: number } {
  const { onCoreMs, waitedMs, slices } = schedStat(pid);
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const count = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
  return { cpuMs: onCoreMs, waitedMs, slices, wakeUps: count('voluntary_ctxt_switches'), preemptions: count('nonvoluntary_ctxt_switches') };
}

/** MiB, as the bench measures RSS, in MB, as the issue states its targets. */
const inMB = (mib: number): number => (mib * 1024 * 1024) / 1e6;

function statusKiB(pid: number, key: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${key}:`));
  return line ? Number(line.split(/\s+/)[1]) : 0;
}

/** Total RSS of the conmons whose command line names `marker` (their exit dir). */
function conmonRssMiB(marker: string): { count: number; mib: number } {
  let count = 0;
  let kib = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'conmon') continue;
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) continue;
      kib += statusKiB(Number(entry), 'VmRSS');
      count++;
    } catch {
      // exited while we looked
    }
  }
  return { count, mib: kib / 1024 };
}

// ---- a wave: `count` jobs, `batch` at a time ---------------------------------------------------

async function wave(count: number, batch: number, job: (i: number) => Promise<number>): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: batch }, async () => {
    for (let i = next++; i < count; i = next++) latencies.push(await job(i));
  }));
  return { latencies, wallMs: performance.now() - started };
}

const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });

// ---- the floor: the same system work by hand -----------------------------------------------------

function exec(file: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${out}${err}`))));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

interface FloorNet {
  name: string;
  cniVersion: string;
  plugins: Record<string, unknown>[];
}

/**
 * Kept where crisp keeps the same things: what a pod runs on (namespace pins, its bundle,
 * conmon's files, runc's state, exit files) on a tmpfs, as crisp's runroot is.
 */
class Floor {
  private readonly results = new Map<string, unknown>();
  constructor(
    private readonly run: string,
    private readonly rootfs: string,
    private readonly net: FloorNet,
    private readonly cgroupParent: string,
  ) {}

  private cniEnv(command: string, id: string, netns: string): NodeJS.ProcessEnv {
    return {
      ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: PLUGIN_DIR,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${id};K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${id}`,
    };
  }

  private podDir(id: string) {
    return join(this.run, 'pods', id);
  }

  private bundleDir(id: string) {
    return join(this.run, 'bundles', id);
  }

  async up(id: string): Promise<void> {
    const dir = this.podDir(id);
    const ns = ['net', 'ipc', 'uts'].map((k) => join(dir, k));
    await mkdir(dir, { recursive: true });
    for (const f of ns) await (await open(f, 'a')).close();
    await exec('unshare', [`--net=${ns[0]}`, `--ipc=${ns[1]}`, `--uts=${ns[2]}`, '--', 'hostname', id]);
    await exec('nsenter', [`--net=${ns[0]}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
    let result: unknown;
    for (const p of this.net.plugins) {
      const conf = { ...p, name: this.net.name, cniVersion: this.net.cniVersion, ...(result ? { prevResult: result } : {}) };
      result = JSON.parse(await exec(join(PLUGIN_DIR, p['type'] as string), [], this.cniEnv('ADD', id, ns[0]!), JSON.stringify(conf)));
    }
    this.results.set(id, result);
    const bundle = this.bundleDir(id);
    await makeBundle({
      dir: bundle, rootfs: this.rootfs, args: ['sleep', '100000'], cgroupsPath: `${this.cgroupParent}/${id}`,
      edit: (spec) => {
        spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) =>
          n.type === 'network' ? { type: 'network', path: ns[0] } : n.type === 'ipc' ? { type: 'ipc', path: ns[1] } : n.type === 'uts' ? { type: 'uts', path: ns[2] } : n);
        if (!spec.linux.namespaces.some((n: { type: string }) => n.type === 'network')) spec.linux.namespaces.push({ type: 'network', path: ns[0] });
        delete spec.hostname;
      },
    });
    const run = join(dir, 'run');
    await mkdir(run, { recursive: true });
    await createByHand({ id, bundle, runcRoot: this.runcRoot, exits: this.exits, attachDir: join(this.run, 'attach'), dir: run });
    await exec(RUNC, ['--root', this.runcRoot, 'start', id]);
  }

  async down(id: string): Promise<void> {
    const dir = this.podDir(id);
    const exited = waitForFile(this.exits, id);
    await exec(RUNC, ['--root', this.runcRoot, 'kill', id, 'KILL']);
    await exited;
    await exec(RUNC, ['--root', this.runcRoot, 'delete', '--force', id]);
    const netns = join(dir, 'net');
    for (const p of [...this.net.plugins].reverse()) {
      const conf = { ...p, name: this.net.name, cniVersion: this.net.cniVersion, prevResult: this.results.get(id) };
      await exec(join(PLUGIN_DIR, p['type'] as string), [], this.cniEnv('DEL', id, netns), JSON.stringify(conf));
    }
    await exec('umount', ['net', 'ipc', 'uts'].map((k) => join(dir, k)));
    await rm(dir, { recursive: true, force: true });
    await rm(this.bundleDir(id), { recursive: true, force: true });
    await rm(join(this.exits, id), { force: true });
    await rm(join(this.run, 'attach', id), { recursive: true, force: true });
  }

  get runcRoot() {
    return join(this.run, 'runc');
  }
  get exits() {
    return join(this.run, 'exits');
  }
  async prepare() {
    for (const d of [this.exits, join(this.run, 'attach'), join(this.run, 'pods'), join(this.run, 'bundles')]) await mkdir(d, { recursive: true });
  }
}

async function runFloor(node: TestNode, work: string, run: string) {
  const rootfs = await makeBusyboxRootfs(work);
  const net = JSON.parse(readFileSync(join(node.daemon.dir, 'cni', '10-test.conflist'), 'utf8')) as FloorNet;
  const floor = new Floor(run, rootfs, net, `${node.cgroupParent}/floor`);
  await floor.prepare();
  const ids = Array.from({ length: PODS }, (_, i) => `floor-${node.tag}-${i}`);
  const up = await wave(PODS, BATCH, async (i) => {
    const t0 = performance.now();
    await floor.up(ids[i]!);
    return performance.now() - t0;
  });
  const down = await wave(PODS, BATCH, async (i) => {
    const t0 = performance.now();
    await floor.down(ids[i]!);
    return performance.now() - t0;
  });
  await rm(floor.runcRoot, { recursive: true, force: true });
  return { up, down };
}

// ---- crisp, as kubelet drives it -----------------------------------------------------------------

interface Relists {
  /** Relist durations (ListPodSandbox + ListContainers), ms, tagged by phase. */
  samples: PollerSample[];
  stop(): Promise<void>;
  setPhase(phase: string): void;
}

function startPoller(socket: string, listsOnly = false): Relists {
  const poller = fork(new URL('./lib/poller.ts', import.meta.url), [socket, ...(listsOnly ? ['lists-only'] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const samples: PollerSample[] = [];
  poller.on('message', (s: PollerSample) => samples.push(s));
  // A poller that cannot start or dies is reported, not thrown: an error event nobody handles
  // would end the bench before its cleanup, leaving the daemon and its pods behind.
  const ended = new Promise<void>((resolve) => {
    poller.once('exit', () => resolve());
    poller.on('error', (err) => {
      console.error(`poller: ${err.message}`);
      if (poller.exitCode !== null || poller.pid === undefined) resolve();
    });
  });
  return {
    samples,
    setPhase: (phase) => poller.send({ phase }),
    stop: async () => {
      poller.send({ stop: true });
      await ended;
    },
  };
}

/**
 * The relist's floor: a bare grpc-js server (bench/fixtures/bare-list-server.mjs: the same library
 * and proto, an event loop with nothing else to do) answering as many pods and containers as the
 * wave lists at most, relisted by a poller of its own under the same load. What a relist costs on
 * this node when no pod work is queued ahead of it.
 */
async function startRelistFloor(node: TestNode, work: string, count: number): Promise<{ socket: string; stop(): void }> {
  const items = Array.from({ length: count }, (_, i) => {
    const pod = kubeletPod(node, i);
    return { id: `${i}`.padStart(64, 'a'), metadata: pod.metadata, state: 'SANDBOX_READY', created_at: String(Date.now() * 1e6), labels: pod.labels, annotations: pod.annotations, runtime_handler: '' };
  });
  const containers = items.map((pod, i) => {
    const ctr = kubeletContainer(node, i);
    return { id: `${i}`.padStart(64, 'c'), pod_sandbox_id: pod.id, metadata: ctr.metadata, image: ctr.image, image_ref: `sha256:${'b'.repeat(64)}`, state: 'CONTAINER_RUNNING', created_at: pod.created_at, labels: ctr.labels, annotations: ctr.annotations };
  });
  const responses = join(work, 'relist-floor.json');
  await writeFile(responses, JSON.stringify({ ListPodSandbox: { items }, ListContainers: { containers } }));
  const socket = join(work, 'relist-floor.sock');
  const server = await startBareListServer(socket, responses);
  return { socket, stop: () => server.kill() };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the density benchmark runs pods: run it as root');
  const profileDir = process.env['CRISP_DENSITY_CPU_PROF'];
  const { metricsPort, daemonArgs, nodeArgs: daemonNodeArgs, nodeOptions } = await benchDaemon();
  daemonArgs.push(...(process.env['CRISP_DENSITY_DAEMON_ARGS']?.split(' ').filter(Boolean) ?? []));
  // CRISP_DENSITY_TRACING=1: tracing on at 100% sampling, to a receiver in this process, to
  // weigh what it costs the daemon.
  const receiver = process.env['CRISP_DENSITY_TRACING'] === '1' ? await startOtlpReceiver() : undefined;
  if (receiver) daemonArgs.push('--enable-tracing=true', '--tracing-endpoint', receiver.url);
  // The daemon as crisp.service runs it: in a cgroup of its own, the cpu hierarchy's included, so
  // that it moves each conmon out and keeps the commands it runs in a child cgroup, as on a node.
  // CRISP_DENSITY_DAEMON_CGROUP=bench leaves it in the bench's cgroup, as a daemon run by hand.
  const service = process.env['CRISP_DENSITY_DAEMON_CGROUP'] === 'bench' ? undefined : await makeServiceCgroup(`crisp-bench-${process.pid}.service`, { cpu: true });
  const cgroupDirs = service?.dirs ?? [];
  const node = await startTestNode(daemonArgs, { ...nodeOptions, daemon: { cgroupDirs } }).catch(async (err: unknown) => {
    await service?.remove();
    throw err;
  });
  const nodeArgs = [
    ...daemonNodeArgs,
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...(process.env['CRISP_DENSITY_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
  ];
  // The daemon as npm start runs it (its node flags), and under the profiler when asked: the
  // profile is written when the daemon exits.
  if (nodeArgs.length > 0) await node.restartDaemon(daemonArgs, { nodeArgs, cgroupDirs });
  const work = await makeTempDir('bench-density');
  let poller: Relists | undefined;
  let floorPoller: Relists | undefined;
  let relistFloor: { socket: string; stop(): void } | undefined;
  try {
    // The floor's runroot: a tmpfs, as the node's (benchDaemon's node options).
    const floorRun = join(work, 'run');
    await mountTmpfs(floorRun);
    const floor = await runFloor(node, work, floorRun);

    const rt = node.daemon.clients.runtime;
    const pid = node.daemon.process.pid!;
    const exitsMarker = join(node.daemon.runroot, 'exits');
    // One pod first, so the first-call costs (module loading, JIT) are not counted per pod.
    await node.runPod('warm');
    await sleep(500);
    const rssFresh = statusKiB(pid, 'VmRSS') / 1024;
    // What pods and containers keep on disk until they are released (conmon's attach dir stays).
    const listEntries = () => [join(node.daemon.runroot, 'sandboxes'), join(node.daemon.runroot, 'containers'), join(node.daemon.root, 'containers')]
      .flatMap((dir) => (existsSync(dir) ? readdirSync(dir).filter((e) => e !== 'attach').map((e) => `${dir}/${e}`) : []));
    const entriesLeft = () => listEntries().length;
    const entriesBefore = entriesLeft();
    relistFloor = await startRelistFloor(node, work, PODS + 1);
    poller = startPoller(node.daemon.socket);
    floorPoller = startPoller(relistFloor.socket, true);
    await sleep(1500);
    const pods: string[] = new Array(PODS);
    const containers: string[] = new Array(PODS);
    poller.setPhase('up');
    floorPoller.setPhase('up');
    const logBefore = node.daemon.stderr().length;
    const { gc: gcUp0 } = await daemonRuntime(metricsPort); // also restarts the daemon's delay monitor
    const helper = spawnHelperOf(pid);
    const helperUp0 = ownCpuMs(helper);
    const clientDelayUp0 = loopThread(process.pid);
    const cpuUp0 = cpuOf(pid);
    const loopUp0 = loopThread(pid);
    const up = await wave(PODS, BATCH, async (i) => {
      const t0 = performance.now();
      const config = kubeletPod(node, i);
      kubeletPreparesPod(config);
      const { pod_sandbox_id: podId } = await call(rt, rt.RunPodSandbox, { config, runtime_handler: '' }, 120_000);
      pods[i] = podId;
      const { container_id } = await call(rt, rt.CreateContainer, {
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: kubeletPreparesContainer(node, config, kubeletContainer(node, i)),
      }, 120_000);
      containers[i] = container_id;
      await call(rt, rt.StartContainer, { container_id }, 120_000);
      return performance.now() - t0;
    });
    const cpuUp = perPod(cpuUp0, cpuOf(pid), PODS);
    const loopUp1 = loopThread(pid);
    const clientDelayUp1 = loopThread(process.pid);
    const helperUp = (ownCpuMs(helper) - helperUp0) / PODS;
    const { lag: lagUp, gc: gcUpEnd } = await daemonRuntime(metricsPort);
    const gcUp = describeGcPauses(gcUpEnd, gcUp0, PODS);
    poller.setPhase('steady');
    floorPoller.setPhase('steady');
    const steady0 = loopThread(pid);
    const steadyCpu0 = cpuOf(pid);
    await sleep(STEADY_SECONDS * 1000);
    const steady1 = loopThread(pid);
    const steadyCpu = perPod(steadyCpu0, cpuOf(pid), STEADY_SECONDS);
    const rssLoaded = statusKiB(pid, 'VmRSS') / 1024;
    const conmons = conmonRssMiB(exitsMarker);
    poller.setPhase('down');
    floorPoller.setPhase('down');
    const { gc: gcDown0 } = await daemonRuntime(metricsPort);
    const helperDown0 = ownCpuMs(helper);
    const cpuDown0 = cpuOf(pid);
    const loopDown0 = loopThread(pid);
    const down = await wave(PODS, BATCH, async (i) => {
      const t0 = performance.now();
      await call(rt, rt.StopContainer, { container_id: containers[i]!, timeout: 0 }, 120_000);
      await call(rt, rt.RemoveContainer, { container_id: containers[i]! }, 120_000);
      await call(rt, rt.StopPodSandbox, { pod_sandbox_id: pods[i]! }, 120_000);
      await call(rt, rt.RemovePodSandbox, { pod_sandbox_id: pods[i]! }, 120_000);
      return performance.now() - t0;
    });
    // Remove* answer before the release (runc delete, unmounts, directories) is done: the CPU of
    // the teardown is counted once the daemon has released everything.
    const downEnded = performance.now();
    while (entriesLeft() > entriesBefore && performance.now() - downEnded < 60_000) await sleep(20);
    const releasedAfterMs = performance.now() - downEnded;
    if (entriesLeft() > entriesBefore) console.log(`not released after 60 s: ${listEntries().join(' ')}`);
    const cpuDown = perPod(cpuDown0, cpuOf(pid), PODS);
    const loopDown1 = loopThread(pid);
    const helperDown = (ownCpuMs(helper) - helperDown0) / PODS;
    // What the daemon logged for the waves (info level, as `npm start` runs it): each line is a
    // write the event loop hands to the log's thread.
    const logged = node.daemon.stderr().slice(logBefore);
    const logLines = logged.split('\n').filter(Boolean);
    const { lag: lagDown, gc: gcDownEnd } = await daemonRuntime(metricsPort);
    const gcDown = describeGcPauses(gcDownEnd, gcDown0, PODS);
    await poller.stop();
    await floorPoller.stop();
    const samples = poller.samples;
    const floorSamples = floorPoller.samples;
    poller = undefined;
    floorPoller = undefined;
    const rssPeak = statusKiB(pid, 'VmHWM') / 1024;

    const relist = (phase: string, from = samples) => from.filter((s) => s.phase === phase).map((s) => s.ms);
    const listed = (phase: string) => Math.max(0, ...samples.filter((s) => s.phase === phase).map((s) => s.items));
    const c = stats(up.latencies);
    const f = stats(floor.up.latencies);
    const cd = stats(down.latencies);
    const fd = stats(floor.down.latencies);
    console.log(`density: ${PODS} pods × 1 container, ${BATCH} at a time, relist every 1 s, stats every 10 s`);
    console.log(`startup ms      crisp p50 ${fmt(c.p50)} p90 ${fmt(c.p90)} p99 ${fmt(c.p99)} max ${fmt(c.max)}`);
    console.log(`                floor p50 ${fmt(f.p50)} p90 ${fmt(f.p90)} p99 ${fmt(f.p99)} max ${fmt(f.max)}`);
    console.log(`                ratio p50 ${(c.p50 / f.p50).toFixed(2)}x p99 ${(c.p99 / f.p99).toFixed(2)}x`);
    console.log(`teardown ms     crisp p50 ${fmt(cd.p50)} p99 ${fmt(cd.p99)}; floor p50 ${fmt(fd.p50)} p99 ${fmt(fd.p99)}; ratio p50 ${(cd.p50 / fd.p50).toFixed(2)}x`);
    console.log(`wave wall s     up crisp ${(up.wallMs / 1000).toFixed(1)} floor ${(floor.up.wallMs / 1000).toFixed(1)} (${(up.wallMs / floor.up.wallMs).toFixed(2)}x); down crisp ${(down.wallMs / 1000).toFixed(1)} floor ${(floor.down.wallMs / 1000).toFixed(1)} (${(down.wallMs / floor.down.wallMs).toFixed(2)}x)`);
    console.log(`daemon CPU      ${fmt(cpuUp.total)} ms per pod started, ${fmt(cpuDown.total)} ms per pod torn down (released ${fmt(releasedAfterMs)} ms after the last reply)`);
    for (const [label, c] of [['up', cpuUp], ['down', cpuDown]] as const) {
      console.log(`  ${label.padEnd(4)} user ${fmt(c.user)} system ${fmt(c.system)}; event-loop thread ${fmt(c.main)}, other threads ${fmt(c.total - c.main)}; ${fmt(c.faults)} page faults per pod`);
    }
    console.log(`event loop      ${fmt((loopUp1.wakeUps - loopUp0.wakeUps) / PODS)} wake-ups per pod started, ${fmt((loopDown1.wakeUps - loopDown0.wakeUps) / PODS)} per pod torn down (voluntary switches of its thread: it slept and was woken)`);
    console.log(`spawn helper    ${fmt(helperUp)} ms per pod started, ${fmt(helperDown)} ms per pod torn down (its own CPU: forks, system calls, pipes; the programs it starts excluded)`);
    const waited = loopUp1.waitedMs - loopUp0.waitedMs;
    const slices = loopUp1.slices - loopUp0.slices;
    const clientWaited = clientDelayUp1.waitedMs - clientDelayUp0.waitedMs;
    const clientSlices = clientDelayUp1.slices - clientDelayUp0.slices;
    const preempted = loopUp1.preemptions - loopUp0.preemptions;
    console.log(`waits for a core  up wave: the daemon's event loop ${fmt(waited / PODS)} ms per pod, ${fmt(waited / Math.max(1, slices))} ms each of the ${slices} times it got a core ` +
      `(${fmt(preempted / PODS)} preemptions per pod, ${fmt((loopUp1.wakeUps - loopUp0.wakeUps) / PODS)} wake-ups); ` +
      `the bench's main thread (it drives the pods) ${fmt(clientWaited / Math.max(1, clientSlices))} ms each of ${clientSlices} times`);
    console.log(`event-loop delay (how late a tick of the daemon's ${EVENT_LOOP_SAMPLE_MS} ms sampling timer was) up p50 ${fmt(lagUp.p50)} p99 ${fmt(lagUp.p99)} max ${fmt(lagUp.max)} ms; down p50 ${fmt(lagDown.p50)} p99 ${fmt(lagDown.p99)} max ${fmt(lagDown.max)} ms`);
    // Pauses as the GC observer times them: wall time on the event loop's thread, which on a busy
    // node includes waiting for the GC's helper threads to get a core, so not CPU.
    console.log(`GC pauses (the daemon's, wall time) up: ${gcUp}; down: ${gcDown}`);
    const relistFigures = (phase: string) => {
      const xs = relist(phase);
      const fl = relist(phase, floorSamples);
      return { count: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), f50: percentile(fl, 50), f99: percentile(fl, 99) };
    };
    const relistUp = relistFigures('up');
    for (const [phase, { count, p50, p99, f50, f99 }] of [['up', relistUp], ['steady', relistFigures('steady')], ['down', relistFigures('down')]] as const) {
      console.log(`relist ${phase.padEnd(8)} p50 ${fmt(p50)} ms p99 ${fmt(p99)} ms (${count} relists, up to ${listed(phase)} pods + containers listed); ` +
        `idle-server floor p50 ${fmt(f50)} p99 ${fmt(f99)} ms, ratio p50 ${(p50 / f50).toFixed(2)}x p99 ${(p99 / f99).toFixed(2)}x`);
    }
    console.log(`steady state    ${PODS + 1} pods running, only the poller calling: daemon CPU ${fmt(steadyCpu.total)} ms per s ` +
      `(event-loop thread ${fmt((steady1.cpuMs - steady0.cpuMs) / STEADY_SECONDS)}), ` +
      `${fmt((steady1.wakeUps - steady0.wakeUps) / STEADY_SECONDS)} event-loop wake-ups per s`);
    const mb = (mib: number) => fmt(inMB(mib));
    console.log(`daemon RSS      fresh ${fmt(rssFresh)} MiB, with ${PODS + 1} pods ${fmt(rssLoaded)} MiB, peak ${fmt(rssPeak)} MiB ` +
      `(in MB: ${mb(rssFresh)}, ${mb(rssLoaded)}, ${mb(rssPeak)})`);
    console.log(`daemon log      ${logLines.length} lines over both waves, ${fmt(logLines.length / PODS)} per pod, ${fmt(Buffer.byteLength(logged) / 1024)} KiB`);
    if (process.env['CRISP_DENSITY_LOG_SUMMARY']) {
      const byMsg = new Map<string, number>();
      for (const line of logLines) {
        const step = /"step":"([^"]*)"/.exec(line)?.[1];
        const msg = `${/"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 80)}${step ? ` (step ${step})` : ''}`;
        byMsg.set(msg, (byMsg.get(msg) ?? 0) + 1);
      }
      for (const [msg, n] of [...byMsg].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${String(n).padStart(6)}  ${msg}`);
    }
    console.log(`conmon RSS      ${conmons.count} conmons, ${fmt(conmons.mib)} MiB total, ${fmt(conmons.mib / Math.max(1, conmons.count))} MiB each`);
    console.log('server-side RPC latency over the run (the daemon\'s histogram): calls, mean, p50/p99 bucket bounds');
    for (const line of describeLatencies(await rpcHistograms(metricsPort))) console.log(line);
    for (const line of describeTargets([
      { what: 'daemon CPU per pod started', value: cpuUp.total, limit: 25, unit: ' ms' },
      { what: 'daemon CPU per pod torn down', value: cpuDown.total, limit: 25, unit: ' ms' },
      { what: 'startup p50 against the floor', value: c.p50 / f.p50, limit: 1.15, unit: '×', digits: 2 },
      { what: 'startup p99 against the floor', value: c.p99 / f.p99, limit: 1.3, unit: '×', digits: 2 },
      { what: 'relist while pods start, p50', value: relistUp.p50, limit: 5, unit: ' ms', note: `idle-server floor ${fmt(relistUp.f50)} ms` },
      { what: 'relist while pods start, p99', value: relistUp.p99, limit: 50, unit: ' ms', note: `idle-server floor ${fmt(relistUp.f99)} ms` },
      { what: 'daemon RSS fresh', value: inMB(rssFresh), limit: 70, unit: ' MB' },
      { what: `daemon RSS with ${PODS + 1} pods running`, value: inMB(rssLoaded), limit: 100, unit: ' MB', note: 'the target says 110 pods' },
    ])) console.log(line);
    if (nodeArgs.length > 0) await node.daemon.stop('SIGTERM');
    if (profileDir) console.log(`daemon CPU profile written to ${profileDir}`);
  } finally {
    await poller?.stop();
    await floorPoller?.stop();
    relistFloor?.stop();
    await node.cleanup();
    await service?.remove();
    await unmountAllUnder(work);
    await rm(work, { recursive: true, force: true });
    if (receiver) {
      console.log(`tracing: ${receiver.spans.length} spans received`);
      await receiver.stop();
    }
  }
}

await main();
