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
const YIELD_EVERY = 8;

/** `fn` over `items` in order, letting the event loop run other work every few items. */
export async function mapYielding<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    out.push(await fn(items[i]!));
  }
  return out;
}

/** Lets go of cached figures of containers and pods that have left the log's live set. */
export function forgetGone(deps: StatsDeps): void {
  const store = deps.ctx.store;
  deps.collector.retainOnly(new Set(store.liveStreams('container').map(([id]) => id)), new Set(store.liveStreams('sandbox').map(([id]) => id)));
}
