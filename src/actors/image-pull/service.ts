// The image slice of the runtime: pulls (recorded as a pull stream per PullImage, then as facts
// on the image's own stream), removal with release of content nothing else uses, and the
// storage figures. Reads answer from live machine state and never wait on a pull.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { EventStore } from '../../events/store.js';
import type { Logger } from '../../log.js';
import type { CrispConfig } from '../../config/schema.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { LayerStore } from '../storage/layer-store.js';
import type { AppendRequest } from '../../events/store.js';
import type { ImageEvent } from '../../machines/events.js';
import { nowNs } from '../../events/clock.js';
import { ImagePuller, type PullResult } from './puller.js';
import { loadRegistriesConfig } from './registries-conf.js';
import { parseReference } from './reference.js';
import { liveImages, resolveImage, type ImageState } from './image-index.js';
import type { AuthConfig } from './auth.js';
import { failedPrecondition, messageOf } from '../../errors.js';
import { stateOf } from '../../machines/index.js';
import { imagesOf } from '../../machines/container.js';
import { waitForState } from '../driver.js';
import { crashPoint } from '../../crash-points.js';
import { recordLeak } from '../reconcile/leaks.js';
import { ContentCollector, referencedContent } from './content-gc.js';

// How long RemoveImage waits for removed containers and pods to release the image's layers.
const RELEASE_WAIT_MS = 30_000;

export interface FsUsage {
  at: bigint;
  bytes: number;
  inodes: number;
}

const USAGE_TTL_MS = 5_000;

/** What the image slice needs: the log, the content stores and a few settings. */
export interface ImagesDeps {
  store: EventStore;
  blobs: BlobStore;
  layers: LayerStore;
  logger: Logger;
  config: Pick<CrispConfig, 'root' | 'registriesConf' | 'maxConcurrentDownloads' | 'pullProgressTimeoutMs' | 'pullMinBytesPerSecond' | 'contentGcIntervalMs'>;
}

export class Images {
  private puller: ImagePuller | undefined;
  private usageCache: { at: number; value: Promise<FsUsage> } | undefined;
  readonly collector: ContentCollector;

  constructor(private readonly ctx: ImagesDeps) {
    this.collector = new ContentCollector({
      store: ctx.store, blobs: ctx.blobs, layers: ctx.layers, logger: ctx.logger, intervalMs: ctx.config.contentGcIntervalMs,
    });
  }

  // registries.conf is read per pull, so an operator's edit applies to the next pull without
  // a restart, as it does for CRI-O.
  private async pullerFor(): Promise<ImagePuller> {
    const registries = await loadRegistriesConfig(this.ctx.config.registriesConf, { logger: this.ctx.logger });
    this.puller ??= new ImagePuller({
      blobs: this.ctx.blobs,
      layers: this.ctx.layers,
      registries,
      logger: this.ctx.logger,
      maxConcurrentDownloads: this.ctx.config.maxConcurrentDownloads,
      progressTimeoutMs: this.ctx.config.pullProgressTimeoutMs,
      minBytesPerSecond: this.ctx.config.pullMinBytesPerSecond,
    });
    this.puller.setRegistries(registries);
    return this.puller;
  }

