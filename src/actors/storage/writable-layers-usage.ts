// Bytes and inodes of every container's writable layer (its overlay upper dir) together: the
// container filesystem ImageFsInfo reports beside the image filesystem, which kubelet's eviction
// manager watches. The figures are the stats' own (one WritableLayerCache per daemon), so a
// layer is walked once per refresh whoever asks; a container not walked yet is walked now.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nowNs } from '../../events/clock.js';
import type { Usage } from './disk-usage.js';
import type { WritableLayerCache } from './writable-layer-cache.js';

export interface WritableLayersFigure extends Usage {
  /** When the figure was summed, ns since the epoch. */
  at: bigint;
}

export class WritableLayersUsage {
  constructor(private readonly root: string, private readonly layers: WritableLayerCache) {}

  /** Where the writable layers live: <root>/containers/<id>/upper. */
  get mountpoint(): string {
    return join(this.root, 'containers');
  }

  async usage(): Promise<WritableLayersFigure> {
    let ids: string[];
    try {
      ids = await readdir(this.mountpoint);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      ids = [];
    }
    const total: Usage = { bytes: 0, inodes: 0 };
    // One container at a time: a first walk of many containers must not flood the disk with stat calls.
    for (const id of ids) {
      const u = await this.layers.usage(id, join(this.mountpoint, id, 'upper'));
      total.bytes += u.bytes;
      total.inodes += u.inodes;
    }
    return { ...total, at: nowNs() };
  }
}
