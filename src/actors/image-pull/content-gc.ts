// Image content collection while the daemon runs: layers and blobs no image refers to are
// deleted after a failed or cancelled pull, after RemoveImage and on a periodic pass, and each
// collection that deleted something is recorded (ContentCollected on the runtime stream).
// Collection never races a pull: pulls hold the store open (enter/leave), and a collection waits
// until none is in flight, while a pull that starts during a collection waits for it to end, so
// a layer a pull is about to reuse is never deleted under it.
import type { EventStore } from '../../events/store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { LayerStore } from '../storage/layer-store.js';
import type { Logger } from '../../log.js';
import { RUNTIME_STREAM_ID } from '../../machines/runtime.js';
import { stateOf } from '../../machines/index.js';
import { imagesOf } from '../../machines/container.js';
import { messageOf } from '../../errors.js';
import { liveImages } from './image-index.js';

/** What the live images refer to: the one definition both collection and the start-up sweep use. */
export interface ReferencedContent {
  chains: Set<string>;
  blobs: Set<string>;
}

export function referencedContent(store: EventStore): ReferencedContent {
  const images = liveImages(store);
  return {
    chains: new Set(images.flatMap((i) => i.context.layers.map((l) => l.chainId))),
    // The config, the platform manifest, the layers, and whatever a repo digest names (the
    // index or list a pull by tag stored): all of them belong to the image.
    blobs: new Set(images.flatMap((i) => [
      i.context.id, i.context.manifestDigest, ...i.context.layers.map((l) => l.digest),
      ...i.context.repoDigests.map((d) => d.slice(d.indexOf('@') + 1)),
    ].filter(Boolean))),
  };
}

/**
 * Images gone from the log whose layers a container or an infra container may still have
 * mounted: a container or pod still releasing one holds collection off until it is done.
 */
function releasesPending(store: EventStore): boolean {
  const live = new Set(liveImages(store).map((i) => i.context.id));
  return store.liveStreams('container').some(([, s]) => {
    return imagesOf(stateOf('container', s.snapshot).context).some((image) => !live.has(image));
  }) || store.liveStreams('sandbox').some(([, s]) => {
    const c = stateOf('sandbox', s.snapshot).context;
    return c.infraRootfs !== null && c.infraImage !== null && !live.has(c.infraImage.id);
  });
}

export interface ContentCollectorOptions {
  store: EventStore;
  blobs: BlobStore;
  layers: LayerStore;
  logger: Logger;
  /** The periodic pass; 0 turns it off. */
  intervalMs: number;
}

export class ContentCollector {
  private pulls = 0;
  private collecting: Promise<void> | undefined;
  private pending: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ContentCollectorOptions) {}

  start(): void {
    if (this.o.intervalMs > 0) {
      this.timer = setInterval(() => this.request('periodic pass'), this.o.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A pull begins: waits out a collection in progress. Call the returned function when it ends. */
  async enter(): Promise<() => void> {
    while (this.collecting) await this.collecting;
    this.pulls++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.pulls === 0) this.runPending();
    };
  }

  /** Asks for a collection; it runs once no pull is in flight. */
  request(reason: string): void {
    this.pending = this.pending ? `${this.pending}; ${reason}` : reason;
    if (this.pulls === 0) this.runPending();
  }

  /**
   * Resolves once no collection is running. One asked for while pulls are in flight stays
   * pending until they end; RemoveImage does not wait for an unrelated pull.
   */
  async settled(): Promise<void> {
    while (this.collecting) await this.collecting;
  }

  private runPending(): void {
    if (this.collecting || !this.pending) return;
    const reason = this.pending;
    this.pending = undefined;
    this.collecting = this.collect(reason)
      .catch((err) => this.o.logger.warn({ err: messageOf(err), reason }, 'content collection failed; the next pass retries'))
      .finally(() => {
        this.collecting = undefined;
        if (this.pulls === 0) this.runPending();
      });
  }

  private async collect(reason: string): Promise<void> {
    const { store, blobs, layers, logger } = this.o;
    if (releasesPending(store)) {
      logger.debug({ reason }, 'content collection deferred: a removed image is still being released');
      return;
    }
    // No pull is in flight, so what interrupted ingests and unpacks left is garbage too.
    await blobs.sweepTemp();
    await layers.sweepPartial();
    const referenced = referencedContent(store);
    const goneLayers: string[] = [];
    const goneBlobs: string[] = [];
    for (const chainId of await layers.list()) {
      if (referenced.chains.has(chainId)) continue;
      await layers.remove(chainId);
      goneLayers.push(chainId);
    }
    for (const digest of await blobs.list()) {
      if (referenced.blobs.has(digest)) continue;
      await blobs.remove(digest);
      goneBlobs.push(digest);
    }
    if (goneLayers.length + goneBlobs.length === 0) return;
    const live = store.stream(RUNTIME_STREAM_ID);
    store.append({
      kind: 'runtime', streamId: RUNTIME_STREAM_ID, expectedVersion: live?.version ?? 0,
      events: [{ type: 'ContentCollected', reason, layers: goneLayers, blobs: goneBlobs }],
    });
    logger.info({ reason, layers: goneLayers.length, blobs: goneBlobs.length }, 'collected image content no image refers to');
  }
}
