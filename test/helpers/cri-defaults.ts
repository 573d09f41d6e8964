// CRI messages with every field at its proto3 default, as the gRPC decoder (defaults: true) hands
// them over; for code that builds requests itself (tests, tools) and then overrides a few fields.

import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { LinuxContainerSecurityContext__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { LinuxSandboxSecurityContext__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxSandboxSecurityContext.js';
import type { PodSandboxConfig__Output } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { Mount__Output } from '../../src/cri/proto/gen/runtime/v1/Mount.js';

export function criResources(p: Partial<LinuxContainerResources__Output> = {}): LinuxContainerResources__Output {
  return {
    cpu_period: '0',
    cpu_quota: '0',
    cpu_shares: '0',
    memory_limit_in_bytes: '0',
    oom_score_adj: '0',
    cpuset_cpus: '',
    cpuset_mems: '',
    hugepage_limits: [],
    unified: {},
    memory_swap_limit_in_bytes: '0',
    ...p,
  };
}

export function criSecurityContext(p: Partial<LinuxContainerSecurityContext__Output> = {}): LinuxContainerSecurityContext__Output {
  return {
    capabilities: null,
    privileged: false,
    namespace_options: null,
    selinux_options: null,
    run_as_user: null,
    run_as_username: '',
    readonly_rootfs: false,
    supplemental_groups: [],
    apparmor_profile: '',
    seccomp_profile_path: '',
    no_new_privs: false,
    run_as_group: null,
    masked_paths: [],
    readonly_paths: [],
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...p,
  };
}

export function criMount(p: Partial<Mount__Output> & Pick<Mount__Output, 'container_path' | 'host_path'>): Mount__Output {
  return {
    readonly: false,
    selinux_relabel: false,
    propagation: 'PROPAGATION_PRIVATE',
    uidMappings: [],
    gidMappings: [],
    recursive_read_only: false,
    image: null,
    image_sub_path: '',
    mount_options: [],
    ...p,
  };
}

export function criContainerConfig(p: Partial<ContainerConfig__Output> = {}): ContainerConfig__Output {
  return {
    metadata: { name: 'ctr', attempt: 0 },
    image: null,
    command: [],
    args: [],
    working_dir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    log_path: '',
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: { resources: criResources(), security_context: criSecurityContext() },
    windows: null,
    CDI_devices: [],
    stop_signal: 'SIGNAL_RUNTIME_DEFAULT',
    ...p,
  };
}

export function criSandboxSecurityContext(p: Partial<LinuxSandboxSecurityContext__Output> = {}): LinuxSandboxSecurityContext__Output {
  return {
    namespace_options: null,
    selinux_options: null,
    run_as_user: null,
    readonly_rootfs: false,
    supplemental_groups: [],
    privileged: false,
    seccomp_profile_path: '',
    run_as_group: null,
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...p,
  };
}

export function criSandboxConfig(p: Partial<PodSandboxConfig__Output> = {}): PodSandboxConfig__Output {
  return {
    metadata: { name: 'pod', uid: 'pod-uid', namespace: 'default', attempt: 0 },
    hostname: 'pod',
    log_directory: '',
    dns_config: null,
    port_mappings: [],
    labels: {},
    annotations: {},
    linux: {
      cgroup_parent: '',
      security_context: criSandboxSecurityContext(),
      sysctls: {},
      overhead: null,
      resources: null,
    },
    windows: null,
    ...p,
  };
}
