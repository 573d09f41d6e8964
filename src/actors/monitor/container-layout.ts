// Where a container's files live. What must outlast a reboot (the overlay's upper and work
// dirs, the termination log) under <root>/containers/<id>. What matters only while the
// container can run under the runroot, which a reboot clears along with the processes: its
// OCI bundle (config.json, and the ctl and winsz fifos conmon makes beside it) under
// <runroot>/bundles/<id>, as CRI-O and containerd keep theirs, and conmon's and runc's files.
import { join } from 'node:path';

export interface ContainerLayout {
  dir: string;
  upper: string;
  work: string;
  rootfs: string;
  terminationLog: string;
  /** Used when the pod names no log directory. */
  defaultLog: string;
  /** Image volumes: one read-only overlay per image mount, named by the mount's index. */
  imageVolumes: string;
}

/** An overlay's upper, work and merged rootfs dirs, in `dir` (a container's, or an infra container's). */
export function overlayLayout(dir: string) {
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work'), rootfs: join(dir, 'rootfs') };
}

export function containerLayout(root: string, id: string): ContainerLayout {
  const dir = join(root, 'containers', id);
  return {
    ...overlayLayout(dir),
    terminationLog: join(dir, 'termination-log'),
    defaultLog: join(dir, 'container.log'),
    imageVolumes: join(dir, 'image-volumes'),
  };
}

/** The dir that holds every runtime container's OCI bundle. */
export function bundlesDir(runroot: string): string {
  return join(runroot, 'bundles');
}

/** A runtime container's OCI bundle. */
export function containerBundle(runroot: string, id: string): string {
  return join(bundlesDir(runroot), id);
}

/**
 * Where crisp kept a container's bundle until it moved to the runroot: inside the container
 * dir. A container created then still names it in its log; the leak sweep still reads it.
 */
export function containerDirBundle(root: string, id: string): string {
  return join(containerLayout(root, id).dir, 'bundle');
}

export interface RuntimeDirs {
  runDir: string;
  exitsDir: string;
  runtimeRoot: string;
}

export function runtimeDirs(runroot: string): RuntimeDirs {
  return { runDir: join(runroot, 'containers'), exitsDir: join(runroot, 'exits'), runtimeRoot: join(runroot, 'runc') };
}
