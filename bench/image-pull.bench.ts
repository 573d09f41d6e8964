// Cold pulls of a ≥100 MB, 5-layer image of incompressible data from a local docker-registry:
// crisp's ImagePuller (download + verify + unpack, and download + verify alone) against
// `skopeo copy … dir:` (download + verify), alternated in one run so both see the same
// machine state. Prints medians, ratios and crisp's peak RSS during its pulls.
//
//   node --import tsx bench/image-pull.bench.ts        (BENCH_ROUNDS=5, BENCH_LAYER_MB=21)

import { createCipheriv } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { BlobStore } from '../src/actors/storage/blob-store.js';
import { LayerStore } from '../src/actors/storage/layer-store.js';
import { ImagePuller } from '../src/actors/image-pull/puller.js';
import { RegistryClient } from '../src/actors/image-pull/registry-client.js';
import { parseImageConfig, parseManifest } from '../src/actors/image-pull/manifest.js';
import { emptyRegistriesConfig, parseRegistriesConf } from '../src/actors/image-pull/registries-conf.js';
import { createTar } from '../test/helpers/tar.js';
import { buildImage, buildLayer, pushImage } from '../test/helpers/oci-images.js';
import { startRegistry } from '../test/helpers/registry.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const LAYER_MB = Number(process.env['BENCH_LAYER_MB'] ?? 21);
const LAYERS = 5;

