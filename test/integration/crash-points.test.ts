// Crash safety, proven: for every named crash point, a daemon armed with CRISP_TEST_CRASH_AT
// runs a pod's or a pull's whole lifecycle and dies there (SIGKILL, no cleanup); a fresh daemon
// on the same dirs recovers, the interrupted call is retried and the lifecycle finishes, and
// then nothing may remain: mounts, netns files, veths, IP leases, CNI cache entries, cgroups,
// conmon/runc processes, container, layer or blob dirs. A short randomized soak ends the file.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startTestNode } from '../helpers/node-env.js';
import type { TestDaemon } from '../helpers/daemon.js';
import { call } from '../helpers/cri-client.js';
import { assertNothingLeft, environment, pushPause, runLifecycle, type Lifecycle } from './crash-lifecycle.js';

const SANDBOX_CREATE = ['pin-namespaces', 'cni-add', 'pod-files', 'ready'];
const SANDBOX_STOP = ['cni-del', 'stopped'];
const SANDBOX_REMOVE = ['remove-pod-files', 'unpin-namespaces', 'remove-sandbox-dir'];
const INFRA = ['infra-image', 'infra-rootfs', 'infra-spec', 'infra-start', 'infra-stop', 'infra-delete', 'infra-rootfs-unmount'];
const CONTAINER = ['rootfs-mount', 'spec-write', 'runtime-create', 'start', 'update-resources', 'stop', 'runtime-delete', 'rootfs-unmount'];
const PULL = ['pull:requested', 'pull:layer-downloaded', 'pull:layer-unpacked', 'pull:layer-recorded', 'pull:before-recorded', 'pull:recorded'];

const both = (kind: string, steps: string[]) => steps.flatMap((s) => [`${kind}:${s}:before`, `${kind}:${s}:after`]);

interface Case {
  point: string;
  flow: Lifecycle['flow'];
}

const CASES: Case[] = [
  ...both('sandbox', [...SANDBOX_CREATE, ...SANDBOX_STOP, ...SANDBOX_REMOVE]).map((point) => ({ point, flow: 'pod' as const })),
  ...both('container', CONTAINER).map((point) => ({ point, flow: 'pod' as const })),
  ...both('sandbox', INFRA).map((point) => ({ point, flow: 'infra-pod' as const })),
  ...PULL.map((point) => ({ point, flow: 'pull' as const })),
  // Inside a create: the first runtime create of a pod flow is the container's, of an infra-pod flow the pause's.
  { point: 'runtime:conmon-launched', flow: 'pod' },
  { point: 'runtime:conmon-launched', flow: 'infra-pod' },
];

// Two nodes (own dirs, bridge, subnet, cgroup parent and registry) take the cases in turns, at
// the same time: a case spends most of its time waiting for daemons to start and recover, and
// the audit looks only at its own node, so the shards cannot see each other's leaks.
const SHARDS = 2;

test('every crash point: die there, restart, retry, and nothing is left', { timeout: 600_000 }, async (t) => {
  // CRISP_CRASH_ONLY=<substring> narrows the run while working on one point.
  const only = process.env['CRISP_CRASH_ONLY'];
  const cases = CASES.filter((x) => !only || x.point.includes(only));
  const iterations = Number(process.env['CRISP_SOAK_ITERATIONS'] ?? 10);
  const shards = Array.from({ length: SHARDS }, (_, shard) => ({
    shard,
    cases: cases.filter((_, i) => i % SHARDS === shard),
    soak: Math.floor(iterations / SHARDS) + (shard < iterations % SHARDS ? 1 : 0),
  }));
  const kills = await Promise.all(shards.map((s) => runShard(t, s.shard, s.cases, s.soak)));
  t.diagnostic(`soak: ${iterations} iterations, ${kills.reduce((a, b) => a + b, 0)} kills, 0 leaks (the audit fails the test on any)`);
});

/** Runs one shard's crash points and its part of the randomized soak on a node of its own; returns the soak's kills. */
async function runShard(t: TestContext, shard: number, cases: Case[], iterations: number): Promise<number> {
  const node = await startTestNode();
  const daemons: TestDaemon[] = [];
  try {
    // The node's first daemon pulled the image; each case runs daemons of its own on its dirs.
    node.daemon.clients.close();
    await node.daemon.stop('SIGTERM');
    const env = environment(node, await pushPause(node), daemons);
    const pull = async () => {
      const d = env.current() ?? (await env.start());
      await call(d.clients.image, d.clients.image.PullImage, { image: { image: node.image } }, 60_000);
    };
    let n = 0;
    for (const c of cases) {
      const began = Date.now();
      const outcome = await runLifecycle(env, { flow: c.flow, name: `p${n++}`, crashAt: c.point });
      t.diagnostic(`[${shard}] ${c.point}: ${Date.now() - began} ms`);
      assert.equal(outcome.crashed, true, `${c.point}: the daemon did not die at this point`);
      await assertNothingLeft(env, c.point, c.flow === 'pull' ? 'no-image' : 'image');
      if (c.flow === 'pull') await pull();
    }
    // The randomized soak, short: a random point of a random lifecycle, or a SIGKILL after a random delay.
    let kills = 0;
    for (let i = 0; i < iterations; i++) {
      const flow = (['pod', 'pod', 'infra-pod'] as const)[(i + shard) % 3]!;
      const outcome = await runLifecycle(env, { flow, name: `s${i}`, killAfterMs: 50 + Math.floor(Math.random() * 1500) });
      kills += outcome.kills;
      await assertNothingLeft(env, `soak #${i} of shard ${shard} (killed: ${outcome.crashed})`, 'image');
    }
    return kills;
  } finally {
    for (const d of daemons) {
      d.clients.close();
      await d.stop('SIGKILL');
    }
    await node.cleanup();
  }
}
