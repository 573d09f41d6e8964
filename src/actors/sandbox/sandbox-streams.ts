// Reading sandbox streams and asking other streams to move, for the sandbox RPCs: the pod's
// directory, name reservation, and the pod's containers (stopped and removed through their own
// streams: the container service does the work, this side only appends requests and waits).
import { join } from 'node:path';
import { waitForState } from '../driver.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';
import type { EventStore } from '../../events/store.js';
import { stateOf, type EntityState } from '../../machines/index.js';
import type { StreamKind } from '../../machines/events.js';
import { deadlineExceeded } from '../../errors.js';

export function sandboxDir(runroot: string, id: string): string {
  return join(runroot, 'sandboxes', id);
}

export function sandboxState(store: EventStore, id: string): EntityState<'sandbox'> | undefined {
  const live = store.stream(id);
  return live?.kind === 'sandbox' ? stateOf('sandbox', live.snapshot) : undefined;
}

export function liveSandboxes(store: EventStore): [string, EntityState<'sandbox'>][] {
  return store.liveStreams('sandbox').map(([id, live]) => [id, stateOf('sandbox', live.snapshot)]);
}

/**
 * The sandbox holding a name key. Failed and removing sandboxes no longer hold their name: a
 * new attempt with the same metadata may start while they unwind.
 */
export function sandboxByNameKey(store: EventStore, nameKey: string): [string, EntityState<'sandbox'>] | undefined {
  return liveSandboxes(store).find(([, s]) => s.context.nameKey === nameKey && s.value !== 'removing');
}

function podContainerIds(store: EventStore, sandboxId: string): string[] {
  return store.liveStreams('container')
    .filter(([, live]) => stateOf('container', live.snapshot).context.sandboxId === sandboxId)
    .map(([id]) => id);
}

export interface WaitOptions {
  signal: AbortSignal;
  /** How long to wait for each container to get where it was asked to go. */
  timeoutMs: number;
}

const SETTLED_FOR_STOP = new Set(['created', 'running', 'stopping', 'exited', 'unknown', 'createFailed', 'removing', 'removed']);
const DONE_STOPPING = new Set(['exited', 'createFailed', 'removing', 'removed']);

async function waitBounded<K extends StreamKind>(
  store: EventStore,
  kind: K,
  id: string,
  settled: (s: EntityState<K>) => boolean,
  options: WaitOptions,
  what: string,
): Promise<EntityState<K> | null> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  try {
    return await waitForState(store, kind, id, settled, AbortSignal.any([options.signal, timeout]));
  } catch (err) {
    if (!timeout.aborted || options.signal.aborted) throw err;
    const now = store.stream(id);
    const state = now ? JSON.stringify(stateOf(kind, now.snapshot).value) : 'gone';
    throw deadlineExceeded(`${kind} ${id} did not ${what} within ${options.timeoutMs / 1000} s (it is ${state}); is the container service running?`);
  }
}

/**
 * Asks every container of the pod that has not exited to stop now (timeout 0: the pod is going
 * away) and waits until each has exited. Containers still being created or started are waited
 * for first, since they cannot take a stop request yet.
 */
export async function stopPodContainers(store: EventStore, sandboxId: string, options: WaitOptions): Promise<void> {
  await Promise.all(podContainerIds(store, sandboxId).map(async (id) => {
    const before = await waitBounded(store, 'container', id, (s) => SETTLED_FOR_STOP.has(s.value), options, 'finish creating or starting');
    if (!before || DONE_STOPPING.has(before.value)) return;
    appendIfAccepted(store, 'container', id, { type: 'ContainerStopRequested', timeoutSeconds: 0 });
    await waitBounded(store, 'container', id, (s) => DONE_STOPPING.has(s.value), options, 'exit after ContainerStopRequested');
  }));
}

/**
 * Asks every (stopped) container of the pod to be removed; each is released after the reply.
 * Containers still being created or started are waited for first, since they cannot take the
 * request yet.
 */
export async function removePodContainers(store: EventStore, sandboxId: string, options: WaitOptions): Promise<void> {
  await Promise.all(podContainerIds(store, sandboxId).map(async (id) => {
    const before = await waitBounded(store, 'container', id, (s) => SETTLED_FOR_STOP.has(s.value), options, 'finish creating or starting');
    if (before) appendIfAccepted(store, 'container', id, { type: 'ContainerRemoveRequested' });
  }));
}