  /** Pulls, records the pull and the image, and returns the image id. */
  async pull(image: string, auth: AuthConfig | undefined, signal: AbortSignal): Promise<string> {
    const reference = parseReference(image).toString();
    const pullId = randomBytes(32).toString('hex');
    const { store } = this.ctx;
    store.append({ kind: 'pull', streamId: pullId, expectedVersion: 0, events: [{ type: 'ImagePullRequested', reference, requestedAt: String(nowNs()) }] });
    crashPoint('pull:requested');
    const appendToPull = (events: AppendRequest['events']) =>
      store.append({ kind: 'pull', streamId: pullId, expectedVersion: store.stream(pullId)!.version, events });
    let result: PullResult;
    // Held until the pull is recorded, so no collection deletes a layer it stored or reuses.
    const leave = await this.collector.enter();
    try {
      const puller = await this.pullerFor();
      result = await puller.pull(reference, {
        auth,
        signal,
        onLayerStored: (l) => {
          appendToPull([{ type: 'ImageLayerStored', index: l.index, digest: l.digest, chainId: l.chainId, size: l.size, reused: l.reused }]);
          crashPoint('pull:layer-recorded');
        },
      });
      crashPoint('pull:before-recorded');
      this.recordPulled(pullId, result);
      crashPoint('pull:recorded');
    } catch (err) {
      if (store.stream(pullId)?.snapshot.value === 'pulling') appendToPull([{ type: 'ImagePullFailed', message: messageOf(err) }]);
      // What it stored before failing belongs to no image: collected once no pull is in flight.
      this.collector.request(`pull of ${reference} failed`);
      throw err;
    } finally {
      leave();
    }
    return result.imageId;
  }

