// Which namespaces a container gets: the pod's network/IPC/UTS (or the host's for NODE), its PID
// namespace per namespace_options, always a new mount namespace, a cgroup namespace on cgroup v2.

import { failedPrecondition, invalidArgument, unimplemented } from '../../errors.js';
import { validateSysctls as checkPodSysctls } from '../../machines/pod-rules.js';
import type { NamespaceOption__Output } from '../../cri/proto/gen/runtime/v1/NamespaceOption.js';
import type { HostFacts, PodResources } from './input.js';
import type { OciNamespace } from './oci-types.js';

export interface NamespacePlan {
  namespaces: OciNamespace[];
  hostNetwork: boolean;
  hostIpc: boolean;
  hostPid: boolean;
  hostUts: boolean;
}

export interface NamespaceRequest {
  options: NamespaceOption__Output | null;
  pod: Omit<PodResources, 'pidns'> & { pidns?: string };
  host: HostFacts;
  /** For pid = TARGET. */
  targetPidns?: string;
  /** The infra container makes the pod's PID namespace instead of joining it. */
  infra?: boolean;
}

export function planNamespaces(req: NamespaceRequest): NamespacePlan {
  const opts = req.options;
  const network = opts?.network ?? 'POD';
  const ipc = opts?.ipc ?? 'POD';
  // proto3: absent options read as POD. A pod without a PID namespace of its own (no infra
  // container) has nothing to share, so POD there means a namespace of the container's own.
  const pid = opts?.pid ?? 'POD';
  if (opts?.userns_options && opts.userns_options.mode !== 'NODE') {
    throw unimplemented(`namespace_options.userns_options.mode: ${opts.userns_options.mode} user namespaces are not supported`);
  }
  const namespaces: OciNamespace[] = [];
  const join = (type: OciNamespace['type'], nsPath: string | undefined, field: string, mode: string) => {
    if (!nsPath) throw failedPrecondition(`namespace_options.${field} is ${mode} but the pod has no ${field} namespace path`);
    namespaces.push({ type, path: nsPath });
  };

  const hostNetwork = network === 'NODE';
  if (!hostNetwork) {
    if (network !== 'POD') throw invalidArgument(`namespace_options.network: ${network} is not supported (POD or NODE)`);
    join('network', req.pod.netns, 'network', network);
  }
  const hostIpc = ipc === 'NODE';
  if (!hostIpc) {
    if (ipc !== 'POD') throw invalidArgument(`namespace_options.ipc: ${ipc} is not supported (POD or NODE)`);
    join('ipc', req.pod.ipcns, 'ipc', ipc);
  }
  // UTS follows the network mode in Kubernetes: a host-network pod sees the node's hostname.
  const hostUts = hostNetwork;
  if (!hostUts) namespaces.push(req.pod.utsns ? { type: 'uts', path: req.pod.utsns } : { type: 'uts' });

  const hostPid = pid === 'NODE';
  if (req.infra) {
    if (!hostPid) namespaces.push({ type: 'pid' });
  } else {
    switch (pid) {
      case 'NODE':
        break;
      case 'POD':
        namespaces.push(req.pod.pidns ? { type: 'pid', path: req.pod.pidns } : { type: 'pid' });
        break;
      case 'CONTAINER':
        namespaces.push({ type: 'pid' });
        break;
      case 'TARGET':
        if (!req.targetPidns) {
          throw failedPrecondition(`namespace_options.target_id: PID namespace of target container "${opts?.target_id ?? ''}" is not known`);
        }
        namespaces.push({ type: 'pid', path: req.targetPidns });
        break;
      default:
        throw invalidArgument(`namespace_options.pid: unknown mode ${String(pid)}`);
    }
  }
  namespaces.push({ type: 'mount' });
  if (req.host.cgroupVersion === 2 && req.host.cgroupNamespace) namespaces.push({ type: 'cgroup' });
  return { namespaces, hostNetwork, hostIpc, hostPid, hostUts };
}

/** The pod's sysctls for the spec, checked by the one rule RunPodSandbox applied (machines/pod-rules.ts). */
export function validateSysctls(sysctls: Record<string, string>, plan: NamespacePlan): Record<string, string> {
  const checked = checkPodSysctls(sysctls, { hostNetwork: plan.hostNetwork, hostIpc: plan.hostIpc, hostUts: plan.hostUts });
  return Object.fromEntries(checked.map((s) => [s.key, s.value]));
}
