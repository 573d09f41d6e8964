// What a RunPodSandbox request must satisfy before anything is recorded, and the facts the rest
// of the runtime derives from a pod's config (which namespaces it owns, its name key, its
// hostname...). Validation lives here, where the sandbox is made; every message names the field.
import type { PodSandboxConfig__Output } from '../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { PodSandboxMetadata__Output } from '../cri/proto/gen/runtime/v1/PodSandboxMetadata.js';
import { invalidArgument, unimplemented } from '../errors.js';
import { checkStringMap, quote, rejectNul, requireCleanAbsolute, requireObjectName } from './request-bounds.js';
import { bandwidthOf, portMappingsOf, renderResolvConf, validateHostname, validateSysctls, type PodNamespaceKind } from './pod-rules.js';

type NamespaceModeName = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface PodNamespaceModes {
  network: NamespaceModeName;
  ipc: NamespaceModeName;
  pid: NamespaceModeName;
}

export function namespaceModes(config: PodSandboxConfig__Output): PodNamespaceModes {
  const o = config.linux?.security_context?.namespace_options;
  return { network: o?.network ?? 'POD', ipc: o?.ipc ?? 'POD', pid: o?.pid ?? 'POD' };
}

/**
 * The namespaces the pod owns and crisp pins. A host-network pod also keeps the node's UTS
 * namespace (kubelet gives it the node's hostname), as CRI-O does.
 */
export function podNamespaceKinds(config: PodSandboxConfig__Output): PodNamespaceKind[] {
  const modes = namespaceModes(config);
  const kinds: PodNamespaceKind[] = [];
  if (modes.network !== 'NODE') kinds.push('net', 'uts');
  if (modes.ipc !== 'NODE') kinds.push('ipc');
  return kinds;
}

/**
 * A pod-wide PID namespace has no file to pin it by: it lives as long as a process in it, so
 * such a pod runs the pause image as its infra container (and only such a pod does).
 */
export function needsInfraContainer(config: PodSandboxConfig__Output): boolean {
  return namespaceModes(config).pid === 'POD';
}

export const isHostNetwork = (config: PodSandboxConfig__Output) => namespaceModes(config).network === 'NODE';
export const isHostIpc = (config: PodSandboxConfig__Output) => namespaceModes(config).ipc === 'NODE';

