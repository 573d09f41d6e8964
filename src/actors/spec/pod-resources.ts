// What a pod gives the spec of every container in it, the infra container's included: its
// pinned namespaces, its hostname/hosts/resolv.conf files, its /dev/shm, its cgroup parent and
// its hostname. One function, so the pause container and the containers cannot drift apart.
import { join } from 'node:path';
import { failedPrecondition } from '../../errors.js';
import type { SandboxContext } from '../../machines/sandbox.js';
import { effectiveHostname } from '../../machines/sandbox-config.js';
import type { PodResources } from './input.js';

/**
 * The pod's shared resources for a container spec. The pid namespace is the caller's: the infra
 * container makes it, a container joins the pinned one or the infra's.
 */
export function podResourcesOf(sandboxId: string, s: SandboxContext, nodeHostname: string): PodResources {
  if (!s.config) throw failedPrecondition(`pod sandbox ${sandboxId} has no config`);
  if (!s.filesDir) throw failedPrecondition(`pod sandbox ${sandboxId} has no hostname/hosts/resolv.conf files`);
  return {
    ...(s.namespaces.net !== undefined && { netns: s.namespaces.net }),
    ...(s.namespaces.ipc !== undefined && { ipcns: s.namespaces.ipc }),
    ...(s.namespaces.uts !== undefined && { utsns: s.namespaces.uts }),
    hostnamePath: join(s.filesDir, 'hostname'),
    hostsPath: join(s.filesDir, 'hosts'),
    resolvConfPath: join(s.filesDir, 'resolv.conf'),
    ...(s.shmPath && { shmPath: s.shmPath }),
    cgroupParent: s.config.linux?.cgroup_parent ?? '',
    hostname: effectiveHostname(s.config, sandboxId, nodeHostname),
  };
}
