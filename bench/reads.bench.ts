// What kubelet's polling costs the daemon with 110 pods of one running container each: daemon
// CPU per ListPodSandbox and per ListContainers (300 calls each, one at a time, as the PLEG
// relists), the call as the client sees it, and daemon CPU per pair of ListPodSandboxStats +
// ListContainerStats sent together, 1 s apart (as kubelet's stats loop does). The floor, in the
// same run: a bare @grpc/grpc-js server with the same proto answering the same List responses
// (bench/fixtures/bare-list-server.mjs), measured the same way. The stats have no floor.
//
// Run as root: node --import tsx bench/reads.bench.ts [pods=110]
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDaemon, fmt, kubeletStartsPod } from './lib/kubelet.js';
import { percentile } from './lib/floor.js';
import { startTestNode } from '../test/helpers/node-env.js';
import { call, criClients } from '../test/helpers/cri-client.js';
import { makeTempDir } from '../test/helpers/bundle.js';
import { startBareListServer } from './lib/bare-list.js';
import { cpuMsOf } from './lib/proc.js';
import { setTimeout as sleep } from 'node:timers/promises';

const PODS = Number(process.argv[2] ?? 110);
const CALLS = 300;
const PAIRS = 10;

type Runtime = ReturnType<typeof criClients>['runtime'];

/** CPU of `pid` per call and the client-observed p50/p99 of `CALLS` calls of `method`, one at a time. */
async function perCall(pid: number, rt: Runtime, method: 'ListPodSandbox' | 'ListContainers') {
  const list = (): Promise<unknown> => (method === 'ListPodSandbox' ? call(rt, rt.ListPodSandbox, {}) : call(rt, rt.ListContainers, {}));
  for (let i = 0; i < 20; i++) await list(); // warm-up
  const took: number[] = [];
  const cpu0 = cpuMsOf(pid);
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await list();
    took.push(performance.now() - t0);
  }
  return { cpu: (cpuMsOf(pid) - cpu0) / CALLS, p50: percentile(took, 50), p99: percentile(took, 99) };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark runs pods: run it as root');
  const { daemonArgs, nodeArgs, nodeOptions } = await benchDaemon();
  const node = await startTestNode(daemonArgs, nodeOptions);
  const work = await makeTempDir('bench-reads');
  let floor: ChildProcess | undefined;
  try {
    await node.restartDaemon(daemonArgs, { nodeArgs });
    const rt = node.daemon.clients.runtime;
    for (let b = 0; b < PODS; b += 10) {
      await Promise.all(Array.from({ length: Math.min(10, PODS - b) }, (_, k) => kubeletStartsPod(node, 1000 + b + k)));
    }
    const pid = node.daemon.process.pid!;
    const responses = { ListPodSandbox: await call(rt, rt.ListPodSandbox, {}), ListContainers: await call(rt, rt.ListContainers, {}) };
    const responsesFile = join(work, 'responses.json');
    writeFileSync(responsesFile, JSON.stringify(responses));

    const socket = join(work, 'floor.sock');
    floor = await startBareListServer(socket, responsesFile);
    const floorRt = criClients(socket).runtime;

    console.log(`reads: ${responses.ListPodSandbox.items.length} pods, ${responses.ListContainers.containers.length} containers; ${CALLS} calls each, one at a time`);
    for (const method of ['ListPodSandbox', 'ListContainers'] as const) {
      const crisp = await perCall(pid, rt, method);
      const bare = await perCall(floor.pid!, floorRt, method);
      console.log(`${method.padEnd(15)} daemon CPU ${fmt(crisp.cpu)} ms/call, floor ${fmt(bare.cpu)} (${(crisp.cpu / bare.cpu).toFixed(2)}x); ` +
        `client-observed p50 ${fmt(crisp.p50)} p99 ${fmt(crisp.p99)} ms, floor p50 ${fmt(bare.p50)} p99 ${fmt(bare.p99)}`);
    }
    const cpu0 = cpuMsOf(pid);
    for (let i = 0; i < PAIRS; i++) {
      await Promise.all([call(rt, rt.ListPodSandboxStats, {}, 30_000), call(rt, rt.ListContainerStats, {}, 30_000)]);
      await sleep(1000);
    }
    console.log(`stats           daemon CPU ${fmt((cpuMsOf(pid) - cpu0) / PAIRS)} ms per ListPodSandboxStats + ListContainerStats pair, 1 s apart (${PAIRS} pairs)`);
  } finally {
    floor?.kill();
    await node.cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