  private recordPulled(pullId: string, result: PullResult): void {
    const { store } = this.ctx;
    this.usageCache = undefined;
    const repoTags = result.repoTag ? [result.repoTag] : [];
    // A tag names one image: moving it here takes it off whichever image held it before.
    const untags: AppendRequest[] = liveImages(store)
      .filter((other) => other.context.id !== result.imageId)
      .flatMap((other) =>
        repoTags.filter((tag) => other.context.repoTags.includes(tag)).map((tag) => ({
          kind: 'image' as const,
          streamId: other.context.id,
          expectedVersion: store.stream(other.context.id)!.version,
          events: [{ type: 'ImageUntagged' as const, repoTag: tag }],
        })),
      );
    const user = typeof result.config.config?.['User'] === 'string' ? (result.config.config['User'] as string) : '';
    const known = liveImages(store).find((image) => image.context.id === result.imageId);
    // An image already here that is pulled under another tag only gains the name; a new
    // repository digest (or a first pull) records the pull itself.
    const imageEvents: ImageEvent[] =
      known && known.context.repoDigests.includes(result.repoDigest)
        ? repoTags.filter((tag) => !known.context.repoTags.includes(tag)).map((repoTag) => ({ type: 'ImageTagged', repoTag }))
        : [{
            type: 'ImagePulled', repoTags, repoDigests: [result.repoDigest], size: result.size,
            layers: result.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, chainId: l.chainId, size: l.size, mediaType: l.mediaType })),
            manifestDigest: result.manifestDigest, user, pulledAt: String(nowNs()),
          }];
    const imageRequest: AppendRequest[] = imageEvents.length
      ? [{ kind: 'image', streamId: result.imageId, expectedVersion: store.stream(result.imageId)?.version ?? 0, events: imageEvents }]
      : [];
    store.append([
      ...untags,
      ...imageRequest,
      { kind: 'pull', streamId: pullId, expectedVersion: store.stream(pullId)!.version, events: [{ type: 'ImagePullCompleted', imageId: result.imageId, servedBy: result.servedBy }] },
    ]);
  }

  /**
   * Removes an image and every name it has, unless a container still uses it; then releases
   * the blobs and layers no remaining image refers to. Missing images are fine (idempotent).
   */
  async remove(nameOrId: string): Promise<void> {
    const { store } = this.ctx;
    const image = resolveImage(store, nameOrId);
    if (!image) return;
    await this.releasesUsing(image.context.id);
    const users = store
      .liveStreams('container')
      .map(([id, live]) => [id, stateOf('container', live.snapshot)] as const)
      .filter(([, state]) => imagesOf(state.context).includes(image.context.id))
      .map(([id]) => `container ${id}`);
    // A pod's pause container holds its image's layers from mount to unmount.
    const pods = store
      .liveStreams('sandbox')
      .map(([id, live]) => [id, stateOf('sandbox', live.snapshot)] as const)
      .filter(([, state]) => state.context.infraImage?.id === image.context.id && state.context.infraRootfs !== null)
      .map(([id]) => `pod sandbox ${id} (its infra container)`);
    if (users.length + pods.length > 0) {
      throw failedPrecondition(`image ${image.context.id} is in use by ${[...users, ...pods].join(', ')}`);
    }
    store.append({ kind: 'image', streamId: image.context.id, expectedVersion: store.stream(image.context.id)!.version, events: [{ type: 'ImageRemoved' }] });
    this.usageCache = undefined;
    this.collector.request(`image ${image.context.id} removed`);
    await this.collector.settled();
  }

  /**
   * Containers and pods whose removal is recorded still hold the image's layers until their
   * release (after the Remove* reply) unmounts them; RemoveImage right after waits that out,
   * bounded, rather than refusing an image kubelet no longer sees in use.
   */
  private async releasesUsing(imageId: string): Promise<void> {
    const { store } = this.ctx;
    const releasing = [
      ...store.liveStreams('container').filter(([, live]) => {
        const state = stateOf('container', live.snapshot);
        return state.value === 'removing' && imagesOf(state.context).includes(imageId);
      }),
      ...store.liveStreams('sandbox').filter(([, live]) => {
        const state = stateOf('sandbox', live.snapshot);
        return state.value === 'removing' && state.context.infraImage?.id === imageId;
      }),
    ];
    const bound = AbortSignal.timeout(RELEASE_WAIT_MS);
    await Promise.all(releasing.map(([id, live]) => waitForState(store, live.kind, id, () => false, bound).catch(() => undefined)));
  }

  /** Image config and manifest as stored, for verbose status and container creation. */
  async documents(image: ImageState): Promise<{ config: Record<string, unknown>; manifest: Record<string, unknown> | null }> {
    const config = JSON.parse((await this.ctx.blobs.read(image.context.id)).toString('utf8')) as Record<string, unknown>;
    const manifest = image.context.manifestDigest && (await this.ctx.blobs.has(image.context.manifestDigest))
      ? (JSON.parse((await this.ctx.blobs.read(image.context.manifestDigest)).toString('utf8')) as Record<string, unknown>)
      : null;
    return { config, manifest };
  }

  /** Bytes and inodes of the image store; a tree walk, so cached briefly for kubelet's polling. */
  usage(): Promise<FsUsage> {
    const now = Date.now();
    if (!this.usageCache || now - this.usageCache.at > USAGE_TTL_MS) {
      const value = Promise.all([this.ctx.blobs.usage(), this.ctx.layers.usage()]).then(([b, l]) => ({
        at: nowNs(), bytes: b.bytes + l.bytes, inodes: b.inodes + l.inodes,
      }));
      value.catch(() => (this.usageCache = undefined));
      this.usageCache = { at: now, value };
    }
    return this.usageCache.value;
  }

  get mountpoint(): string {
    return join(this.ctx.config.root, 'layers');
  }
}

/**
 * Start-up: a pull still `pulling` in the log died with the process; it is recorded as failed
 * (kubelet retries PullImage, which reuses whatever layers it stored). Then the layers and
 * blobs that no image owns (stored by such a pull, or left by a removal cut short) are
 * released, each recorded as LeakReclaimed.
 */
export async function settleInterruptedPulls(ctx: Pick<ImagesDeps, 'store' | 'blobs' | 'layers'>): Promise<void> {
  const { store } = ctx;
  for (const [id, live] of store.liveStreams('pull')) {
    store.append({ kind: 'pull', streamId: id, expectedVersion: live.version, events: [{ type: 'ImagePullFailed', message: 'interrupted: crisp stopped during the pull' }] });
  }
  const { chains, blobs } = referencedContent(store);
  for (const chainId of await ctx.layers.list()) {
    if (chains.has(chainId)) continue;
    await ctx.layers.remove(chainId);
    recordLeak(store, 'layer', ctx.layers.path(chainId));
  }
  for (const digest of await ctx.blobs.list()) {
    if (blobs.has(digest)) continue;
    await ctx.blobs.remove(digest);
    recordLeak(store, 'blob', ctx.blobs.path(digest));
  }
}
