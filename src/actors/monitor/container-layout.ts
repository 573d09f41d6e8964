// Where a container's files live. Persistent ones (the overlay's upper and work dirs, the
// bundle, the termination log) under <root>/containers/<id>; what conmon and runc keep under
// the runroot, which a reboot clears along with the processes it describes.
import { join } from 'node:path';

export interface ContainerLayout {
  dir: string;
  upper: string;
  work: string;
  rootfs: string;
  bundle: string;
  terminationLog: string;
  /** Used when the pod names no log directory. */
  defaultLog: string;
  /** Image volumes: one read-only overlay per image mount, named by the mount's index. */
  imageVolumes: string;
}

/** Where a runtime container's overlay (upper, work, merged rootfs) and OCI bundle live in its dir. */
export function bundleLayout(dir: string) {
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work'), rootfs: join(dir, 'rootfs'), bundle: join(dir, 'bundle') };
}

export function containerLayout(root: string, id: string): ContainerLayout {
  const dir = join(root, 'containers', id);
  return {
    ...bundleLayout(dir),
    terminationLog: join(dir, 'termination-log'),
    defaultLog: join(dir, 'container.log'),
    imageVolumes: join(dir, 'image-volumes'),
  };
}

export interface RuntimeDirs {
  runDir: string;
  exitsDir: string;
  runtimeRoot: string;
}

export function runtimeDirs(runroot: string): RuntimeDirs {
  return { runDir: join(runroot, 'containers'), exitsDir: join(runroot, 'exits'), runtimeRoot: join(runroot, 'runc') };
}
