// The sandbox commands behind the RPCs: each appends a request to the log and waits for the
// planner to carry it out (src/actors/driver.ts). They never touch the node themselves.
import { randomBytes } from 'node:crypto';
import { waitForState, type StreamDriver } from '../driver.js';
import type { EventStore } from '../../events/store.js';
import { nowNs } from '../../events/clock.js';
import type { PodSandboxConfig__Output } from '../../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import { alreadyExists, CrispError, failedPrecondition } from '../../errors.js';
import type { EntityState } from '../../machines/index.js';
import { differingField } from '../../machines/request-compare.js';
import { removePodContainers, sandboxByNameKey, sandboxState, stopPodContainers } from './sandbox-streams.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';

export interface SandboxCommandDeps {
  store: EventStore;
  driver: StreamDriver<'sandbox'>;
  /** Bound on waiting for each of a pod's containers to stop or go (the container service does it). */
  containerWaitMs: number;
  /** The planner's last failure per sandbox (see SandboxPlannerOptions.stepErrors). */
  stepErrors: Map<string, string>;
}

const IN_FLIGHT = new Set(['new', 'creating']);

/**
 * Waits until the driver has nothing left to do for the sandbox: either the state got where
 * `done` says, or a step failed and waits for a retry; then it is an error with the step's reason.
 */
async function settle(
  deps: SandboxCommandDeps,
  id: string,
  done: (s: EntityState<'sandbox'>) => boolean,
  signal: AbortSignal,
  what: string,
): Promise<EntityState<'sandbox'> | null> {
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  await Promise.race([deps.driver.idle(id), aborted]);
  const state = sandboxState(deps.store, id);
  if (!state || done(state)) return state ?? null;
  const reason = deps.stepErrors.get(id) ?? 'a step failed (see the log)';
  throw new CrispError('Internal', `${what} pod sandbox ${id}: ${reason}; it is ${state.value} and the step is retried on the next request or at restart`);
}

/**
 * kubelet retries a timed-out RunPodSandbox with the very same request: same config, same id.
 * Returns where a request differs from the one holding the name, or undefined when it is the same.
 */
function requestDifference(state: EntityState<'sandbox'>, config: PodSandboxConfig__Output, runtimeHandler: string): string | undefined {
  if (state.context.runtimeHandler !== runtimeHandler) return 'runtime_handler';
  return differingField(state.context.config, config, 'config');
}

/**
 * Reserves the name and records the request, or joins the request already holding the name;
 * resolves with the id once the pod is ready. A failed run is unwound by the planner first,
 * then reported with the step that failed.
 */
export async function runSandbox(
  deps: SandboxCommandDeps,
  request: { config: PodSandboxConfig__Output; nameKey: string; runtimeHandler: string },
  signal: AbortSignal,
): Promise<string> {
  const { store } = deps;
  let id: string;
  const holder = sandboxByNameKey(store, request.nameKey);
  if (holder) {
    const differs = requestDifference(holder[1], request.config, request.runtimeHandler);
    if (differs) {
      throw alreadyExists(`pod sandbox name ${request.nameKey} is reserved by sandbox ${holder[0]}, whose request differs at ${differs}`);
    }
    id = holder[0];
  } else {
    id = randomBytes(32).toString('hex');
    store.append({
      kind: 'sandbox',
      streamId: id,
      expectedVersion: 0,
      events: [{ type: 'SandboxRunRequested', config: request.config, runtimeHandler: request.runtimeHandler, nameKey: request.nameKey, createdAt: String(nowNs()) }],
    });
  }
  const outcome = await waitForState(store, 'sandbox', id, (s) => !IN_FLIGHT.has(s.value), signal);
  if (outcome?.value === 'failed') {
    const { step, message, kind } = outcome.context.failure!;
    const failed = `RunPodSandbox failed at step ${step}: ${message}`;
    try {
      await settle(deps, id, () => false, signal, 'releasing');
    } catch (err) {
      throw new CrispError('Internal', `${failed}; then ${(err as Error).message}`);
    }
    throw new CrispError(kind ?? 'Internal', `${failed} (everything acquired was released)`);
  }
  if (!outcome) throw failedPrecondition(`pod sandbox ${id} was removed before it became ready`);
  return id;
}

/**
 * Stops the pod's containers, then its network; keeps the record. Idempotent: a stopped pod
 * is left as it is, a stop under way is waited for.
 */
export async function stopSandbox(deps: SandboxCommandDeps, id: string, signal: AbortSignal): Promise<void> {
  const { store } = deps;
  const settled = await waitForState(store, 'sandbox', id, (s) => !IN_FLIGHT.has(s.value), signal);
  if (!settled) return;
  await stopPodContainers(store, id, { signal, timeoutMs: deps.containerWaitMs });
  const state = sandboxState(store, id);
  if (!state) return;
  const holdsNetwork = state.value === 'notready' && state.context.network !== null;
  if (state.value === 'ready' || holdsNetwork) appendIfAccepted(store, 'sandbox', id, { type: 'SandboxStopRequested' });
  // A release step that failed waits for a kick to be tried again: this request is one.
  else if (state.value === 'stopping') deps.driver.kick(id);
  await settle(deps, id, (s) => s.value !== 'stopping', signal, 'stopping');
}

/**
 * Stops the pod if needed, then records the removal of its containers and its own and answers:
 * from then on the pod is gone for every CRI read and its name is free. The planners release
 * what the pod and its containers hold after the reply (kubelet waits for none of it); a crash
 * in between is finished by start-up from the log, a failed release is retried with a back-off.
 */
export async function removeSandbox(deps: SandboxCommandDeps, id: string, signal: AbortSignal): Promise<void> {
  const { store } = deps;
  await stopSandbox(deps, id, signal);
  const state = sandboxState(store, id);
  if (!state) return;
  await removePodContainers(store, id, { signal, timeoutMs: deps.containerWaitMs });
  if (!appendIfAccepted(store, 'sandbox', id, { type: 'SandboxRemoveRequested' })) deps.driver.kick(id);
}
