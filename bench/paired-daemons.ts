// The daemon CPU of two builds of crisp, measured side by side: a daemon of another checkout (A)
// and one of this checkout (B), each on a test node of its own, with pod lifecycles alternating
// between them (which goes first alternates too). On a shared host whose speed drifts by more
// than a change saves, both sides then meet the same drift, and B's CPU over A's says what the
// change did. Not part of `npm run bench`: it compares builds, it sets no target.
//
// Run as root: node --import tsx bench/paired-daemons.ts <other checkout> [rounds=20] [pods per round=1]
// The other checkout must be built (`npm run build` there). Prints the daemon CPU (all its threads,
// from /proc/<pid>/task/*/schedstat) per pod started (Run + Create + Start) and per pod torn down
// (Stop, Remove, and the release that follows RemovePodSandbox's reply).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchDaemon, kubeletStartsPod } from './lib/kubelet.js';
import { startTestNode, type TestNode } from '../test/helpers/node-env.js';
import { call } from '../test/helpers/cri-client.js';

const other = process.argv[2];
const ROUNDS = Number(process.argv[3] ?? 20);
const PER_ROUND = Number(process.argv[4] ?? 1);
const WARM_ROUNDS = 3;
// RemovePodSandbox answers before its release is done; this is long enough for it here.
const RELEASE_MS = 50;

function daemonCpuNs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  return ns;
}

function podsUp(node: TestNode, first: number): Promise<{ pod: string; ctr: string }[]> {
  return Promise.all(Array.from({ length: PER_ROUND }, (_, k) => kubeletStartsPod(node, first + k)));
}

async function podsDown(node: TestNode, pods: { pod: string; ctr: string }[]): Promise<void> {
  const rt = node.daemon.clients.runtime;
  await Promise.all(pods.map(async ({ pod, ctr }) => {
    await call(rt, rt.StopContainer, { container_id: ctr, timeout: 0 }, 60_000);
    await call(rt, rt.RemoveContainer, { container_id: ctr }, 60_000);
    await call(rt, rt.StopPodSandbox, { pod_sandbox_id: pod }, 60_000);
    await call(rt, rt.RemovePodSandbox, { pod_sandbox_id: pod }, 60_000);
  }));
  await sleep(RELEASE_MS);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark runs pods: run it as root');
  if (!other) throw new Error('usage: bench/paired-daemons.ts <other checkout> [rounds] [pods per round]');
  const otherEntry = join(resolve(other), 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(otherEntry)) throw new Error(`${otherEntry} is missing: run npm run build in ${other}`);
  const { nodeArgs, nodeOptions } = await benchDaemon(); // builds this checkout, points the helper at it
  const thisEntry = process.env['CRISP_TEST_DAEMON_ENTRY']!;
  // Both daemons without the metrics listener, which would need a port each.
  const daemonArgs = ['--log-level', 'info'];
  const nodes = {} as Record<'A' | 'B', TestNode>;
  try {
    for (const [side, entry] of [['A', otherEntry], ['B', thisEntry]] as const) {
      process.env['CRISP_TEST_DAEMON_ENTRY'] = entry;
      nodes[side] = await startTestNode(daemonArgs, nodeOptions);
      await nodes[side].restartDaemon(daemonArgs, { nodeArgs }); // with the node flags npm start uses
    }
    const up = { A: 0, B: 0 };
    const down = { A: 0, B: 0 };
    const round = async (side: 'A' | 'B', first: number, counted: boolean) => {
      const pid = nodes[side].daemon.process.pid!;
      const t0 = daemonCpuNs(pid);
      const pods = await podsUp(nodes[side], first);
      const t1 = daemonCpuNs(pid);
      await podsDown(nodes[side], pods);
      const t2 = daemonCpuNs(pid);
      if (counted) {
        up[side] += t1 - t0;
        down[side] += t2 - t1;
      }
    };
    // First runs of code are not what is compared.
    for (let r = 0; r < WARM_ROUNDS; r++) for (const side of ['A', 'B'] as const) await round(side, 10_000 + r * PER_ROUND, false);
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 ? (['A', 'B'] as const) : (['B', 'A'] as const)) await round(side, r * PER_ROUND, true);
    }
    const ms = (ns: number) => (ns / ROUNDS / PER_ROUND / 1e6).toFixed(2);
    console.log(`paired daemons, ${ROUNDS} rounds of ${PER_ROUND} pod(s) each; daemon CPU ms per pod (all threads)`);
    console.log(`A ${other}: started ${ms(up.A)}, torn down ${ms(down.A)}`);
    console.log(`B this checkout: started ${ms(up.B)}, torn down ${ms(down.B)}`);
    console.log(`B / A: started ${(up.B / up.A).toFixed(3)}, torn down ${(down.B / down.A).toFixed(3)}`);
  } finally {
    for (const node of Object.values(nodes)) await node.cleanup();
  }
}

await main();
