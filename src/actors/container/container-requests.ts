// The container RPCs' side of the log: append a request to a container stream when its machine
// takes it, then wait for the outcome the planner or the exit watcher records.
import { waitForState } from '../driver.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';
import { CrispError, failedPrecondition } from '../../errors.js';
import type { ContainerStateName } from '../../machines/container.js';
import type { CallerFault } from '../../machines/events.js';
import type { ContainerDeps } from './container-deps.js';
import type { ContainerState } from './container-view.js';

const IN_FLIGHT = new Set<ContainerStateName>(['new', 'creating', 'starting']);
const DONE = new Set<ContainerStateName>(['exited', 'createFailed', 'removing']);

/** Waits out a create; answers the id, or the failed step once the unwind has left nothing. */
export async function awaitCreated(deps: ContainerDeps, id: string, signal: AbortSignal): Promise<void> {
  const { store } = deps.ctx;
  const settled = await waitForState(store, 'container', id, (s) => s.value !== 'creating' && s.value !== 'new', signal);
  if (settled && settled.value !== 'createFailed') return;
  const failure = settled?.context.failure ?? lastFailure(deps, id);
  await waitForState(store, 'container', id, () => false, signal);
  throw new CrispError(failure?.kind ?? 'Internal', `creating container ${id} failed at step ${failure?.step ?? 'unknown'}: ${failure?.message ?? 'no reason recorded'}`);
}

function lastFailure(deps: ContainerDeps, id: string): { step: string; message: string; kind?: CallerFault } | undefined {
  for (const stored of deps.ctx.store.readStream(id).reverse()) {
    if (stored.event.type === 'ContainerCreateFailed') return { step: stored.event.step, message: stored.event.message, ...(stored.event.kind && { kind: stored.event.kind }) };
  }
  return undefined;
}

export async function startAndWait(deps: ContainerDeps, id: string, state: ContainerState, signal: AbortSignal): Promise<void> {
  const { store } = deps.ctx;
  if (state.value === 'running') return;
  if (!appendIfAccepted(store, 'container', id, { type: 'ContainerStartRequested' }) && state.value !== 'starting') {
    throw failedPrecondition(`container ${id} is ${state.value}; only a created container can be started`);
  }
  const after = await waitForState(store, 'container', id, (s) => s.value !== 'starting', signal);
  if (after?.value === 'exited' && after.context.exit?.reason === 'StartError') {
    throw new CrispError('Internal', `starting container ${id} failed: ${after.context.exit.message ?? 'no reason recorded'}`);
  }
  if (!after) throw failedPrecondition(`container ${id} was removed while it started`);
}

/** Stops the container unless it has already exited; returns once the exit is recorded. */
export async function stopAndWait(deps: ContainerDeps, id: string, timeoutSeconds: number, signal: AbortSignal): Promise<void> {
  const { store } = deps.ctx;
  const settled = await waitForState(store, 'container', id, (s) => !IN_FLIGHT.has(s.value), signal);
  if (!settled || DONE.has(settled.value)) return;
  const shortening = settled.value === 'stopping' && (settled.context.stopTimeoutSeconds ?? 0) > timeoutSeconds;
  appendIfAccepted(store, 'container', id, { type: 'ContainerStopRequested', timeoutSeconds });
  // The stop under way waits out the longer grace period; a shorter one asked now is honoured
  // by signalling directly (the exit is still recorded by the running stop step).
  if (shortening && timeoutSeconds === 0) await deps.runtime.kill(id, 'SIGKILL').catch(() => undefined);
  await waitForState(store, 'container', id, (s) => DONE.has(s.value), signal);
}

/**
 * Stops first if needed, then records the removal and answers: from that fact on the container
 * is gone for every CRI read and its name is free, and the planner releases what it holds
 * (runc delete, rootfs unmount, its directory) after the reply, since kubelet waits for none of
 * it. A crash in between leaves `removing` in the log, which start-up drives to the end; a
 * release that fails is retried with a back-off (see StreamDriver).
 */
export async function requestRemoval(deps: ContainerDeps, id: string, signal: AbortSignal): Promise<void> {
  const { store } = deps.ctx;
  const settled = await waitForState(store, 'container', id, (s) => !IN_FLIGHT.has(s.value), signal);
  if (!settled) return;
  if (settled.value === 'running' || settled.value === 'stopping') await stopAndWait(deps, id, 0, signal);
  appendIfAccepted(store, 'container', id, { type: 'ContainerRemoveRequested' });
  deps.driver.kick(id);
}
