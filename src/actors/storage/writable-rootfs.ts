// A container's root filesystem: its image's layers as the overlay's lower dirs and a writable
// layer of its own on top. The same for every container and for a pod's pause container; each
// caller says where its upper, work and rootfs dirs live.
import { mkdirSync } from 'node:fs';
import type { LayerStore } from './layer-store.js';
import { mountOverlay } from './overlay.js';

export interface WritableRootfsLayout {
  upper: string;
  work: string;
  rootfs: string;
}

/** Makes the dirs and mounts the overlay at `layout.rootfs`; already mounted is fine (idempotent). */
export async function mountWritableRootfs(
  layers: Pick<LayerStore, 'path' | 'linkDir'>,
  imageLayers: readonly { chainId: string }[],
  layout: WritableRootfsLayout,
): Promise<void> {
  mkdirSync(layout.upper, { recursive: true, mode: 0o755 });
  mkdirSync(layout.work, { recursive: true, mode: 0o700 });
  mkdirSync(layout.rootfs, { recursive: true, mode: 0o755 });
  await mountOverlay({
    lowerDirs: imageLayers.map((layer) => layers.path(layer.chainId)),
    upperDir: layout.upper,
    workDir: layout.work,
    target: layout.rootfs,
    linkDir: layers.linkDir,
  });
}
