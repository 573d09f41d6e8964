// How a container stream's state reads through the CRI: its id lookup, its CRI state, the
// Container of ListContainers and the ContainerStatus kubelet verifies. Pure reads of live
// state (DESIGN.md rule 4); only verbose status opens the bundle's config.json.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventStore } from '../../events/store.js';
import { stateOf, type EntityState } from '../../machines/index.js';
import type { ContainerStateName } from '../../machines/container.js';
import { resolveStreamId } from '../stream-lookup.js';
import { criSignalOf } from '../monitor/signals.js';
import type { Container } from '../../cri/proto/gen/runtime/v1/Container.js';
import type { ContainerFilter__Output } from '../../cri/proto/gen/runtime/v1/ContainerFilter.js';
import type { ContainerState as CriContainerState } from '../../cri/proto/gen/runtime/v1/ContainerState.js';
import type { ContainerStatus } from '../../cri/proto/gen/runtime/v1/ContainerStatus.js';

export type ContainerState = EntityState<'container'>;

/** The live container an id or unique prefix names, or undefined. */
export function findContainer(store: EventStore, idOrPrefix: string, field = 'container_id'): [string, ContainerState] | undefined {
  const id = resolveStreamId(store, 'container', idOrPrefix, field);
  const live = id ? store.stream(id) : undefined;
  return id && live ? [id, stateOf('container', live.snapshot)] : undefined;
}

export function liveContainers(store: EventStore): [string, ContainerState][] {
  return store.liveStreams('container').map(([id, live]) => [id, stateOf('container', live.snapshot)]);
}

// A container being made, unwound after a failed create, or released after its removal was
// recorded is not (yet, or any more) a container kubelet can act on; it does not show in lists.
const CRI_STATE: Partial<Record<ContainerStateName, CriContainerState>> = {
  created: 'CONTAINER_CREATED',
  starting: 'CONTAINER_CREATED',
  running: 'CONTAINER_RUNNING',
  stopping: 'CONTAINER_RUNNING',
  exited: 'CONTAINER_EXITED',
  unknown: 'CONTAINER_UNKNOWN',
};

export function criState(value: ContainerStateName): CriContainerState | undefined {
  return CRI_STATE[value];
}

export function matchesFilter(id: string, state: ContainerState, filter: ContainerFilter__Output | null): boolean {
  const cri = criState(state.value);
  if (!cri) return false;
  if (!filter) return true;
  if (filter.id && !id.startsWith(filter.id)) return false;
  if (filter.state && cri !== filter.state.state) return false;
  if (filter.pod_sandbox_id && !state.context.sandboxId.startsWith(filter.pod_sandbox_id)) return false;
  const labels = state.context.config?.labels ?? {};
  return Object.entries(filter.label_selector ?? {}).every(([k, v]) => labels[k] === v);
}

export function toCriContainer(id: string, state: ContainerState): Container {
  const c = state.context;
  return {
    id,
    pod_sandbox_id: c.sandboxId,
    metadata: c.config?.metadata ?? null,
    image: { image: c.image?.requested ?? '', annotations: c.config?.image?.annotations ?? {} },
    image_ref: c.image?.ref ?? '',
    image_id: c.image?.id ?? '',
    state: criState(state.value) ?? 'CONTAINER_UNKNOWN',
    created_at: c.createdAt,
    labels: c.config?.labels ?? {},
    annotations: c.config?.annotations ?? {},
  };
}

export function toCriStatus(id: string, state: ContainerState): ContainerStatus {
  const c = state.context;
  const exit = state.value === 'exited' || state.value === 'removing' ? c.exit : null;
  return {
    id,
    metadata: c.config?.metadata ?? null,
    state: criState(state.value) ?? 'CONTAINER_UNKNOWN',
    created_at: c.createdAt,
    started_at: c.startedAt ?? '0',
    finished_at: exit?.finishedAt ?? '0',
    exit_code: exit?.exitCode ?? 0,
    image: { image: c.image?.requested ?? '', annotations: c.config?.image?.annotations ?? {} },
    image_ref: c.image?.ref ?? '',
    image_id: c.image?.id ?? '',
    reason: exit?.reason ?? (state.value === 'unknown' ? 'Unknown' : ''),
    message: exit?.message ?? c.unknownReason ?? c.monitorLost ?? '',
    labels: c.config?.labels ?? {},
    annotations: c.config?.annotations ?? {},
    mounts: c.config?.mounts ?? [],
    log_path: c.logPath,
    resources: { linux: c.resources ?? c.config?.linux?.resources ?? null },
    // What the process really runs as (KEP-3619), once the spec says so.
    user: c.user ? { linux: { uid: String(c.user.uid), gid: String(c.user.gid), supplemental_groups: c.user.additionalGids.map(String) } } : null,
    stop_signal: c.stopSignal ? (criSignalOf(c.stopSignal) as ContainerStatus['stop_signal']) : 'SIGNAL_RUNTIME_DEFAULT',
  };
}

/** `crictl inspect`'s info, shaped as CRI-O's: the pid, the pod, the OCI spec it runs. */
export async function verboseInfo(id: string, state: ContainerState): Promise<Record<string, string>> {
  const c = state.context;
  let runtimeSpec: unknown = null;
  if (c.bundle) {
    try {
      runtimeSpec = JSON.parse(await readFile(join(c.bundle, 'config.json'), 'utf8'));
    } catch {
      // removed meanwhile, or never written: the rest still describes the container
    }
  }
  const info = {
    id,
    sandboxID: c.sandboxId,
    pid: c.pid ?? 0,
    privileged: c.config?.linux?.security_context?.privileged ?? false,
    runtimeSpec,
  };
  return { info: JSON.stringify(info) };
}
