// Who owns what on the node, as the log says it, and the pure decisions the leak sweep makes
// from that: which mounts and CNI attachments nobody owns. Kept free of I/O so the decisions
// can be tested on real mountinfo text and real cache entries.
import { dirname, resolve, sep } from 'node:path';
import type { EventStore } from '../../events/store.js';
import { stateOf } from '../../machines/index.js';
import type { ContainerContext } from '../../machines/container.js';
import type { SandboxContext } from '../../machines/sandbox.js';
import type { MountEntry } from '../../host/mountinfo.js';
import type { CachedAttachment } from '../network/cni-cache.js';
import { DEFAULT_IFNAME, type GcAttachment } from '../network/cni.js';
import { containerLayout } from '../monitor/container-layout.js';
import { sandboxDir } from '../sandbox/sandbox-streams.js';

/** The live streams' contexts, by id: everything they hold is owned. */
export interface LiveOwners {
  containers: ReadonlyMap<string, ContainerContext>;
  sandboxes: ReadonlyMap<string, SandboxContext>;
}

export function liveOwners(store: EventStore): LiveOwners {
  return {
    containers: new Map(store.liveStreams('container').map(([id, live]) => [id, stateOf('container', live.snapshot).context])),
    sandboxes: new Map(store.liveStreams('sandbox').map(([id, live]) => [id, stateOf('sandbox', live.snapshot).context])),
  };
}

/** Runtime ids (runc state, conmon, cgroup) live streams own: an infra container's is its sandbox's. */
export function runtimeOwners(owners: LiveOwners): Set<string> {
  const ids = new Set([...owners.containers.keys(), ...owners.sandboxes.keys()]);
  for (const s of owners.sandboxes.values()) if (s.infraRuntimeId) ids.add(s.infraRuntimeId);
  return ids;
}

/**
 * Every path a live stream holds: its container or sandbox dir, and whatever its context
 * names (rootfs, bundle, pinned namespaces, shm, pod files, infra rootfs and bundle), which
 * may lie outside those dirs.
 */
export function ownedPaths(owners: LiveOwners, root: string, runroot: string): string[] {
  const paths: (string | null | undefined)[] = [];
  for (const [id, c] of owners.containers) paths.push(containerLayout(root, id).dir, c.rootfs, c.bundle);
  for (const [id, s] of owners.sandboxes) {
    paths.push(sandboxDir(runroot, id), s.shmPath, s.filesDir, s.infraRootfs, s.infraBundle, ...Object.values(s.namespaces));
  }
  return [...new Set(paths.filter((p): p is string => typeof p === 'string' && p !== '').map((p) => resolve(p)))];
}

/** Whether `path` is `dir` or lies below it (by path components, not string prefix). */
export function isWithin(path: string, dir: string): boolean {
  const p = resolve(path);
  const d = resolve(dir);
  return p === d || p.startsWith(d.endsWith(sep) ? d : d + sep);
}

export interface StrayMountOptions {
  /** crisp's root and runroot: only mounts strictly below these are considered. */
  roots: readonly string[];
  owned: readonly string[];
}

/**
 * Mount points under crisp's dirs that no live stream owns, deepest first (so nested mounts
 * come off before what they sit on), each once. Never released: the roots themselves, their
 * direct children (a dedicated filesystem an operator put at `<root>/layers` is not a leak),
 * anything at or inside an owned path, and anything an owned path lies inside (unmounting
 * it would take the owned path with it).
 */
export function strayMounts(mounts: readonly MountEntry[], o: StrayMountOptions): string[] {
  const roots = o.roots.map((r) => resolve(r));
  // Sets of owned paths and of every directory above one, so each mount is checked by walking
  // its own few ancestors: comparing every mount with every owned path took seconds at 110 pods.
  const owned = new Set(o.owned.map((p) => resolve(p)));
  const aboveOwned = new Set<string>();
  for (const p of owned) for (let d = dirname(p); !aboveOwned.has(d) && d !== dirname(d); d = dirname(d)) aboveOwned.add(d);
  const stray = new Set<string>();
  for (const { mountPoint } of mounts) {
    if (!roots.some((r) => mountPoint !== r && isWithin(mountPoint, r))) continue;
    if (roots.some((r) => isWithin(r, mountPoint) || dirname(mountPoint) === r)) continue;
    if (aboveOwned.has(mountPoint) || atOrBelowOne(mountPoint, owned)) continue;
    stray.add(mountPoint);
  }
  return [...stray].sort(byDepthDescending);
}

/** Whether `path` or one of its ancestors is in `set`. */
function atOrBelowOne(path: string, set: ReadonlySet<string>): boolean {
  for (let p = path; ; p = dirname(p)) {
    if (set.has(p)) return true;
    if (p === dirname(p)) return false;
  }
}

function byDepthDescending(a: string, b: string): number {
  return b.split('/').length - a.split('/').length || (a < b ? 1 : a > b ? -1 : 0);
}

/** Cache entries whose sandbox (the CNI container id) is no live sandbox stream. */
export function unownedAttachments(entries: readonly CachedAttachment[], owners: LiveOwners): CachedAttachment[] {
  return entries.filter((e) => !owners.sandboxes.has(e.containerId));
}

/**
 * The attachments the log owns, for CNI GC: the cached ones of live sandboxes, and the default
 * interface of every live sandbox that recorded a network (even if its cache entry was lost,
 * plugins must keep what it holds).
 */
export function ownedAttachments(entries: readonly CachedAttachment[], owners: LiveOwners): GcAttachment[] {
  const keys = new Map<string, GcAttachment>();
  const add = (containerId: string, ifName: string) => keys.set(`${containerId}\u0000${ifName}`, { containerId, ifName });
  for (const e of entries) if (owners.sandboxes.has(e.containerId)) add(e.containerId, e.ifName);
  for (const [id, s] of owners.sandboxes) if (s.network !== null) add(id, DEFAULT_IFNAME);
  return [...keys.values()].sort((a, b) => (a.containerId + a.ifName < b.containerId + b.ifName ? -1 : 1));
}
