// How a sandbox's state reads in CRI messages (ListPodSandbox, PodSandboxStatus, the streams).
import type { PodSandbox } from '../../cri/proto/gen/runtime/v1/PodSandbox.js';
import type { PodSandboxFilter__Output } from '../../cri/proto/gen/runtime/v1/PodSandboxFilter.js';
import type { PodSandboxStatus } from '../../cri/proto/gen/runtime/v1/PodSandboxStatus.js';
import type { EntityState } from '../../machines/index.js';
import { namespaceModes } from '../../machines/sandbox-config.js';

type SandboxState = EntityState<'sandbox'>;

function criState(state: SandboxState): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return state.value === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/**
 * Pods whose creation has not finished (or is being undone) are not listed, as CRI-O does; nor
 * are pods whose removal is recorded (their release finishes after RemovePodSandbox answered).
 */
export function isListed(state: SandboxState): boolean {
  return state.value !== 'new' && state.value !== 'creating' && state.value !== 'failed' && state.value !== 'removing';
}

export function matchesFilter(id: string, state: SandboxState, filter: PodSandboxFilter__Output | null | undefined): boolean {
  if (!filter) return true;
  if (filter.id && !id.startsWith(filter.id)) return false;
  if (filter.state && criState(state) !== filter.state.state) return false;
  const labels = state.context.config?.labels ?? {};
  return Object.entries(filter.label_selector ?? {}).every(([k, v]) => labels[k] === v);
}

export function toPodSandbox(id: string, state: SandboxState): PodSandbox {
  const config = state.context.config!;
  return {
    id,
    metadata: config.metadata,
    state: criState(state),
    created_at: state.context.createdAt,
    labels: config.labels ?? {},
    annotations: config.annotations ?? {},
    runtime_handler: state.context.runtimeHandler,
  };
}

export function toPodSandboxStatus(id: string, state: SandboxState): PodSandboxStatus {
  const config = state.context.config!;
  const [ip = '', ...additional] = state.context.ips;
  const modes = namespaceModes(config);
  return {
    ...toPodSandbox(id, state),
    network: { ip, additional_ips: additional.map((a) => ({ ip: a })) },
    linux: {
      namespaces: {
        options: {
          network: modes.network,
          ipc: modes.ipc,
          pid: modes.pid,
          target_id: '',
          ...(config.linux?.security_context?.namespace_options?.userns_options
            ? { userns_options: config.linux.security_context.namespace_options.userns_options } : {}),
        },
      },
    },
  };
}

/** The verbose `info` crictl inspectp prints: what the pod was run with and what it holds. */
export function verboseInfo(id: string, state: SandboxState): Record<string, string> {
  const c = state.context;
  return {
    info: JSON.stringify({
      id,
      state: state.value,
      runtimeHandler: c.runtimeHandler,
      // The pid of the process holding the pod's PID namespace (crictl inspectp's "pid"); 0 when
      // the pod has no infra container or it was stopped.
      pid: c.infra?.pid ?? 0,
      infraContainerId: c.infraRuntimeId ?? c.infra?.containerId ?? '',
      infraImage: c.infraImage,
      namespaces: c.namespaces,
      network: c.network,
      ips: c.ips,
      podFilesDir: c.filesDir,
      shmPath: c.shmPath,
      cgroupParent: c.config?.linux?.cgroup_parent ?? '',
      overhead: c.overhead,
      resources: c.resources,
      failure: c.failure,
      notReadyReason: c.notReadyReason,
      config: c.config,
    }),
  };
}
