// Unpacked layers, one per chain id: <root>/layers/<chainIdHex>/diff (+ meta.json). A layer is
// unpacked into <root>/layers/tmp/ and renamed into place only once complete and verified, so
// a crash mid-unpack leaves nothing visible and sweepPartial() can clear what it left.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { diskUsage, type Usage } from './disk-usage.js';
import { sha256Hex, isSha256Hex } from './digest.js';
import { isMissing, readdirOrEmpty } from '../../host/files.js';
import { removeShortLink } from './overlay.js';
import type { UnpackOutcome } from './unpack.js';
import { UnpackPool } from './unpack-pool.js';

/** OCI chain ids: the first is the first diff id, each next one hashes "<previous> <diff id>". */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  diffIds.forEach((diffId, i) => {
    sha256Hex(diffId, `diffIds[${i}]`);
    const prev = out[i - 1];
    out.push(prev === undefined ? diffId : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  });
  return out;
}

const LAYER_MEDIA_TYPE =
  /^(application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?|application\/vnd\.docker\.image\.rootfs\.(foreign\.)?diff\.tar(\.gzip)?)$/;

export type UnpackRequest = {
  blobPath: string;
  mediaType: string;
  chainId: string;
  expectedDiffId?: string;
  signal?: AbortSignal;
};

/**
 * How many times its compressed size a layer may unpack to (above UNPACK_FLOOR). Deflate cannot
 * expand more than ~1032 times, so no gzip layer is ever refused; zstd can expand without bound,
 * which is what a decompression bomb uses.
 */
const DEFAULT_MAX_EXPANSION = 1100;

type LayerMeta = { chainId: string; diffId: string; size: number; inodes: number; mediaType: string };

export class LayerStore {
  private readonly logger: Logger;
  private readonly layersDir: string;
  private readonly tmpDir: string;
  private readonly pool = new UnpackPool();
  /** Where overlay mounts keep their short links to this store's diff dirs. */
  readonly linkDir: string;

  private readonly maxExpansion: number;

  constructor(
    readonly root: string,
    opts: { logger?: Logger; maxExpansion?: number } = {},
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.maxExpansion = opts.maxExpansion ?? DEFAULT_MAX_EXPANSION;
    this.layersDir = join(root, 'layers');
    this.tmpDir = join(this.layersDir, 'tmp');
    this.linkDir = join(this.layersDir, 'l');
  }

  path(chainId: string): string {
    return join(this.layersDir, sha256Hex(chainId, 'chainId'), 'diff');
  }

