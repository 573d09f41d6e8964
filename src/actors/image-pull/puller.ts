// Pulls an image into the blob and layer stores: resolves where to pull from (registries.conf),
// fetches and verifies the manifest (choosing this node's platform from an index), then the
// config and the layers, concurrently up to a limit, skipping whatever is already stored.
// The stores' ingest and unpack are atomic, so a failed pull leaves no half-made blob or layer;
// blobs and layers it completed stay as content (reported through onLayerStored) for the core
// to keep or collect. Nothing here records an image: the result is for the core to do so.

import { asCrispError, CrispError, deadlineExceeded, failedPrecondition, type ErrorKind } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { resolvePullEndpoints, type PullEndpoint, type RegistriesConfig } from './registries-conf.js';
import type { BlobStore } from '../storage/blob-store.js';
import { chainIds, type LayerStore } from '../storage/layer-store.js';
import { credentialsFingerprint, credentialsFromAuthConfig, type AuthConfig, type Credentials } from './auth.js';
import { parseImageConfig, parseManifest, type Descriptor, type ImageConfig, type ImageManifest } from './manifest.js';
import { choosePlatformManifest, formatPlatform, hostPlatform, type WantedPlatform } from './platform.js';
import { parseReference, type ImageReference } from './reference.js';
import { backoffDelay, RegistryClient, TransientRegistryError, type RegistrySession, type RetryPolicy } from './registry-client.js';
import { crashPoint } from '../../crash-points.js';
import { mapLimit, sleep } from '../../async.js';

export interface ImagePullerOptions {
  blobs: BlobStore;
  layers: LayerStore;
  registries: RegistriesConfig;
  logger?: Logger;
  /** Layers downloaded (and unpacked) at once, per pull. Default 3. */
  maxConcurrentDownloads?: number;
  /** A pull waiting this long for a byte from the registry is cancelled. Default 300000; 0 = off. */
  progressTimeoutMs?: number;
  /**
   * Bytes per second a pull must average over each progress window (progressTimeoutMs) while
   * it waits on the network; slower, it is cancelled. 0 turns the floor off.
   */
  minBytesPerSecond?: number;
  /** Platform to pick from multi-platform images. Default: linux + this node's architecture. */
  platform?: WantedPlatform;
  /** Retries of transient registry failures (per request, and per blob download). */
  retry?: Partial<RetryPolicy>;
}

export interface PullOptions {
  auth?: AuthConfig;
  signal?: AbortSignal;
  /**
   * Called once per layer of the image as soon as it is in the layer store (`reused` when it
   * already was). A caller joining a pull in progress first hears the layers stored so far.
   */
  onLayerStored?(layer: StoredLayer): void;
}

interface PulledLayer {
  /** Digest of the blob as distributed (compressed). */
  digest: string;
  mediaType: string;
  size: number;
  /** Digest of the uncompressed tar. */
  diffId: string;
  chainId: string;
}

export interface StoredLayer extends PulledLayer {
  index: number;
  reused: boolean;
}

export interface PullResult {
  /** The reference as pulled, normalised: `docker.io/library/busybox:latest`. */
  reference: string;
  /** The config digest: what `crictl images` shows as IMAGE ID. */
  imageId: string;
  /** Digest of the image manifest for this platform. */
  manifestDigest: string;
  /** Digest of the index/manifest list the tag pointed at, when it was multi-platform. */
  indexDigest?: string;
  repoTag?: string;
  /** `name@<digest of what the reference resolved to>` (the index for a multi-platform image). */
  repoDigest: string;
  manifestMediaType: string;
  manifest: ImageManifest;
  config: ImageConfig;
  layers: PulledLayer[];
  /** Bytes of config and layers as distributed. */
  size: number;
  /** The registry host that served it (a mirror or the registry itself). */
  servedBy: string;
}

const MAX_CONFIG_BYTES = 64 * 1024 * 1024;
/** The kernel's OVL_MAX_STACK. */
const MAX_IMAGE_LAYERS = 500;

interface SharedPull {
  promise: Promise<PullResult>;
  controller: AbortController;
  waiters: number;
  stored: StoredLayer[];
  listeners: Set<(l: StoredLayer) => void>;
}

/**
 * Cancels a pull that is waiting on the network without receiving anything for too long, or
 * whose bytes trickle in slower than a floor over a whole window (a registry sending one byte a
 * second never stalls, yet never ends either). Time spent with no request in flight (unpacking,
 * disk) counts as neither.
 */
