// ListContainerStats and ListPodSandboxStats latency with 110 running containers (p50/p95),
// then the daemon's CPU while a kubelet-like poller asks every second for a minute.
// Run as root: node --import tsx bench/stats.bench.ts [pods] [containersPerPod] [seconds]
import { cpuMsOf } from './lib/proc.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { call } from '../test/helpers/cri-client.js';
import { startStatsNode } from '../test/integration/stats-fixture.js';
import { percentile } from './lib/floor.js';

const PODS = Number(process.argv[2] ?? process.env['BENCH_PODS'] ?? 22);
const PER_POD = Number(process.argv[3] ?? process.env['BENCH_PER_POD'] ?? 5);
const SECONDS = Number(process.argv[4] ?? process.env['BENCH_SECONDS'] ?? 60);
const ITERATIONS = 50;
const cpuSecondsOf = (pid: number): number => cpuMsOf(pid) / 1000;

const node = await startStatsNode();
try {
  const rt = node.daemon.clients.runtime;
  const started = performance.now();
  for (let p = 0; p < PODS; p++) {
    const pod = await node.runPod(`b${p}`);
    await Promise.all(Array.from({ length: PER_POD }, () => node.createStarted(pod, ['/bin/sleep', '100000'])));
  }
  console.log(`${PODS * PER_POD} running containers in ${PODS} pods, set up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timed = async (what: string, fn: () => Promise<unknown>) => {
    await fn(); // the first call walks every writable layer once; kubelet pays it once per container
    const ms: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    console.log(`${what.padEnd(22)} p50 ${percentile(ms, 50).toFixed(1)} ms  p95 ${percentile(ms, 95).toFixed(1)} ms  (${ITERATIONS} calls)`);
  };
  const listContainerStats = async () => {
    const r = await call(rt, rt.ListContainerStats, { filter: null }, 30_000);
    if (r.stats.length !== PODS * PER_POD) throw new Error(`expected ${PODS * PER_POD} container stats, got ${r.stats.length}`);
  };
  const listPodStats = async () => {
    const r = await call(rt, rt.ListPodSandboxStats, { filter: null }, 30_000);
    if (r.stats.length !== PODS) throw new Error(`expected ${PODS} pod stats, got ${r.stats.length}`);
  };
  await timed('ListContainerStats', listContainerStats);
  await timed('ListPodSandboxStats', listPodStats);

  // kubelet's housekeeping asks for pods, containers and their stats; crictl-style polling each second
  const pid = node.daemon.process.pid!;
  const cpu0 = cpuSecondsOf(pid);
  const wall0 = performance.now();
  for (let s = 0; s < SECONDS; s++) {
    const tick = performance.now();
    await Promise.all([
      call(rt, rt.ListPodSandbox, { filter: null }),
      call(rt, rt.ListContainers, { filter: null }),
      listPodStats(),
      listContainerStats(),
    ]);
    await sleep(Math.max(0, 1000 - (performance.now() - tick)));
  }
  const cpu = cpuSecondsOf(pid) - cpu0;
  const wall = (performance.now() - wall0) / 1000;
  console.log(`daemon CPU while polling every second for ${wall.toFixed(0)} s: ${cpu.toFixed(2)} s (${((cpu / wall) * 100).toFixed(1)}% of one core)`);
} finally {
  await node.cleanup();
}