  async has(chainId: string): Promise<boolean> {
    try {
      return (await stat(this.path(chainId))).isDirectory();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /**
   * Unpacks a layer blob once per chain id. `size` is the bytes of regular-file content,
   * `inodes` the files, dirs, links and nodes created. An already unpacked layer returns what
   * was recorded when it was unpacked.
   */
  async unpack(o: UnpackRequest): Promise<UnpackOutcome> {
    const hex = sha256Hex(o.chainId, 'chainId');
    if (o.expectedDiffId !== undefined) sha256Hex(o.expectedDiffId, 'expectedDiffId');
    if (!LAYER_MEDIA_TYPE.test(o.mediaType)) {
      throw invalidArgument(`mediaType ${JSON.stringify(o.mediaType)} of layer ${o.chainId} is not a layer media type`);
    }
    o.signal?.throwIfAborted();
    const existing = await this.readMeta(hex);
    if (existing) return this.checked(existing, o.expectedDiffId);
    try {
      if (!(await stat(o.blobPath)).isFile()) throw invalidArgument(`blobPath ${o.blobPath} is not a file`);
    } catch (err) {
      if (isMissing(err)) throw invalidArgument(`blobPath ${o.blobPath} does not exist`);
      throw err;
    }

    await mkdir(this.tmpDir, { recursive: true });
    const work = join(this.tmpDir, `${hex}-${randomBytes(6).toString('hex')}`);
    const started = performance.now();
    try {
      await mkdir(join(work, 'diff'), { recursive: true, mode: 0o755 });
      const outcome = await this.pool.run(
        {
          blobPath: o.blobPath,
          diffDir: join(work, 'diff'),
          whiteoutPrototype: join(work, 'whiteout'),
          uid: process.getuid?.() ?? 0,
          gid: process.getgid?.() ?? 0,
          umask: process.umask(),
          maxExpansion: this.maxExpansion,
        },
        o.signal,
      );
      if (o.expectedDiffId !== undefined && outcome.diffId !== o.expectedDiffId) {
        throw failedPrecondition(
          `layer ${o.chainId}: diff id mismatch: expected ${o.expectedDiffId}, actual ${outcome.diffId} (blob ${o.blobPath})`,
        );
      }
      const meta: LayerMeta = { chainId: o.chainId, ...outcome, mediaType: o.mediaType };
      await writeFile(join(work, 'meta.json'), JSON.stringify(meta));
      try {
        await rename(work, join(this.layersDir, hex));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another unpack of the same chain id finished first: its result stands.
        await rm(work, { recursive: true, force: true });
        const winner = await this.readMeta(hex);
        if (!winner) throw err;
        return this.checked(winner, o.expectedDiffId);
      }
      // No fsync: on ext4 a directory fsync commits the journal and with it every byte just
      // written, which would double the unpack time. A crashed process cannot expose a partial
      // layer (the rename is atomic); surviving a power loss intact is not promised.
      this.logger.debug(
        { chainId: o.chainId, diffId: outcome.diffId, files: outcome.inodes, ms: Math.round(performance.now() - started) },
        'layer unpacked',
      );
      return outcome;
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      throw err;
    }
  }

  /** Removes an unpacked layer (and its overlay short link); removing a missing one is fine. */
  async remove(chainId: string): Promise<void> {
    const hex = sha256Hex(chainId, 'chainId');
    await removeShortLink(this.linkDir, this.path(chainId));
    await mkdir(this.tmpDir, { recursive: true });
    // Renamed away first, so no half-deleted layer is ever visible under its name.
    const doomed = join(this.tmpDir, `${hex}-removing-${randomBytes(6).toString('hex')}`);
    try {
      await rename(join(this.layersDir, hex), doomed);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Removes what interrupted unpacks and removals left in the temp area and returns their
   * names. For start-up, before any unpack runs.
   */
  async sweepPartial(): Promise<string[]> {
    const names = await readdirOrEmpty(this.tmpDir);
    for (const name of names) await rm(join(this.tmpDir, name), { recursive: true, force: true });
    if (names.length > 0) this.logger.info({ partial: names }, 'removed partial layers');
    return names;
  }

  /** Chain ids of the unpacked layers. */
  async list(): Promise<string[]> {
    const names = await readdirOrEmpty(this.layersDir);
    return names.filter(isSha256Hex).map((hex) => `sha256:${hex}`).sort();
  }

  /** Disk space (allocated blocks) and inodes of all unpacked layers. */
  async usage(): Promise<Usage> {
    const total: Usage = { bytes: 0, inodes: 0 };
    for (const chainId of await this.list()) {
      const u = await diskUsage(join(this.layersDir, chainId.slice(7)));
      total.bytes += u.bytes;
      total.inodes += u.inodes;
    }
    return total;
  }

  /** Stops the unpack threads (idle ones never keep the process alive anyway). */
  close(): Promise<void> {
    return this.pool.close();
  }

  private async readMeta(hex: string): Promise<LayerMeta | undefined> {
    try {
      return JSON.parse(await readFile(join(this.layersDir, hex, 'meta.json'), 'utf8')) as LayerMeta;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  private checked(meta: LayerMeta, expectedDiffId: string | undefined): UnpackOutcome {
    if (expectedDiffId !== undefined && meta.diffId !== expectedDiffId) {
      throw failedPrecondition(
        `layer ${meta.chainId} is already unpacked with diff id ${meta.diffId}, not the expected ${expectedDiffId}`,
      );
    }
    return { diffId: meta.diffId, size: meta.size, inodes: meta.inodes };
  }
}
