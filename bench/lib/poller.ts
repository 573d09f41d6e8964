// The PLEG-like poller of the density bench, as a process of its own (the bench forks it).
// kubelet's relist runs on its own goroutine, never behind the pod workers; run on the bench's
// event loop, each relist also waited for that loop to finish driving ten pods' RPCs, and the
// figure measured the bench as much as the daemon.
import { setTimeout as sleep } from 'node:timers/promises';
import { call, criClients } from '../../test/helpers/cri-client.js';
import { listItemCount } from './kubelet.js';

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
for (let tick = 0; running; tick++) {
  const t0 = performance.now();
  try {
    const pods = await listItemCount(rt, 'ListPodSandbox');
    const ctrs = await listItemCount(rt, 'ListContainers');
    if (process.connected) process.send!({ phase, ms: performance.now() - t0, items: pods + ctrs } satisfies PollerSample);
    if (tick % 10 === 0 && !listsOnly) {
      await Promise.all([call(rt, rt.ListContainerStats, { filter: null }, 30_000), call(rt, rt.ListPodSandboxStats, { filter: null }, 30_000)]);
    }
  } catch (err) {
    if (running) console.error(`poller: ${(err as Error).message}`);
  }
  await sleep(Math.max(0, 1000 - (performance.now() - t0)));
}
if (process.connected) process.disconnect();
