// critest-style single operations, one pod at a time, against a fresh daemon: the first
// RunPodSandbox after start-up against the later ones (on a new node, and after a restart; with
// the daemon's event-loop CPU and page faults of each, to tell work from waiting), CreateContainer + StartContainer against
// conmon + runc by hand on a prepared bundle (bench/lib/floor.ts, measured in the same run), and
// how soon StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox answer. The
// reads' server-side latency comes from the daemon's own histogram, with 110 pods present.
//
// Run as root: node --import tsx bench/single-ops.bench.ts [iterations=30]
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { directCycle, percentile } from './lib/floor.js';
import {
  benchDaemon, describeLatencies, fmt, kubeletContainer, kubeletPod, kubeletPreparesContainer, kubeletPreparesPod, kubeletStartsPod, rpcHistograms, rpcLatency, warmClientCodecs,
} from './lib/kubelet.js';
import { describeTargets } from './lib/targets.js';
import { procStat, schedStat } from './lib/proc.js';
import { makeBundle, makeBusyboxRootfs, makeTempDir } from '../test/helpers/bundle.js';
import { startTestNode } from '../test/helpers/node-env.js';
import { mountTmpfs, unmountAllUnder } from '../test/helpers/mounts.js';
import { call } from '../test/helpers/cri-client.js';

const ITERATIONS = Number(process.argv[2] ?? process.env['BENCH_ITERATIONS'] ?? 30);
const PRESENT = 110;

/**
 * The daemon's event-loop thread: its CPU ms (schedstat), and the daemon's minor page faults
 * (~10 µs of system time each on this VM). Read around a call, they say whether a slower call
 * did more work in the daemon or waited.
 */
