// The PLEG-like poller of the density bench, as a process of its own (the bench forks it).
// kubelet's relist runs on its own goroutine, never behind the pod workers; run on the bench's
// event loop, each relist also waited for that loop to finish driving ten pods' RPCs, and the
// figure measured the bench as much as the daemon.
import { setTimeout as sleep } from 'node:timers/promises';
import { criClients } from '../../test/helpers/cri-client.js';
import { emptyRequestBytes, listItemCount } from './kubelet.js';

export interface PollerSample {
  phase: string;
  ms: number;
  items: number;
}

const socket = process.argv[2]!;
// `lists-only`: the relist floor's poller, whose bare server answers only the two List calls.
const listsOnly = process.argv[3] === 'lists-only';
const rt = criClients(socket).runtime;
let phase = 'idle';
let running = true;
process.on('message', (m: { phase?: string; stop?: true }) => {
  if (m.phase) phase = m.phase;
  if (m.stop) running = false;
});
// The bench is gone (it ended or crashed): stop rather than poll a dead socket forever.
process.on('disconnect', () => {
  running = false;
});
// kubelet asks for stats from other goroutines than the relist's, so a slow stats round does not
// hold back the next relist: the round runs beside the loop, and a new one starts only once the
// last has answered. (Awaited in the loop, a stats call that took 1-2 s during a wave skipped the
// relists of that time, and with them the busiest moments the relist figure should see.)
let statsRound: Promise<unknown> | undefined;
for (let tick = 0; running; tick++) {
  const t0 = performance.now();
  try {
    const pods = await listItemCount(rt, 'ListPodSandbox');
    const ctrs = await listItemCount(rt, 'ListContainers');
    if (process.connected) process.send!({ phase, ms: performance.now() - t0, items: pods + ctrs } satisfies PollerSample);
  } catch (err) {
    if (running) console.error(`poller: ${(err as Error).message}`);
  }
  if (tick % 10 === 0 && !listsOnly && !statsRound) {
    // As bytes: decoding 100 pods' stats here would hold up this process's next relist.
    statsRound = Promise.all([emptyRequestBytes(rt, 'ListContainerStats'), emptyRequestBytes(rt, 'ListPodSandboxStats')])
      .catch((err: unknown) => {
        if (running) console.error(`poller: ${(err as Error).message}`);
      })
      .finally(() => (statsRound = undefined));
  }
  await sleep(Math.max(0, 1000 - (performance.now() - t0)));
}
await statsRound;
if (process.connected) process.disconnect();
