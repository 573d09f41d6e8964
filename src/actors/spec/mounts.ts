// The container's mount table: the kernel filesystems every container gets, the pod's shared
// files, the CRI mounts (which win over defaults at the same destination), ordered parents first.

import { lstat, mkdir, realpath, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import type { Mount__Output } from '../../cri/proto/gen/runtime/v1/Mount.js';
import { cleanAbsolute, validateCriMount, type PreparedMount } from '../../machines/container-rules.js';
import type { PodResources, PropagationNeed } from './input.js';
import type { OciMount } from './oci-types.js';

export interface PreparedMounts {
  mounts: PreparedMount[];
  /** Directories prepareMounts created, deepest first: hand them to releasePreparedMounts. */
  createdHostPaths: string[];
}

/**
 * Readies CRI mounts on the host: a missing host path becomes a directory (as kubelet expects for
 * hostPath volumes), and symlinked host paths are resolved so the bind lands on the target.
 * selinux_relabel is ignored: this host has no SELinux.
 */
export async function prepareMounts(mounts: Mount__Output[], imageVolumeDir?: (index: number) => string): Promise<PreparedMounts> {
  const checked = mounts.map(validateCriMount);
  const createdHostPaths: string[] = [];
  try {
    const prepared: PreparedMount[] = [];
    for (const [i, m] of checked.entries()) {
      if (m.image) {
        if (!imageVolumeDir) throw failedPrecondition(`mounts[${i}].image: the image is not mounted`);
        prepared.push({ ...m, hostPath: await imageVolumeSource(imageVolumeDir(i), m.image.subPath, i) });
        continue;
      }
      try {
        await lstat(m.hostPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        const first = await mkdir(m.hostPath, { recursive: true });
        if (first) {
          const made: string[] = [];
          for (let p = m.hostPath; ; p = path.dirname(p)) {
            made.push(p);
            if (p === first || p === '/') break;
          }
          createdHostPaths.unshift(...made);
        }
      }
      let resolved: string;
      try {
        resolved = await realpath(m.hostPath);
      } catch (err) {
        throw failedPrecondition(`mounts[${i}].host_path: ${m.hostPath} cannot be resolved: ${(err as Error).message}`);
      }
      prepared.push({ ...m, hostPath: resolved });
    }
    return { mounts: prepared, createdHostPaths };
  } catch (err) {
    await releasePreparedMounts(createdHostPaths);
    throw err;
  }
}

/** Where an image volume's bind comes from: its mount, or a directory in it that stays inside it. */
async function imageVolumeSource(volume: string, subPath: string, i: number): Promise<string> {
  const wanted = path.join(volume, subPath);
  let resolved: string;
  try {
    resolved = await realpath(wanted);
  } catch {
    throw invalidArgument(`mounts[${i}].image_sub_path: ${JSON.stringify(subPath)} does not exist in the image`);
  }
  const root = await realpath(volume);
  if (resolved !== root && !resolved.startsWith(`${root}/`)) throw invalidArgument(`mounts[${i}].image_sub_path: ${JSON.stringify(subPath)} leads out of the image`);
  return resolved;
}

/** Removes the directories prepareMounts made, if still empty. Idempotent. */
export async function releasePreparedMounts(createdHostPaths: readonly string[]): Promise<void> {
  for (const dir of createdHostPaths) {
    try {
      await rmdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }
}

export interface MountPlanInput {
  pod: PodResources;
  criMounts: PreparedMount[];
  privileged: boolean;
  readonlyRootfs: boolean;
  /** Whether the container gets the pod's /etc/hostname, /etc/hosts and /etc/resolv.conf. */
  podFiles: boolean;
  terminationMessage?: { hostPath: string; containerPath: string };
}

export interface MountPlan {
  mounts: OciMount[];
  /** Host paths whose mount must be shared/slave on the host for the requested propagation. */
  hostPropagation: { hostPath: string; need: PropagationNeed }[];
  rootfsPropagation?: 'rshared' | 'rslave';
}

const depth = (p: string) => p.split('/').filter(Boolean).length;

/** Orders mounts so that every parent is mounted before what lies beneath it. */
function sortMounts(mounts: OciMount[]): OciMount[] {
  return mounts
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i)
    .map(({ m }) => m);
}

export function planMounts(input: MountPlanInput): MountPlan {
  const sysAccess = input.privileged ? 'rw' : 'ro';
  const defaults: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysAccess] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', sysAccess],
    },
    input.pod.shmPath
      ? { destination: '/dev/shm', type: 'bind', source: input.pod.shmPath, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'rw'] }
      : { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
  const fileAccess = input.readonlyRootfs ? 'ro' : 'rw';
  if (input.podFiles) {
    for (const [destination, source] of [
      ['/etc/hostname', input.pod.hostnamePath],
      ['/etc/hosts', input.pod.hostsPath],
      ['/etc/resolv.conf', input.pod.resolvConfPath],
    ] as const) {
      defaults.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', fileAccess] });
    }
  }
  if (input.terminationMessage) {
    const destination = cleanAbsolute(input.terminationMessage.containerPath, 'terminationMessage.containerPath');
    defaults.push({ destination, type: 'bind', source: input.terminationMessage.hostPath, options: ['rbind', 'rprivate', 'rw'] });
  }

  const hostPropagation: MountPlan['hostPropagation'] = [];
  const requested = new Map<string, OciMount>();
  for (const [i, m] of input.criMounts.entries()) {
    if (requested.has(m.containerPath)) {
      throw invalidArgument(`mounts[${i}].container_path: ${m.containerPath} is mounted twice`);
    }
    requested.set(m.containerPath, {
      destination: m.containerPath,
      type: 'bind',
      source: m.hostPath,
      options: ['rbind', m.propagation, m.readonly ? 'ro' : 'rw', ...(m.recursiveReadOnly ? ['rro'] : []), ...(m.options ?? [])],
    });
    if (m.propagation === 'rshared') hostPropagation.push({ hostPath: m.hostPath, need: 'shared' });
    if (m.propagation === 'rslave') hostPropagation.push({ hostPath: m.hostPath, need: 'slave' });
  }
  const merged = [...defaults.filter((d) => !requested.has(d.destination)), ...requested.values()];
  const plan: MountPlan = { mounts: sortMounts(merged), hostPropagation };
  // The rootfs must propagate too, or events from a shared/slave bind stop at the container root.
  if (hostPropagation.some((p) => p.need === 'shared')) plan.rootfsPropagation = 'rshared';
  else if (hostPropagation.length > 0) plan.rootfsPropagation = 'rslave';
  return plan;
}
