// `npm run soak [-- ITERATIONS]`: the randomized crash soak, long. Each iteration runs a random
// pod lifecycle (with or without an infra container) against a daemon that is SIGKILLed at a
// random moment (or, every third iteration, at a random named crash point), restarts it, finishes
// the lifecycle, and runs the leak audit of test/integration/crash-points.test.ts. Needs root.
import { startTestNode } from '../test/helpers/node-env.js';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { assertNothingLeft, environment, pushPause, runLifecycle } from '../test/integration/crash-lifecycle.js';

const STEPS = [
  'pin-namespaces', 'cni-add', 'pod-files', 'ready', 'cni-del', 'stopped', 'remove-pod-files', 'unpin-namespaces', 'remove-sandbox-dir',
].map((s) => `sandbox:${s}`).concat(['rootfs-mount', 'spec-write', 'runtime-create', 'start', 'stop', 'runtime-delete', 'rootfs-unmount'].map((s) => `container:${s}`));
const POINTS = [...STEPS.flatMap((s) => [`${s}:before`, `${s}:after`]), 'runtime:conmon-launched'];

const iterations = Number(process.argv[2] ?? process.env['CRISP_SOAK_ITERATIONS'] ?? 100);
const node = await startTestNode();
const daemons: TestDaemon[] = [];
let kills = 0;
let leaks = 0;
const began = Date.now();
try {
  node.daemon.clients.close();
  await node.daemon.stop('SIGKILL');
  const env = environment(node, await pushPause(node), daemons);
  for (let i = 0; i < iterations; i++) {
    const flow = Math.random() < 0.3 ? 'infra-pod' : 'pod';
    const pick = POINTS[Math.floor(Math.random() * POINTS.length)]!;
    const crashAt = i % 3 === 2 ? pick : undefined;
    const outcome = await runLifecycle(env, { flow, name: `soak${i}`, ...(crashAt ? { crashAt } : { killAfterMs: 50 + Math.floor(Math.random() * 2000) }) });
    kills += outcome.kills;
    try {
      await assertNothingLeft(env, `iteration ${i}`, 'image');
    } catch (err) {
      leaks++;
      console.error((err as Error).message);
    }
    if ((i + 1) % 10 === 0) console.log(`soak: ${i + 1}/${iterations} iterations, ${kills} kills, ${leaks} with leaks`);
  }
} finally {
  for (const d of daemons) {
    d.clients.close();
    await d.stop('SIGKILL');
  }
  await node.cleanup();
}
console.log(JSON.stringify({ iterations, kills, iterationsWithLeaks: leaks, seconds: Math.round((Date.now() - began) / 1000) }));
process.exit(leaks === 0 ? 0 : 1);
