import { resolve } from 'node:path';
// Unmounting until nothing is left, for whoever mounted: pods (pinned namespaces, shm),
// containers and infra (rootfs overlays), the leak sweep; and the table of mounts they check.
import { internal } from '../errors.js';
import { unmount } from './syscalls.js';
import { mountedHere, mountsOn, readMounts, type MountEntry } from './mountinfo.js';

/** The topmost mount on every mount point now, for checking many paths against one read of the table. */
export async function topMounts(): Promise<Map<string, MountEntry>> {
  return new Map((await readMounts()).map((m) => [m.mountPoint, m]));
}

/**
 * unmountAll for the paths crisp mounted itself (pinned namespaces, shm, rootfs overlays), which
 * a stat tells mounted or not without reading mountinfo (see host/mountinfo.ts).
 */
export async function unmountOwn(...paths: string[]): Promise<void> {
  const targets = [...new Set(paths.map((p) => resolve(p)))];
  for (let round = 0; round < 16; round++) {
    // a pod's targets share their directories: each parent is asked once a round
    const parentDevs = new Map<string, number>();
    const mounted = targets.filter((p) => mountedHere(p, parentDevs));
    if (mounted.length === 0) return;
    const failed = await unmount(mounted);
    if (failed !== null) {
      const stuck = mounted.filter((m) => mountedHere(m));
      if (stuck.length > 0) throw internal(`unmounting ${stuck.join(', ')} failed: ${failed}`);
    }
  }
  throw internal(`unmounting ${targets.join(', ')} failed: still mounted after 16 attempts`);
}

/**
 * Unmounts everything stacked on each of `paths`, with one unmount request per round. Already
 * unmounted is success, so callers can re-drive a release after a crash.
 */
export async function unmountAll(...paths: string[]): Promise<void> {
  const targets = new Set(paths.map((p) => resolve(p)));
  // Bounded: a mount that survives umount would otherwise loop forever.
  for (let round = 0; round < 16; round++) {
    const stacked = await mountsOn([...targets]);
    const mounted = [...stacked.keys()];
    if (mounted.length === 0) return;
    const failed = await unmount(mounted);
    if (failed !== null) {
      const still = await mountsOn(mounted);
      const stuck = mounted.filter((m) => still.has(m));
      if (stuck.length > 0) throw internal(`unmounting ${stuck.join(', ')} failed: ${failed}`);
    }
  }
  throw internal(`unmounting ${[...targets].join(', ')} failed: still mounted after 16 attempts`);
}