export class ProgressWatchdog {
  private inFlight = 0;
  private last = Date.now();
  /** Bytes received since `windowStart`, the start of the current rate window. */
  private windowBytes = 0;
  private windowStart = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    onStall: (why: string) => void,
    private readonly minBytesPerSecond = 0,
  ) {
    if (timeoutMs <= 0) return;
    this.timer = setInterval(
      () => {
        if (this.inFlight === 0) return;
        const now = Date.now();
        const idle = now - this.last;
        if (idle >= this.timeoutMs) return onStall(`made no progress for ${Math.round(idle / 1000)}s (limit ${this.timeoutMs}ms)`);
        const span = now - this.windowStart;
        if (span < this.timeoutMs) return;
        const rate = (this.windowBytes * 1000) / span;
        if (rate < this.minBytesPerSecond) {
          return onStall(`received ${this.windowBytes} bytes in ${Math.round(span / 1000)}s, under the floor of ${this.minBytesPerSecond} bytes/s (pull_min_rate)`);
        }
        this.windowBytes = 0;
        this.windowStart = now;
      },
      Math.max(Math.min(this.timeoutMs / 4, 1000), 10),
    );
    this.timer.unref();
  }

  /** Marks a network operation as started; call the returned function when it ends. */
  begin(): () => void {
    if (this.inFlight++ === 0) this.restart();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.last = Date.now();
    };
  }

  progress(bytes = 0): void {
    this.last = Date.now();
    this.windowBytes += bytes;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private restart(): void {
    this.last = this.windowStart = Date.now();
    this.windowBytes = 0;
  }
}

/**
 * Waits for `promise`, or rejects once `signal` aborts and whatever `onAbort` returns has
 * settled (so a caller that cancels the pull hears back only when it has cleaned up).
 */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => Promise<unknown>): Promise<T> {
  if (signal === undefined) return promise;
  const abort = (reject: (e: unknown) => void) => {
    void onAbort().then(
      () => reject(signal.reason),
      () => reject(signal.reason),
    );
  };
  if (signal.aborted) return new Promise<T>((_, reject) => abort(reject));
  return new Promise<T>((resolve, reject) => {
    const onSignal = () => abort(reject);
    signal.addEventListener('abort', onSignal, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onSignal), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onSignal), reject(e)),
    );
  });
}

export class ImagePuller {
  private readonly blobs: BlobStore;
  private readonly layers: LayerStore;
  private registries: RegistriesConfig;
  private readonly logger: Logger;
  private readonly maxConcurrentDownloads: number;
  private readonly progressTimeoutMs: number;
  private readonly minBytesPerSecond: number;
  private readonly platform: WantedPlatform;
  private readonly client: RegistryClient;
  private readonly inflight = new Map<string, SharedPull>();

  constructor(opts: ImagePullerOptions) {
    this.blobs = opts.blobs;
    this.layers = opts.layers;
    this.registries = opts.registries;
    this.logger = opts.logger ?? silentLogger;
    this.maxConcurrentDownloads = opts.maxConcurrentDownloads ?? 3;
    this.progressTimeoutMs = opts.progressTimeoutMs ?? 300_000;
    this.minBytesPerSecond = opts.minBytesPerSecond ?? 0;
    this.platform = opts.platform ?? hostPlatform();
    if (!Number.isInteger(this.maxConcurrentDownloads) || this.maxConcurrentDownloads < 1) {
      throw failedPrecondition(`maxConcurrentDownloads must be a positive integer, got ${opts.maxConcurrentDownloads}`);
    }
    if (!Number.isFinite(this.progressTimeoutMs) || this.progressTimeoutMs < 0) {
      throw failedPrecondition(`progressTimeoutMs must be >= 0, got ${opts.progressTimeoutMs}`);
    }
    this.client = new RegistryClient({ logger: this.logger, ...(opts.retry ? { retry: opts.retry } : {}) });
  }

  /**
   * Pulls `ref`. Concurrent pulls of the same reference with the same credentials share one
   * pull; each caller's signal only detaches that caller, and the pull stops when none is left.
   */
  pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
    let parsed: ImageReference;
    let credentials: Credentials;
    try {
      parsed = parseReference(ref);
      credentials = credentialsFromAuthConfig(opts.auth);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = `${parsed.toString()} ${formatPlatform(this.platform)} ${credentialsFingerprint(credentials)}`;
    let shared = this.inflight.get(key);
    if (shared === undefined) {
      const controller = new AbortController();
      const s: SharedPull = { controller, waiters: 0, stored: [], listeners: new Set(), promise: undefined as never };
      s.promise = this.pullOnce(parsed, credentials, controller, (l) => {
        s.stored.push(l);
        for (const fn of s.listeners) fn(l);
      }).finally(() => {
        if (this.inflight.get(key) === s) this.inflight.delete(key);
      });
      // Every caller may have detached by the time it fails: that is no unhandled rejection.
      s.promise.catch(() => undefined);
      this.inflight.set(key, s);
      shared = s;
    } else {
      this.logger.debug({ ref: parsed.toString() }, 'joining a pull in progress');
    }
    const s = shared;
    s.waiters++;
    const listener = opts.onLayerStored;
    if (listener !== undefined) {
      for (const l of s.stored) listener(l);
      s.listeners.add(listener);
    }
    const detach = async () => {
      if (listener !== undefined) s.listeners.delete(listener);
      if (--s.waiters > 0) return;
      // A caller arriving after this starts afresh rather than joining a pull being cancelled.
      if (this.inflight.get(key) === s) this.inflight.delete(key);
      s.controller.abort(opts.signal?.reason);
      await s.promise.catch(() => undefined);
    };
    return raceAbort(s.promise, opts.signal, detach).finally(() => {
      if (listener !== undefined) s.listeners.delete(listener);
    });
  }

