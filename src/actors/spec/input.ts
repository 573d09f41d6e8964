// What generateSpec needs: the CRI requests, the image, the pod's resources and the host facts.
// Everything here is plain data gathered beforehand by the IO helpers (readHostFacts,
// resolveUser, prepareMounts, loadLocalhostSeccompProfile), so generation itself stays pure.

import type { PreparedMount } from '../../machines/container-rules.js';
import type { ContainerConfig__Output } from '../../cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { OciImageConfig, OciRlimit } from './oci-types.js';

export interface ImageInfo {
  config: OciImageConfig;
  /** The image name the user asked for (e.g. docker.io/library/busybox:latest). */
  name: string;
  /** The image id (sha256:...). */
  id: string;
}

/** Paths of the pod's shared resources, made by the sandbox/network actors. */
export interface PodResources {
  netns?: string;
  ipcns?: string;
  utsns?: string;
  /** /proc/<infra pid>/ns/pid of the pod's infra process, when the pod shares a PID namespace. */
  pidns?: string;
  hostnamePath: string;
  hostsPath: string;
  resolvConfPath: string;
  /** The pod's /dev/shm tmpfs; without it each container gets a private one. */
  shmPath?: string;
  /** The pod's cgroup parent as the cgroupfs driver names it; '' → /crisp/<sandboxId>. */
  cgroupParent: string;
  hostname: string;
}

export interface HostDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface HostFacts {
  /** The daemon's capability bounding set, as CAP_* names. */
  capabilities: string[];
  cgroupVersion: 1 | 2;
  /** Whether the kernel offers cgroup namespaces (used on cgroup v2 only). */
  cgroupNamespace: boolean;
  /** Parsed /usr/share/containers/seccomp.json (containers-common format), or null if absent. */
  defaultSeccompProfile: unknown;
  /** The daemon's own /proc/self/oom_score_adj: the floor for containers' values. */
  oomScoreAdj: number;
  apparmor: boolean;
  selinux: boolean;
  /** Whether the memory cgroup accounts swap (memory.memsw / memory.swap.max). */
  swapAccounting: boolean;
  hugetlb: boolean;
  /** Go-style architecture name (amd64, arm64, ...) as seccomp profiles' arch filters use. */
  arch: string;
  /** Kernel release (uname -r), for seccomp includes.minKernel. */
  kernelRelease: string;
  /** Character and block devices under /dev, for privileged containers and CRI devices. */
  devices: HostDevice[];
  /** The online CPUs and memory nodes, in the kernel's list format ("0-3"); absent when unknown. */
  cpus?: string;
  mems?: string;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Primary gid first, then the /etc/group memberships, then supplemental_groups. */
  additionalGids: number[];
  username?: string;
  /** The user's home directory from /etc/passwd, '/' when unknown. */
  home: string;
}

export type PropagationNeed = 'shared' | 'slave';

/** A CRI mount after prepareMounts: host path resolved, propagation needs known. */
export interface SpecInput {
  containerId: string;
  sandboxId: string;
  container: ContainerConfig__Output;
  sandbox: PodSandboxConfig__Output;
  image: ImageInfo;
  /** The mounted root filesystem. */
  rootfs: string;
  pod: PodResources;
  host: HostFacts;
  /** CRI mounts from prepareMounts; when absent container.mounts are used as given. */
  mounts?: PreparedMount[];
  /** The profile file a Localhost seccomp request names, read by loadLocalhostSeccompProfile. */
  localhostSeccomp?: LoadedSeccompProfile;
  /** Bind-mounted file for the termination message (the caller creates it). */
  terminationMessage?: { hostPath: string; containerPath: string };
  /** The target container's PID namespace path, for namespace_options.pid = TARGET. */
  targetPidns?: string;
  pidsLimit?: number;
  rlimits?: OciRlimit[];
  /** Treat an absent seccomp request as RuntimeDefault (CRI-O's default), else Unconfined. */
  seccompDefaultWhenEmpty?: boolean;
}

export interface LoadedSeccompProfile {
  path: string;
  profile: unknown;
}