/** Deterministic, incompressible bytes: AES-256-CTR keystream over zeros. */
function noise(bytes: number, seed: number): Buffer {
  const key = Buffer.alloc(32, seed);
  const iv = Buffer.alloc(16, seed ^ 0x5a);
  return createCipheriv('aes-256-ctr', key, iv).update(Buffer.alloc(bytes));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Builds the image and pushes it; returns only sizes so the built buffers can be collected. */
async function buildAndPush(registryUrl: string): Promise<{ total: number; configSize: number }> {
  const t0 = performance.now();
  const layers = Array.from({ length: LAYERS }, (_, i) =>
    buildLayer(
      createTar([
        { path: `layer${i}`, type: 'dir', mode: 0o755, mtime: 1_700_000_000 },
        { path: `layer${i}/blob.bin`, type: 'file', mode: 0o644, mtime: 1_700_000_000, content: noise(LAYER_MB * 1024 * 1024, i + 1) },
      ]),
      'gzip',
    ),
  );
  const image = buildImage({ layers });
  const total = layers.reduce((n, l) => n + l.size, 0);
  console.log(`built ${LAYERS} layers, ${(total / 1e6).toFixed(1)} MB compressed, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await pushImage(registryUrl, 'bench/big', 'latest', image);
  return { total, configSize: image.config.size };
}

async function pushOnly(registryUrl: string): Promise<void> {
  console.log(JSON.stringify(await buildAndPush(registryUrl)));
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const cleanup: string[] = [];
  try {
    // Built and pushed by a child process, so the image's buffers never inflate this one's RSS.
    const child = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--push-to', registry.url], { maxBuffer: 1 << 20 });
    process.stdout.write(child.stdout.split('\n').filter((l) => !l.startsWith('{')).join('\n'));
    const { total, configSize } = JSON.parse(child.stdout.split('\n').find((l) => l.startsWith('{'))!) as { total: number; configSize: number };
    const ref = `${registry.host}/bench/big:latest`;
    const registries = { ...emptyRegistriesConfig(), ...parseRegistriesConf(`[[registry]]\nprefix = "${registry.host}"\ninsecure = true\n`, 'bench') };

    const crispFull: number[] = [];
    const crispBlobs: number[] = [];
    const skopeo: number[] = [];
    let peakRss = 0;
    const roundPeaks: number[] = [];
    const baseRss = process.memoryUsage().rss;

    for (let round = 0; round < ROUNDS; round++) {
      // crisp, full pull: download, verify, unpack.
      {
        const root = await mkdtemp(join(tmpdir(), 'crisp-test-bench-pull-'));
        cleanup.push(root);
        const layerStore = new LayerStore(root);
        const puller = new ImagePuller({ blobs: new BlobStore(root), layers: layerStore, registries });
        let roundPeak = 0;
        const sampler = setInterval(() => (roundPeak = Math.max(roundPeak, process.memoryUsage().rss)), 5);
        const start = performance.now();
        const r = await puller.pull(ref);
        crispFull.push(performance.now() - start);
        clearInterval(sampler);
        roundPeaks.push(roundPeak);
        peakRss = Math.max(peakRss, roundPeak);
        if (r.size !== total + configSize) throw new Error(`pulled ${r.size} bytes, expected ${total + configSize}`);
        await layerStore.close(); // its unpack threads; a daemon keeps one store for good
        await rm(root, { recursive: true, force: true });
      }
      // crisp, blobs only: what skopeo does (download + digest check into a store), same code paths.
      {
        const root = await mkdtemp(join(tmpdir(), 'crisp-test-bench-blobs-'));
        cleanup.push(root);
        const blobs = new BlobStore(root);
        const session = new RegistryClient().session({ host: registry.host, repository: 'bench/big', insecure: true }, { kind: 'anonymous' });
        const start = performance.now();
        const m = await session.getManifest('latest');
        const parsed = parseManifest(m.body, m.contentType, ref);
        if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
        const { config, layers: ls } = parsed.manifest;
        const cfg = await session.getBlob(config.digest);
        await blobs.ingest(config.digest, config.size, cfg.body);
        parseImageConfig(await blobs.read(config.digest), ls.length, ref);
        let next = 0;
        await Promise.all(
          Array.from({ length: 3 }, async () => {
            while (next < ls.length) {
              const d = ls[next++]!;
              const b = await session.getBlob(d.digest);
              await blobs.ingest(d.digest, d.size, b.body);
            }
          }),
        );
        crispBlobs.push(performance.now() - start);
        await rm(root, { recursive: true, force: true });
      }
      // skopeo copy to a dir: layout.
      {
        const dir = await mkdtemp(join(tmpdir(), 'crisp-test-bench-skopeo-'));
        cleanup.push(dir);
        const start = performance.now();
        await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `dir:${join(dir, 'img')}`]);
        skopeo.push(performance.now() - start);
        await rm(dir, { recursive: true, force: true });
      }
      console.log(
         `round ${round + 1}: crisp pull ${crispFull.at(-1)!.toFixed(0)} ms (peak RSS ${(roundPeaks.at(-1)! / 1048576).toFixed(0)} MiB), crisp blobs ${crispBlobs.at(-1)!.toFixed(0)} ms, skopeo ${skopeo.at(-1)!.toFixed(0)} ms`,
      );
    }
    const mFull = median(crispFull);
    const mBlobs = median(crispBlobs);
    const mSkopeo = median(skopeo);
    const mbps = (ms: number) => ((total / 1e6) / (ms / 1000)).toFixed(0);
    console.log(`\nimage: ${(total / 1e6).toFixed(1)} MB in ${LAYERS} layers; ${ROUNDS} alternated cold rounds; medians:`);
    console.log(`  crisp pull (download+verify+unpack): ${mFull.toFixed(0)} ms  (${mbps(mFull)} MB/s)`);
    console.log(`  crisp blobs (download+verify):       ${mBlobs.toFixed(0)} ms  (${mbps(mBlobs)} MB/s)`);
    console.log(`  skopeo copy to dir: (download+verify): ${mSkopeo.toFixed(0)} ms  (${mbps(mSkopeo)} MB/s)`);
    console.log(`  ratio crisp blobs / skopeo: ${(mBlobs / mSkopeo).toFixed(2)}   ratio crisp pull / skopeo: ${(mFull / mSkopeo).toFixed(2)}`);
    console.log(
      `  crisp peak RSS: first pull ${(roundPeaks[0]! / 1048576).toFixed(0)} MiB, over all rounds ${(peakRss / 1048576).toFixed(0)} MiB (before the first pull: ${(baseRss / 1048576).toFixed(0)} MiB)`,
    );
  } finally {
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
    await registry.stop();
  }
}

const pushTo = process.argv.indexOf('--push-to');
if (pushTo !== -1) await pushOnly(process.argv[pushTo + 1]!);
else await main();
