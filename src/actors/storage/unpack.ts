// Decompresses a layer blob, hashes the uncompressed stream (the layer's diff id) and extracts
// it, all in one pass. Runs inside the unpack worker (see unpack-worker.ts).
//
// zstd: Node 20's zlib has none. We spawn Debian's `zstd -d` rather than use a JS decoder
// (fzstd): native speed on a second core, streaming with back-pressure through a pipe, and
// one process per layer costs a few milliseconds against seconds of decoding in JS.

import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import { start } from '../../host/run.js';
import { LayerExtractor, type ExtractorOptions } from './layer-extractor.js';
import { TarParser } from './tar-reader.js';

type Compression = 'gzip' | 'zstd' | 'none';

/** `maxExpansion`: the tar may be at most this many times the blob's size (0: no bound), above UNPACK_FLOOR. */
export type UnpackJob = ExtractorOptions & { blobPath: string; diffDir: string; maxExpansion?: number };

/** Any layer may unpack to this much, whatever its compressed size. */
const UNPACK_FLOOR = 64 * 1024 * 1024;
export type UnpackOutcome = { diffId: string; size: number; inodes: number };

const READ_CHUNK = 1 << 20;

/** What the blob's first bytes say it is; media types lie often enough that we do not trust them. */
function sniffCompression(blobPath: string): Compression {
  const fd = openSync(blobPath, 'r');
  try {
    const magic = Buffer.alloc(4);
    const n = readSync(fd, magic, 0, 4, 0);
    if (n >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
    if (n === 4 && magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    closeSync(fd);
  }
}

export async function unpackLayer(job: UnpackJob): Promise<UnpackOutcome> {
  const compression = sniffCompression(job.blobPath);
  const hash = createHash('sha256');
  const extractor = new LayerExtractor(job.diffDir, job);
  const parser = new TarParser(extractor);
  const source = decompressed(job.blobPath, compression);
  const packed = statSync(job.blobPath).size;
  const limit = job.maxExpansion ? Math.max(UNPACK_FLOOR, packed * job.maxExpansion) : Infinity;
  let unpacked = 0;
  try {
    for await (const chunk of source.stream as AsyncIterable<Buffer>) {
      unpacked += chunk.length;
      if (unpacked > limit) {
        throw failedPrecondition(`layer blob ${job.blobPath} unpacks to more than ${limit} bytes, over ${job.maxExpansion} times its ${packed} compressed bytes (max_layer_expansion): refused as a decompression bomb`);
      }
      hash.update(chunk);
      parser.write(chunk);
    }
    await source.done();
    parser.end();
    const stats = extractor.finish();
    return { diffId: `sha256:${hash.digest('hex')}`, ...stats };
  } catch (err) {
    extractor.abort();
    source.kill();
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw invalidArgument(`layer blob ${job.blobPath} is not valid gzip: ${(err as Error).message}`);
    }
    throw err;
  }
}

type Source = { stream: Readable; done(): Promise<void>; kill(): void };

function decompressed(blobPath: string, compression: Compression): Source {
  const file = createReadStream(blobPath, { highWaterMark: READ_CHUNK });
  if (compression === 'none') return { stream: file, done: async () => undefined, kill: () => file.destroy() };
  if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    const stream = pipeline(file, gunzip, () => undefined);
    return {
      stream,
      done: async () => undefined,
      kill: () => stream.destroy(),
    };
  }
  file.destroy();
  const { child, exited } = start('zstd', ['-d', '-c', '-q', '--', blobPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return {
    stream: child.stdout!,
    done: async () => {
      const status = await exited;
      if (status !== 0) throw invalidArgument(`zstd could not decompress layer blob ${blobPath} (exit ${status}): ${stderr.trim()}`);
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
