// Content-addressed blob store: <root>/blobs/sha256/<hex>. A blob is written under
// <root>/blobs/tmp, hashed and counted as its bytes arrive, and becomes visible only once its
// digest and size are verified and its data is on disk (fsync, rename, fsync of the directory):
// a reader that finds a blob by name can trust it, even after a crash.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { diskFullAt, failedPrecondition, invalidArgument, notFound } from '../../errors.js';
import { isSha256Hex, sha256Hex } from './digest.js';
import { diskUsage, type Usage } from './disk-usage.js';
import { fsyncDir, isMissing, readdirOrEmpty } from '../../host/files.js';

export type IngestOptions = {
  /** Called with the size of each chunk as it is written, for progress reporting. */
  onBytes?(n: number): void;
  signal?: AbortSignal;
};

export class BlobStore {
  private readonly blobsDir: string;
  private readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'blobs', 'tmp');
  }

  path(digest: string): string {
    return join(this.blobsDir, sha256Hex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /**
   * Stores the bytes of `source` as blob `digest` and returns its path. A blob that is already
   * present is not read again (the source is closed unread). Too many bytes fail as soon as
   * they arrive; a wrong digest or size fails at the end; either way the temp file is removed.
   */
  async ingest(
    digest: string,
    expectedSize: number | undefined,
    source: AsyncIterable<Uint8Array>,
    opts: IngestOptions = {},
  ): Promise<string> {
    const hex = sha256Hex(digest);
    if (expectedSize !== undefined && !(Number.isSafeInteger(expectedSize) && expectedSize >= 0)) {
      throw invalidArgument(`expectedSize ${expectedSize} for blob ${digest} is not a non-negative integer`);
    }
    const final = join(this.blobsDir, hex);
    const iterator = source[Symbol.asyncIterator]();
    if (await this.has(digest)) {
      await iterator.return?.();
      return final;
    }
    opts.signal?.throwIfAborted();
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.blobsDir, { recursive: true });
    const temp = join(this.tmpDir, `${hex}-${randomBytes(6).toString('hex')}`);
    let file: FileHandle | undefined = await open(temp, 'wx', 0o644);
    try {
      const hash = createHash('sha256');
      let size = 0;
      for (;;) {
        const next = await nextOrAbort(iterator, opts.signal);
        if (next.done) break;
        const chunk = next.value;
        size += chunk.byteLength;
        if (expectedSize !== undefined && size > expectedSize) {
          throw failedPrecondition(
            `blob ${digest}: size mismatch: expected ${expectedSize} bytes, received more (at least ${size})`,
          );
        }
        hash.update(chunk);
        await file.write(chunk);
        opts.onBytes?.(chunk.byteLength);
      }
      if (expectedSize !== undefined && size !== expectedSize) {
        throw failedPrecondition(`blob ${digest}: size mismatch: expected ${expectedSize} bytes, received ${size}`);
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) {
        throw failedPrecondition(`blob digest mismatch: expected ${digest}, actual ${actual} (${size} bytes)`);
      }
      await file.sync();
      await file.close();
      file = undefined;
      await rename(temp, final);
      await fsyncDir(this.blobsDir);
      return final;
    } catch (err) {
      // Not awaited: a source stuck in next() (the abort case) would hold return() forever.
      iterator.return?.().catch(() => undefined);
      await file?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw diskFullAt(err, `blob ${digest} (${temp})`);
    }
  }

  async read(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (err) {
      if (isMissing(err)) throw notFound(`blob ${digest} not found`);
      throw err;
    }
  }

  /** Removes a blob; removing one that is not there is not an error. */
  async remove(digest: string): Promise<void> {
    try {
      await unlink(this.path(digest));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  /** Digests of all stored blobs. */
  async list(): Promise<string[]> {
    const names = await readdirOrEmpty(this.blobsDir);
    return names.filter(isSha256Hex).map((hex) => `sha256:${hex}`).sort();
  }

  /**
   * Removes leftover temp files of interrupted ingests and returns how many there were. Meant
   * for start-up, before any ingest runs: it would also remove the files of ingests in flight.
   */
  async sweepTemp(): Promise<number> {
    const names = await readdirOrEmpty(this.tmpDir);
    for (const name of names) await rm(join(this.tmpDir, name), { recursive: true, force: true });
    return names.length;
  }

  /** Disk space (allocated blocks) and inodes taken by stored blobs. */
  usage(): Promise<Usage> {
    return diskUsage(this.blobsDir);
  }
}

function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T>> {
  if (!signal) return iterator.next();
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    iterator.next().then(
      (r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