/** The key two RunPodSandbox calls for the same pod attempt share (kubelet's retries). */
export function sandboxNameKey(m: PodSandboxMetadata__Output): string {
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

/**
 * The pod's hostname: the one asked for, else the node's for host-network pods, else the
 * first 12 characters of the sandbox id (CRI-O's choice).
 */
export function effectiveHostname(config: PodSandboxConfig__Output, sandboxId: string, nodeHostname: string): string {
  if (config.hostname) return config.hostname;
  return isHostNetwork(config) ? nodeHostname : sandboxId.slice(0, 12);
}

export interface SandboxRequestOptions {
  /** Runtime handlers this node knows ('' always means the default one). */
  runtimeHandlers: readonly string[];
}

/**
 * Validates a RunPodSandbox request. Throws InvalidArgument naming the field; returns the pod's
 * name key.
 */
export function validateSandboxRequest(
  config: PodSandboxConfig__Output | null | undefined,
  runtimeHandler: string,
  options: SandboxRequestOptions,
): { config: PodSandboxConfig__Output; nameKey: string } {
  if (!config) throw invalidArgument('config is required');
  const m = config.metadata;
  if (!m) throw invalidArgument('config.metadata is required');
  requireObjectName(m.name, 'config.metadata.name');
  requireObjectName(m.namespace, 'config.metadata.namespace');
  requireObjectName(m.uid, 'config.metadata.uid');
  rejectNul(config, 'config');
  // The log directory is made by crisp and joined with each container's log_path: a relative
  // one would land wherever the daemon's working directory is.
  if (config.log_directory) requireCleanAbsolute(config.log_directory, 'config.log_directory');
  validateCgroupParent(config.linux?.cgroup_parent ?? '');
  if (!Number.isInteger(m.attempt) || m.attempt < 0) throw invalidArgument(`config.metadata.attempt: ${m.attempt} must be a non-negative integer`);
  if (runtimeHandler !== '' && !options.runtimeHandlers.includes(runtimeHandler)) {
    throw invalidArgument(`runtime_handler: ${JSON.stringify(runtimeHandler)} is not configured (known: ${options.runtimeHandlers.join(', ') || 'none'})`);
  }
  if (config.hostname) validateHostname(config.hostname, 'config.hostname');
  if (config.windows) throw invalidArgument('config.windows: Windows pods are not supported on this Linux runtime');

  const modes = namespaceModes(config);
  const nsField = 'config.linux.security_context.namespace_options';
  if (modes.network !== 'POD' && modes.network !== 'NODE') throw invalidArgument(`${nsField}.network: ${modes.network} is not POD or NODE`);
  if (modes.ipc !== 'POD' && modes.ipc !== 'NODE') throw invalidArgument(`${nsField}.ipc: ${modes.ipc} is not POD or NODE`);
  if (modes.pid === 'TARGET') throw invalidArgument(`${nsField}.pid: TARGET applies to containers, not to a pod`);
  validateUserNamespace(config.linux?.security_context?.namespace_options?.userns_options ?? null, `${nsField}.userns_options`);

  if (config.dns_config) renderResolvConf(config.dns_config);
  const hostNetwork = modes.network === 'NODE';
  portMappingsOf(config);
  try {
    validateSysctls(config.linux?.sysctls ?? {}, { hostNetwork, hostIpc: modes.ipc === 'NODE', hostUts: hostNetwork });
  } catch (err) {
    (err as Error).message = `config.linux.${(err as Error).message}`;
    throw err;
  }
  bandwidthOf(config);
  checkStringMap(config.labels, 'config.labels');
  checkStringMap(config.annotations, 'config.annotations');
  return { config, nameKey: sandboxNameKey(m) };
}

interface UserNamespaceRequest {
  mode: string;
  uids: { host_id: number; container_id: number; length: number }[];
  gids: { host_id: number; container_id: number; length: number }[];
}

/**
 * userns_options: NODE is the host's user namespace (today's behaviour). What the CRI forbids is
 * refused with its reason, as cri-tools' specs expect: CONTAINER or TARGET mode, anything but one
 * uid and one gid mapping, a mapping that leaves ID 0 unmapped. A valid POD request is refused too
 * (UNIMPLEMENTED): a pod in its own user namespace needs id-mapped mounts for its rootfs and
 * volumes, which neither runc 1.1 nor crun 1.8 offers; the handlers' user_namespaces feature is
 * false for the same reason.
 */
function validateUserNamespace(userns: UserNamespaceRequest | null, field: string): void {
  if (!userns || userns.mode === 'NODE') return;
  if (userns.mode !== 'POD') throw invalidArgument(`${field}.mode: ${userns.mode} is not supported for user namespaces (only NODE or POD)`);
  for (const kind of ['uids', 'gids'] as const) {
    const mappings = userns[kind];
    if (mappings.length !== 1) throw invalidArgument(`${field}.${kind}: exactly one mapping is supported, got ${mappings.length}`);
    const m = mappings[0]!;
    if (m.container_id !== 0) throw invalidArgument(`${field}.${kind}[0]: container ID 0 must be mapped (container_id is ${m.container_id})`);
    if (!Number.isInteger(m.length) || m.length < 1) throw invalidArgument(`${field}.${kind}[0].length: ${m.length} must be at least 1`);
  }
  throw unimplemented(`${field}.mode: POD user namespaces need id-mapped mounts for the pod's rootfs and volumes, which this node's runtimes do not offer`);
}

/**
 * A cgroupfs path under which crisp makes the pod's cgroups (kubelet's pod cgroup). crisp drives
 * cgroupfs itself, so a systemd slice name is refused, and no segment may climb out with "..".
 */
function validateCgroupParent(parent: string): void {
  const field = 'config.linux.cgroup_parent';
  const p = parent.trim();
  if (p === '') return;
  if (p.endsWith('.slice')) throw invalidArgument(`${field}: ${quote(p)} is a systemd slice; crisp uses the cgroupfs driver`);
  if (p.split('/').some((s) => s === '..' || s === '.')) throw invalidArgument(`${field}: ${quote(p)} must not contain "." or ".." segments`);
}
