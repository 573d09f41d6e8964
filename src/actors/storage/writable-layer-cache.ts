// Bytes and inodes of each container's writable layer (its overlay upper dir). Walking a tree
// costs a syscall per file, far too much to do per stats call for 110 containers, so walks are
// cached: a call answers from the cache and, when the figure is older than the refresh
// interval, asks for a new walk in the background (one walk at a time, so a node with many
// containers never floods the disk with stat calls).
import { diskUsage, type Usage } from './disk-usage.js';
import { nowNs } from '../../events/clock.js';
import { silentLogger, type Logger } from '../../log.js';

export interface LayerUsage extends Usage {
  /** When the walk that measured it finished, ns since the epoch. */
  atNs: bigint;
}

export interface WritableLayerOptions {
  refreshMs: number;
  logger?: Logger;
  walk?: (dir: string) => Promise<Usage>;
}

interface Entry {
  dir: string;
  usage?: LayerUsage;
  first?: Promise<LayerUsage>;
  queued: boolean;
}

export class WritableLayerCache {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: string[] = [];
  private draining = false;
  private closed = false;
  private readonly walk: (dir: string) => Promise<Usage>;
  private readonly logger: Logger;

  constructor(private readonly o: WritableLayerOptions) {
    if (!Number.isInteger(o.refreshMs) || o.refreshMs <= 0) throw new RangeError(`refreshMs must be a positive integer, got ${o.refreshMs}`);
    this.walk = o.walk ?? diskUsage;
    this.logger = o.logger ?? silentLogger;
  }

  /**
   * The usage of `dir` for container `id`. The first call for a container waits for its walk
   * (a new upper dir is nearly empty); later calls never wait.
   */
  async usage(id: string, dir: string): Promise<LayerUsage> {
    let entry = this.entries.get(id);
    if (!entry || entry.dir !== dir) {
      entry = { dir, queued: false };
      this.entries.set(id, entry);
    }
    if (entry.usage) {
      if (nowNs() - entry.usage.atNs > BigInt(this.o.refreshMs) * 1_000_000n) this.enqueue(id);
      return entry.usage;
    }
    entry.first ??= this.measure(id, entry).finally(() => {
      if (entry) entry.first = undefined;
    });
    return entry.first;
  }

  /** Forgets containers not in `ids` (removed ones), so the cache never outgrows the node. */
  retainOnly(ids: Set<string>): void {
    for (const id of this.entries.keys()) if (!ids.has(id)) this.entries.delete(id);
  }

  /** Stops background walks; idempotent. A walk in flight finishes but is not followed by more. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async measure(id: string, entry: Entry): Promise<LayerUsage> {
    const usage = { ...(await this.walk(entry.dir)), atNs: nowNs() };
    if (this.entries.get(id) === entry) entry.usage = usage;
    return usage;
  }

  private enqueue(id: string): void {
    const entry = this.entries.get(id);
    if (!entry || entry.queued || this.closed) return;
    entry.queued = true;
    this.queue.push(id);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let id = this.queue.shift(); id !== undefined && !this.closed; id = this.queue.shift()) {
        const entry = this.entries.get(id);
        if (!entry) continue;
        try {
          await this.measure(id, entry);
        } catch (err) {
          this.logger.warn({ err, container: id, dir: entry.dir }, 'writable layer walk failed; keeping the previous figure');
        } finally {
          entry.queued = false;
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