  /** Takes a re-read registries.conf for the pulls that start from now on. */
  setRegistries(registries: RegistriesConfig): void {
    this.registries = registries;
  }

  /** References to try for `ref`: short names go through unqualified-search-registries when set. */
  private candidates(ref: ImageReference): ImageReference[] {
    const search = this.registries.unqualifiedSearchRegistries;
    if (!ref.shortName || search.length === 0) return [ref];
    const suffix = (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
    return search.map((registry) => parseReference(`${registry}/${ref.familiarName}${suffix}`));
  }

  private async pullOnce(
    ref: ImageReference,
    credentials: Credentials,
    controller: AbortController,
    onLayerStored: (l: StoredLayer) => void,
  ): Promise<PullResult> {
    const started = Date.now();
    const signal = controller.signal;
    const watchdog = new ProgressWatchdog(this.progressTimeoutMs, (why) => {
      controller.abort(deadlineExceeded(`pull of ${ref.toString()} ${why}: cancelled`));
    }, this.minBytesPerSecond);
    const log = this.logger.child({ ref: ref.toString() });
    log.info('pulling image');
    try {
      const failures: CrispError[] = [];
      for (const candidate of this.candidates(ref)) {
        for (const endpoint of resolvePullEndpoints(this.registries, candidate)) {
          const session = this.client.session(endpoint, credentials);
          let resolved: ResolvedManifest;
          try {
            resolved = await this.resolveManifest(session, endpoint, watchdog, signal);
          } catch (err) {
            if (signal.aborted) throw signal.reason;
            const e = asCrispError(err);
            failures.push(e);
            log.warn({ endpoint: endpoint.host, mirror: endpoint.mirror, error: e.message }, 'could not get the manifest here');
            continue;
          }
          const result = await this.fetchImage(candidate, session, endpoint, resolved, watchdog, signal, onLayerStored);
          log.info({ imageId: result.imageId, servedBy: endpoint.host, bytes: result.size, ms: Date.now() - started }, 'image pulled');
          return result;
        }
      }
      throw combineFailures(ref, failures);
    } catch (err) {
      const e = signal.aborted ? signal.reason : err;
      log.warn({ error: e instanceof Error ? e.message : String(e), ms: Date.now() - started }, 'pull failed');
      throw e;
    } finally {
      watchdog.stop();
    }
  }

  private async resolveManifest(session: RegistrySession, endpoint: PullEndpoint, watchdog: ProgressWatchdog, signal: AbortSignal): Promise<ResolvedManifest> {
    const ref = endpoint.reference;
    const source = `${ref.toString()}`;
    const end = watchdog.begin();
    try {
      const top = await session.getManifest(ref.manifestReference, signal);
      const parsedTop = parseManifest(top.body, top.contentType, source);
      if (parsedTop.kind === 'manifest') {
        return { top, platformManifest: top, manifest: parsedTop.manifest };
      }
      const chosen = choosePlatformManifest(parsedTop.index.manifests, this.platform, source);
      const m = await session.getManifest(chosen.digest, signal);
      const parsed = parseManifest(m.body, m.contentType ?? chosen.mediaType, `${source} (${chosen.digest})`);
      if (parsed.kind !== 'manifest') throw failedPrecondition(`${source}: the index entry for ${formatPlatform(this.platform)} is itself an index`);
      return { top, platformManifest: m, manifest: parsed.manifest, indexMediaType: parsedTop.index.mediaType };
    } finally {
      end();
    }
  }

  /** Downloads one blob into the blob store, retrying transient failures mid-stream. */
  private async download(session: RegistrySession, desc: Descriptor, watchdog: ProgressWatchdog, signal: AbortSignal): Promise<void> {
    const policy = this.client.retry;
    for (let attempt = 0; ; attempt++) {
      const end = watchdog.begin();
      try {
        const blob = await session.getBlob(desc.digest, signal);
        await this.blobs.ingest(desc.digest, desc.size, blob.body, { signal, onBytes: (n) => watchdog.progress(n) });
        return;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const transient = err instanceof TransientRegistryError || (err instanceof Error && err.cause instanceof TransientRegistryError);
        if (!transient || attempt + 1 >= policy.attempts) throw err;
        this.logger.debug({ digest: desc.digest, attempt: attempt + 1, error: (err as Error).message }, 'blob download interrupted, retrying');
      } finally {
        end();
      }
      await sleep(backoffDelay(policy, attempt), signal);
    }
  }

  private async storeBytes(digest: string, body: Buffer): Promise<void> {
    await this.blobs.ingest(digest, body.length, (async function* () {
      yield body;
    })());
  }

  private async fetchImage(
    ref: ImageReference,
    session: RegistrySession,
    endpoint: PullEndpoint,
    resolved: ResolvedManifest,
    watchdog: ProgressWatchdog,
    signal: AbortSignal,
    onLayerStored: (l: StoredLayer) => void,
  ): Promise<PullResult> {
    const { manifest } = resolved;
    const source = endpoint.reference.toString();

    // overlayfs stacks at most MAX_IMAGE_LAYERS lower layers: such an image could never run.
    if (manifest.layers.length > MAX_IMAGE_LAYERS) {
      throw failedPrecondition(`${source}: the manifest lists ${manifest.layers.length} layers; overlayfs stacks at most ${MAX_IMAGE_LAYERS}`);
    }
    // The config is read into memory whole: refuse absurd sizes before downloading anything.
    if (manifest.config.size > MAX_CONFIG_BYTES) {
      throw failedPrecondition(`${source}: image config of ${manifest.config.size} bytes exceeds the ${MAX_CONFIG_BYTES}-byte limit`);
    }
    if (!(await this.blobs.has(manifest.config.digest))) await this.download(session, manifest.config, watchdog, signal);
    const configBytes = await this.blobs.read(manifest.config.digest);
    const config = parseImageConfig(configBytes, manifest.layers.length, source);
    const diffIds = config.rootfs.diff_ids;
    const chains = chainIds(diffIds);

    const layers: PulledLayer[] = manifest.layers.map((d, i) => ({
      digest: d.digest,
      mediaType: d.mediaType,
      size: d.size,
      diffId: diffIds[i]!,
      chainId: chains[i]!,
    }));

    await mapLimit(layers, this.maxConcurrentDownloads, async (layer, index) => {
      signal.throwIfAborted();
      if (await this.layers.has(layer.chainId)) {
        onLayerStored({ ...layer, index, reused: true });
        return;
      }
      if (!(await this.blobs.has(layer.digest))) await this.download(session, manifest.layers[index]!, watchdog, signal);
      crashPoint('pull:layer-downloaded');
      signal.throwIfAborted();
      await this.layers.unpack({
        blobPath: this.blobs.path(layer.digest),
        mediaType: layer.mediaType,
        chainId: layer.chainId,
        expectedDiffId: layer.diffId,
        signal,
      });
      crashPoint('pull:layer-unpacked');
      this.logger.debug({ ref: ref.toString(), chainId: layer.chainId, index }, 'layer stored');
      onLayerStored({ ...layer, index, reused: false });
    });

    // The manifests are kept as blobs too, so the image can be described later without the registry.
    await this.storeBytes(resolved.platformManifest.digest, resolved.platformManifest.body);
    if (resolved.top !== resolved.platformManifest) await this.storeBytes(resolved.top.digest, resolved.top.body);

    const multiPlatform = resolved.top !== resolved.platformManifest;
    return {
      reference: ref.toString(),
      imageId: manifest.config.digest,
      manifestDigest: resolved.platformManifest.digest,
      ...(multiPlatform ? { indexDigest: resolved.top.digest } : {}),
      ...(ref.repoTag !== undefined ? { repoTag: ref.repoTag } : {}),
      repoDigest: ref.repoDigest(resolved.top.digest),
      manifestMediaType: manifest.mediaType,
      manifest,
      config,
      layers,
      size: manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
      servedBy: endpoint.host,
    };
  }
}

interface ResolvedManifest {
  top: { digest: string; body: Buffer };
  platformManifest: { digest: string; body: Buffer };
  manifest: ImageManifest;
  indexMediaType?: string;
}

/** One error for a pull that failed everywhere: the last place's kind, every place's reason. */
function combineFailures(ref: ImageReference, failures: CrispError[]): CrispError {
  const last = failures[failures.length - 1];
  if (last === undefined) return failedPrecondition(`pull of ${ref.toString()}: nowhere to pull from`);
  if (failures.length === 1) return last;
  // Not-found only if it was not found anywhere; any other failure is the more useful kind.
  const other = failures.find((f) => f.kind !== 'NotFound');
  const kind: ErrorKind = other === undefined ? 'NotFound' : other.kind;
  return new CrispError(kind, `pull of ${ref.toString()} failed at every source: ${failures.map((f) => f.message).join('; ')}`);
}
