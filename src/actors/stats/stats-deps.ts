// What the stats, metrics and container-event RPCs share, and how they pick their entities.
import type { EventStore } from '../../events/store.js';
import type { EntityState } from '../../machines/index.js';
import { liveContainers, matchesFilter as containerMatches, criState } from '../container/container-view.js';
import { liveSandboxes } from '../sandbox/sandbox-streams.js';
import { isListed, matchesFilter as sandboxMatches } from '../sandbox/sandbox-view.js';
import type { ContainerStatsFilter__Output } from '../../cri/proto/gen/runtime/v1/ContainerStatsFilter.js';
import type { PodSandboxStatsFilter__Output } from '../../cri/proto/gen/runtime/v1/PodSandboxStatsFilter.js';
import type { StatsCollector } from './collector.js';
import type { ContainerEventHub } from './container-events.js';

export interface StatsDeps {
  /** The part of the daemon's context the stats read (src/cri hands it the whole). */
  ctx: { store: EventStore };
  collector: StatsCollector;
  events: ContainerEventHub;
}

type ContainerState = EntityState<'container'>;
type SandboxState = EntityState<'sandbox'>;

/** Containers kubelet can see (those ListContainers shows), filtered as the stats filter says. */
export function statsContainers(store: EventStore, filter: ContainerStatsFilter__Output | null | undefined): [string, ContainerState][] {
  const asListFilter = filter ? { id: filter.id, pod_sandbox_id: filter.pod_sandbox_id, label_selector: filter.label_selector, state: null } : null;
  return liveContainers(store)
    .filter(([id, state]) => containerMatches(id, state, asListFilter))
    .sort(([, a], [, b]) => (BigInt(a.context.createdAt) < BigInt(b.context.createdAt) ? -1 : 1));
}

export function statsSandboxes(store: EventStore, filter: PodSandboxStatsFilter__Output | null | undefined): [string, SandboxState][] {
  const asListFilter = filter ? { id: filter.id, label_selector: filter.label_selector, state: null } : null;
  return liveSandboxes(store)
    .filter(([id, state]) => isListed(state) && sandboxMatches(id, state, asListFilter))
    .sort(([, a], [, b]) => (BigInt(a.context.createdAt) < BigInt(b.context.createdAt) ? -1 : 1));
}

/** Each pod's visible containers, grouped in one pass over the live containers. */
export function containersByPod(store: EventStore): Map<string, [string, ContainerState][]> {
  const byPod = new Map<string, [string, ContainerState][]>();
  for (const entry of liveContainers(store)) {
    if (!criState(entry[1].value)) continue;
    const list = byPod.get(entry[1].context.sandboxId) ?? [];
    list.push(entry);
    byPod.set(entry[1].context.sandboxId, list);
  }
  return byPod;
}

// A stats call reads a handful of small cgroup files per container synchronously (cheaper than
// fs/promises, see monitor/files.ts); over a hundred containers that is a 100-400 ms stall of the
// event loop if done in one go, during which no RPC is answered. Yielding every few entities
// keeps the CPU the same and the longest stall to a few milliseconds.
//
// What an entity waits for beyond those reads (a pod's network counters read inside its
// namespace while it has no process of its own, a new container's first writable-layer walk) can
// take 20-300 ms on a node that is starting pods, where the helper's children queue for a core
// behind runc and the CNI plugins. Waiting for each entity before starting the next added those
// up: a call during a wave of pods took 0.8-1.7 s. The entities are therefore started in turn and
// their waits overlap; the call answers when the slowest is done.
const YIELD_EVERY = 8;

/**
 * Starts `fn` on each of `items` in order, letting the event loop run other work after every few
 * starts; resolves with the results in the items' order, or rejects with the first failure.
 */
export async function mapYielding<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const started: Promise<R>[] = [];
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const result = fn(items[i]!);
    // Handled by the Promise.all below; until it is reached a failure must not count as unhandled.
    result.catch(() => {});
    started.push(result);
  }
  return Promise.all(started);
}

/** Lets go of cached figures of containers and pods that have left the log's live set. */
export function forgetGone(deps: StatsDeps): void {
  const store = deps.ctx.store;
  deps.collector.retainOnly(new Set(store.liveStreams('container').map(([id]) => id)), new Set(store.liveStreams('sandbox').map(([id]) => id)));
}