function daemonWork(pid: number): { cpuMs: number; faults: number } {
  return { cpuMs: schedStat(pid).onCoreMs, faults: procStat(`/proc/${pid}/stat`).minorFaults };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark runs pods: run it as root');
  const { metricsPort, daemonArgs, nodeArgs, nodeOptions } = await benchDaemon();
  const node = await startTestNode(daemonArgs, nodeOptions);
  const work = await makeTempDir('bench-single');
  // conmon's and runc's files for the floor on a tmpfs, as the node's runroot is.
  const floorRun = join(work, 'run');
  try {
    await mountTmpfs(floorRun);
    const rt = () => node.daemon.clients.runtime;
    // A fresh daemon on a node where no pod has run: the image is pulled, and the CNI bridge
    // plugin creates its bridge (and masquerade rules) during this first ADD.
    await node.restartDaemon(daemonArgs, { nodeArgs });
    // As kubelet does before any pod: Version on connecting (and Status every 5 s). The client's
    // connection is then made, so the first RunPodSandbox times the daemon, not the dial.
    await call(rt(), rt().Version, {});
    warmClientCodecs(node);
    const newNode = kubeletPod(node, 9999);
    const [{ pod_sandbox_id: newNodePod }, firstOnNewNode] = await timed(() => call(rt(), rt().RunPodSandbox, { config: newNode }, 60_000));
    await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: newNodePod }, 60_000);
    await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: newNodePod }, 60_000);
    // The daemon started again on that node, as after an upgrade or a crash: the bridge exists,
    // so the first RunPodSandbox below differs from the later ones by the daemon's own warm-up.
    await node.restartDaemon(daemonArgs, { nodeArgs });
    await call(rt(), rt().Version, {});
    const run: number[] = [];
    const runCpu: number[] = [];
    const runFaults: number[] = [];
    const createStart: number[] = [];
    const floor: number[] = [];
    const stopCtr: number[] = [];
    const removeCtr: number[] = [];
    const stopPod: number[] = [];
    const removePod: number[] = [];
    const rootfs = await makeBusyboxRootfs(work);
    const bundle = await makeBundle({ dir: join(floorRun, 'bundle'), rootfs, args: ['sleep', '1000'], cgroupsPath: `${node.cgroupParent}/floor` });
    await mkdir(join(work, 'logs'), { recursive: true });
    for (let i = 0; i < ITERATIONS; i++) {
      const config = kubeletPod(node, i);
      kubeletPreparesPod(config);
      const daemonPid = node.daemon.process.pid!;
      const work0 = daemonWork(daemonPid);
      const [{ pod_sandbox_id: pod }, runMs] = await timed(() => call(rt(), rt().RunPodSandbox, { config }, 60_000));
      const work1 = daemonWork(daemonPid);
      run.push(runMs);
      runCpu.push(work1.cpuMs - work0.cpuMs);
      runFaults.push(work1.faults - work0.faults);
      const ctrConfig = kubeletPreparesContainer(node, config, kubeletContainer(node, i));
      const t0 = performance.now();
      const { container_id: ctr } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: pod, sandbox_config: config, config: ctrConfig }, 60_000);
      await call(rt(), rt().StartContainer, { container_id: ctr }, 60_000);
      createStart.push(performance.now() - t0);
      floor.push((await directCycle(floorRun, bundle, `single-floor-${i}`)).createStartMs);
      stopCtr.push((await timed(() => call(rt(), rt().StopContainer, { container_id: ctr, timeout: 0 }, 60_000)))[1]);
      removeCtr.push((await timed(() => call(rt(), rt().RemoveContainer, { container_id: ctr }, 60_000)))[1]);
      stopPod.push((await timed(() => call(rt(), rt().StopPodSandbox, { pod_sandbox_id: pod }, 60_000)))[1]);
      removePod.push((await timed(() => call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: pod }, 60_000)))[1]);
    }
    const p50 = (xs: number[]) => percentile(xs, 50);
    console.log(`single operations, ${ITERATIONS} pods one at a time against a fresh daemon, ms (client side)`);
    console.log(`RunPodSandbox        first ${fmt(run[0]!)}  tenth ${fmt(run[9] ?? NaN)}  p50 of the rest ${fmt(p50(run.slice(1)))}  (daemon restarted on a node that has run a pod)`);
    console.log(`                     the daemon's event-loop CPU: first ${fmt(runCpu[0]!)}  p50 of the rest ${fmt(p50(runCpu.slice(1)))}; its page faults: first ${runFaults[0]}  p50 of the rest ${fmt(p50(runFaults.slice(1)))}`);
    console.log(`                     first on a node where no pod has run yet ${fmt(firstOnNewNode)} (the bridge plugin creates its bridge)`);
    const createStartRatio = p50(createStart) / p50(floor);
    console.log(`Create+StartContainer first ${fmt(createStart[0]!)}  p50 ${fmt(p50(createStart))}  floor (conmon + runc) p50 ${fmt(p50(floor))}  ratio ${createStartRatio.toFixed(2)}x`);
    console.log(`StopContainer        p50 ${fmt(p50(stopCtr))}   RemoveContainer p50 ${fmt(p50(removeCtr))}`);
    console.log(`StopPodSandbox       p50 ${fmt(p50(stopPod))}   RemovePodSandbox p50 ${fmt(p50(removePod))}`);

    console.log('server side (the daemon\'s histogram) for the operations above:');
    for (const line of describeLatencies(await rpcHistograms(metricsPort))) console.log(line);
    // Reads with PRESENT pods of one running container each.
    for (let i = 0; i < PRESENT; i++) await kubeletStartsPod(node, 1000 + i);
    const before = await rpcHistograms(metricsPort);
    const pods = (await call(rt(), rt().ListPodSandbox, {})).items;
    const ctrs = (await call(rt(), rt().ListContainers, {})).containers;
    const relists: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await call(rt(), rt().ListPodSandbox, {});
      await call(rt(), rt().ListContainers, {});
      relists.push(performance.now() - t0);
      await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: pods[i % pods.length]!.id });
      await call(rt(), rt().ContainerStatus, { container_id: ctrs[i % ctrs.length]!.id });
    }
    console.log(`relist (ListPodSandbox + ListContainers, as the client sees it) p50 ${fmt(p50(relists))} p99 ${fmt(percentile(relists, 99))}`);
    console.log(`server side of 100 rounds of List/Status reads with ${pods.length} pods present:`);
    const reads = ['ListPodSandbox', 'ListContainers', 'PodSandboxStatus', 'ContainerStatus'];
    const after = await rpcHistograms(metricsPort);
    for (const line of describeLatencies(after, before, reads)) console.log(line);
    for (const line of describeTargets([
      ...(run.length >= 10 ? [{ what: 'the first RunPodSandbox against the tenth', value: run[0]! / run[9]!, limit: 1, unit: '×', digits: 2, note: `${fmt(run[0]!)} against ${fmt(run[9]!)} ms` }] : []),
      { what: 'Create+StartContainer against conmon + runc (p50)', value: createStartRatio, limit: 1.1, unit: '×', digits: 2 },
      { what: 'RemoveContainer p50', value: p50(removeCtr), limit: 15, unit: ' ms' },
      { what: 'RemovePodSandbox p50', value: p50(removePod), limit: 15, unit: ' ms' },
      ...reads.map((rpc) => ({ what: `${rpc} p50, server side, ${pods.length} pods`, value: rpcLatency(rpc, after, before)?.boundMs(0.5) ?? NaN, limit: 0.5, unit: ' ms', note: "the daemon's histogram: a bucket's bound" })),
    ])) console.log(line);
  } finally {
    await node.cleanup();
    await unmountAllUnder(work);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
