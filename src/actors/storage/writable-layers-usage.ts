// Bytes and inodes of every container's writable layer (its overlay upper dir) together: the
// container filesystem ImageFsInfo reports beside the image filesystem, which kubelet's eviction
// manager watches. A walk of every upper dir, so the figure is cached briefly and concurrent
// callers share one walk.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nowNs } from '../../events/clock.js';
import { diskUsage, type Usage } from './disk-usage.js';

export interface WritableLayersFigure extends Usage {
  /** When the walk finished, ns since the epoch. */
  at: bigint;
}

export class WritableLayersUsage {
  private cached?: { atMs: number; value: Promise<WritableLayersFigure> };

  constructor(private readonly root: string, private readonly ttlMs = 5_000) {}

  /** Where the writable layers live: <root>/containers/<id>/upper. */
  get mountpoint(): string {
    return join(this.root, 'containers');
  }

  usage(): Promise<WritableLayersFigure> {
    const now = Date.now();
    if (!this.cached || now - this.cached.atMs > this.ttlMs) {
      const value = this.walk();
      value.catch(() => (this.cached = undefined));
      this.cached = { atMs: now, value };
    }
    return this.cached.value;
  }

  private async walk(): Promise<WritableLayersFigure> {
    let ids: string[];
    try {
      ids = await readdir(this.mountpoint);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      ids = [];
    }
    const total: Usage = { bytes: 0, inodes: 0 };
    // One container at a time: a node full of containers must not flood the disk with stat calls.
    for (const id of ids) {
      const u = await diskUsage(join(this.mountpoint, id, 'upper'));
      total.bytes += u.bytes;
      total.inodes += u.inodes;
    }
    return { ...total, at: nowNs() };
  }
}
