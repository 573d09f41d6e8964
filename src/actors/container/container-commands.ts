// The container commands behind the RPCs, as sandbox-commands.ts is for pods: each appends a
// request to a container stream when its machine takes it, then waits for the outcome the
// planner or the exit watcher records. They never touch the node themselves.
import { waitForState } from '../driver.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';
import { randomBytes } from 'node:crypto';
import { alreadyExists, CrispError, failedPrecondition, notFound } from '../../errors.js';
import type { ContainerConfig__Output } from '../../cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import { containerLogPath, containerNameKey } from '../../machines/container-config.js';
import { differingField } from '../../machines/request-compare.js';
import type { ImageVolume } from '../../machines/events.js';
import { nowNs } from '../../events/clock.js';
import { sandboxState } from '../sandbox/sandbox-streams.js';
import { resolveStreamId } from '../stream-lookup.js';
import { resolveImage } from '../image-pull/image-index.js';
import { liveContainers } from './container-view.js';
import { containerLayout } from '../monitor/container-layout.js';
import type { ContainerStateName } from '../../machines/container.js';
import type { CallerFault } from '../../machines/events.js';
import type { ContainerDeps } from './container-deps.js';
import type { ContainerState } from './container-view.js';

const IN_FLIGHT = new Set<ContainerStateName>(['new', 'creating', 'starting']);
const DONE = new Set<ContainerStateName>(['exited', 'createFailed', 'removing']);

export interface CreateRequest {
  /** The pod sandbox id or prefix the request named. */
  requested: string;
  config: ContainerConfig__Output;
  imageName: string;
}

/**
 * Reserves the container's name in its pod and records the request, or joins the request that
 * already holds the name (kubelet retries a timed-out create with the very same request); resolves
 * with the id once the container is created. Everything from the lookups to the append runs
 * without an await, so two concurrent creates with one name cannot both miss each other: the
 * second finds the first and waits for it.
 */
export async function createContainer(deps: ContainerDeps, request: CreateRequest, signal: AbortSignal): Promise<string> {
  const { requested, config, imageName } = request;
  const { store } = deps.ctx;
  const sandboxId = resolveStreamId(store, 'sandbox', requested, 'pod_sandbox_id');
  const sandbox = sandboxId ? sandboxState(store, sandboxId) : undefined;
  if (!sandboxId || !sandbox) throw notFound(`pod_sandbox_id: pod sandbox ${requested} not found`);
  if (sandbox.value !== 'ready') throw failedPrecondition(`pod_sandbox_id: pod sandbox ${sandboxId} is ${sandbox.value}, not ready`);
  const image = resolveImage(store, imageName);
  if (!image) throw notFound(`config.image.image: image ${JSON.stringify(imageName)} is not present; pull it first`);
  const imageVolumes: ImageVolume[] = [];
  config.mounts.forEach((m, i) => {
    const name = m.image?.image.trim() ?? '';
    if (name === '') return;
    const volume = resolveImage(store, name);
    if (!volume) throw notFound(`mounts[${i}].image.image: image ${JSON.stringify(name)} is not present; pull it first`);
    imageVolumes.push({ mount: i, image: { requested: name, id: volume.context.id, ref: volume.context.repoDigests[0] ?? volume.context.id } });
  });

  const nameKey = containerNameKey(sandboxId, config);
  // A create that failed holds the name while it unwinds: the same request then gets its error.
  const holder = liveContainers(store).find(([, s]) => s.context.nameKey === nameKey && s.value !== 'removing');
  let id: string;
  if (holder) {
    const differs = differingField(holder[1].context.config, config, 'config');
    if (differs) {
      throw alreadyExists(`config.metadata: name ${JSON.stringify(config.metadata!.name)} attempt ${config.metadata!.attempt} is taken in pod ${sandboxId} by container ${holder[0]}, whose request differs at ${differs}`);
    }
    id = holder[0];
  } else {
    id = randomBytes(32).toString('hex');
    const logPath = containerLogPath(sandbox.context.config?.log_directory ?? '', config, containerLayout(deps.ctx.config.root, id).defaultLog);
    store.append({
      kind: 'container',
      streamId: id,
      expectedVersion: 0,
      events: [{
        type: 'ContainerCreateRequested',
        sandboxId,
        config,
        image: { requested: imageName, id: image.context.id, ref: image.context.repoDigests[0] ?? image.context.id },
        ...(imageVolumes.length > 0 && { imageVolumes }),
        nameKey,
        logPath,
        createdAt: nowNs().toString(),
      }],
    });
  }
  await awaitCreated(deps, id, signal);
  return id;
}

/** Waits out a create; answers the id, or the failed step once the unwind has left nothing. */
async function awaitCreated(deps: ContainerDeps, id: string, signal: AbortSignal): Promise<void> {
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

const UPDATABLE = new Set<ContainerStateName>(['created', 'running']);

/**
 * Records the resources as requested and waits for the planner to apply them through the runtime
 * (ContainerResourcesUpdated) or to record why it could not (ContainerResourcesUpdateFailed). A
 * crash in between leaves the request in the log, and start-up applies it. Two updates at once:
 * the later request is the one applied, and both answer once it is.
 */
export async function updateResources(deps: ContainerDeps, id: string, state: ContainerState, resources: LinuxContainerResources__Output, signal: AbortSignal): Promise<void> {
  const { store } = deps.ctx;
  if (!UPDATABLE.has(state.value) || !appendIfAccepted(store, 'container', id, { type: 'ContainerResourcesUpdateRequested', resources })) {
    throw failedPrecondition(`container ${id} is ${state.value}; only a created or running container can be updated`);
  }
  const settled = await waitForState(store, 'container', id, (s) => !s.context.pendingResources || !UPDATABLE.has(s.value), signal);
  if (!settled) throw failedPrecondition(`container ${id} was removed before its resources were applied`);
  if (settled.context.pendingResources) throw failedPrecondition(`container ${id} is ${settled.value}; its resources were not applied`);
  const failure = settled.context.resourcesFailure;
  if (failure) throw new CrispError(failure.kind ?? 'Internal', `updating the resources of container ${id} failed: ${failure.message}`);
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
