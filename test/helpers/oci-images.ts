// Test images, built deterministically in code (layers from tar entries, then config and
// manifest) and pushed to a test registry with our own client for the push side of the
// distribution API (monolithic blob upload, manifest PUT). The fixture catalog at the end is
// what the pull tests and the container tests use.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { createTar, type TarEntry } from './tar.js';
import { readFileSync } from 'node:fs';
import { BUSYBOX_BINARY, busyboxRootfsEntries, FIXTURE_MTIME } from './busybox-rootfs.js';
import { MediaType } from '../../src/actors/image-pull/manifest.js';
import { hostPlatform } from '../../src/actors/image-pull/platform.js';

export type Compression = 'gzip' | 'zstd' | 'none';
export type ManifestFormat = 'oci' | 'docker';

export interface BuiltBlob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export interface BuiltLayer extends BuiltBlob {
  /** Digest of the uncompressed tar. */
  diffId: string;
  compression: Compression;
}

export interface BuiltImage {
  kind: 'image';
  format: ManifestFormat;
  layers: BuiltLayer[];
  config: BuiltBlob;
  configJson: Record<string, unknown>;
  manifest: BuiltBlob;
  platform: { os: string; architecture: string; variant?: string };
}

export interface BuiltIndex {
  kind: 'index';
  format: ManifestFormat;
  manifest: BuiltBlob;
  images: BuiltImage[];
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function blob(data: Buffer, mediaType: string): BuiltBlob {
  return { digest: sha256(data), size: data.length, mediaType, data };
}

export function zstdCompress(data: Buffer): Buffer {
  // Debian's zstd binary: Node 20 has no zstd in zlib.
  return execFileSync('zstd', ['-q', '-c', '-3', '--no-check'], { input: data, maxBuffer: 1 << 30 });
}

function layerMediaType(c: Compression, format: ManifestFormat): string {
  if (format === 'docker') {
    if (c !== 'gzip') throw new Error(`Docker schema 2 layers are gzip only, not ${c}`);
    return MediaType.dockerLayerGzip;
  }
  return c === 'gzip' ? MediaType.ociLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}

/** A layer from tar entries (or a ready tar). Same input, same bytes, same digests. */
export function buildLayer(content: TarEntry[] | Buffer, compression: Compression = 'gzip', format: ManifestFormat = 'oci'): BuiltLayer {
  const tar = Buffer.isBuffer(content) ? content : createTar(content);
  const data = compression === 'gzip' ? gzipSync(tar, { level: 6 }) : compression === 'zstd' ? zstdCompress(tar) : tar;
  return { ...blob(data, layerMediaType(compression, format)), diffId: sha256(tar), compression };
}

export interface ImageSpec {
  layers: BuiltLayer[];
  format?: ManifestFormat;
  platform?: { os: string; architecture: string; variant?: string };
  /** The image config's `config` object: User, Env, Cmd, Entrypoint, WorkingDir, Labels... */
  config?: Record<string, unknown>;
  annotations?: Record<string, string>;
}

export const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

export function buildImage(spec: ImageSpec): BuiltImage {
  const format = spec.format ?? 'oci';
  const platform = spec.platform ?? hostPlatform();
  for (const l of spec.layers) {
    const expected = layerMediaType(l.compression, format);
    if (l.mediaType !== expected) throw new Error(`layer ${l.digest} has media type ${l.mediaType}, a ${format} image needs ${expected}`);
  }
  const created = new Date(FIXTURE_MTIME * 1000).toISOString();
  const configJson: Record<string, unknown> = {
    created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: DEFAULT_ENV, Cmd: ['/bin/sh'], ...spec.config },
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
    history: spec.layers.map((_, i) => ({ created, created_by: `crisp test fixture layer ${i}` })),
  };
  const config = blob(Buffer.from(JSON.stringify(configJson)), format === 'oci' ? MediaType.ociConfig : MediaType.dockerConfig);
  const manifestJson = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.ociManifest : MediaType.dockerManifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: spec.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const manifest = blob(Buffer.from(JSON.stringify(manifestJson)), manifestJson.mediaType);
  return { kind: 'image', format, layers: spec.layers, config, configJson, manifest, platform };
}

export function buildIndex(images: BuiltImage[], format: ManifestFormat = 'oci'): BuiltIndex {
  const mediaType = format === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList;
  const json = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((img) => ({
      mediaType: img.manifest.mediaType,
      digest: img.manifest.digest,
      size: img.manifest.size,
      platform: img.platform,
    })),
  };
  return { kind: 'index', format, manifest: blob(Buffer.from(JSON.stringify(json)), mediaType), images };
}

// ---------------------------------------------------------------------------------------------
// Pushing

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  await res.body?.cancel().catch(() => undefined);
}

/** Uploads one blob in a single PUT unless the registry already has it. */
export async function pushBlob(registryUrl: string, repo: string, b: BuiltBlob): Promise<void> {
  const head = await fetch(`${registryUrl}/v2/${repo}/blobs/${b.digest}`, { method: 'HEAD' });
  await head.body?.cancel().catch(() => undefined);
  if (head.status === 200) return;
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(start, [202], `start upload of ${b.digest} to ${repo}`);
  const location = start.headers.get('location');
  if (location === null) throw new Error(`upload of ${b.digest}: no Location header`);
  const url = new URL(location, registryUrl);
  url.searchParams.set('digest', b.digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
    body: b.data as Uint8Array<ArrayBuffer>,
  });
  await expectStatus(put, [201], `upload of ${b.digest} to ${repo}`);
}

async function putManifest(registryUrl: string, repo: string, reference: string, m: BuiltBlob): Promise<void> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': m.mediaType },
    body: m.data as Uint8Array<ArrayBuffer>,
  });
  await expectStatus(res, [201], `manifest ${repo}:${reference}`);
  const digest = res.headers.get('docker-content-digest');
  if (digest !== null && digest !== m.digest) throw new Error(`registry stored ${repo}:${reference} as ${digest}, expected ${m.digest}`);
}

/** Pushes an image or index (children first) and tags it; returns the top manifest digest. */
export async function pushImage(registryUrl: string, repo: string, tag: string | undefined, image: BuiltImage | BuiltIndex): Promise<string> {
  const images = image.kind === 'index' ? image.images : [image];
  for (const img of images) {
    await Promise.all([...img.layers, img.config].map((b) => pushBlob(registryUrl, repo, b)));
    if (image.kind === 'index' || tag === undefined) await putManifest(registryUrl, repo, img.manifest.digest, img.manifest);
  }
  await putManifest(registryUrl, repo, tag ?? image.manifest.digest, image.manifest);
  return image.manifest.digest;
}

// ---------------------------------------------------------------------------------------------
// The fixture catalog

const M = FIXTURE_MTIME;
const f = (path: string, content: string, extra: Partial<TarEntry> = {}): TarEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: M, content, ...extra });
const d = (path: string, extra: Partial<TarEntry> = {}): TarEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: M, ...extra });

/** Layer 2 of the multi-layer image: everything layer 3 then deletes, replaces or links. */
export function multiLayerAdds(): TarEntry[] {
  return [
    d('data'),
    f('data/keep.txt', 'keep\n'),
    f('data/remove-me.txt', 'to be whited out\n'),
    d('data/subdir'),
    f('data/subdir/inner.txt', 'inner\n'),
    d('data/opaque'),
    f('data/opaque/old.txt', 'hidden by an opaque dir\n'),
    d('data/becomes-file'),
    f('data/becomes-file/child.txt', 'goes away with its dir\n'),
    f('data/owned', 'owned by 1234:5678\n', { uid: 1234, gid: 5678, mode: 0o640 }),
    { path: 'data/link-to-keep', type: 'symlink', linkname: 'keep.txt', mode: 0o777, uid: 0, gid: 0, mtime: M },
    { path: 'data/abs-link', type: 'symlink', linkname: '/etc/passwd', mode: 0o777, uid: 0, gid: 0, mtime: M },
    { path: 'data/hard-keep', type: 'hardlink', linkname: 'data/keep.txt', mode: 0o644, uid: 0, gid: 0, mtime: M },
  ];
}

/** Layer 3: whiteouts of a file and a directory, an opaque directory, a dir replaced by a file. */
export function multiLayerChanges(): TarEntry[] {
  return [
    d('data'),
    f('data/.wh.remove-me.txt', ''),
    f('data/.wh.subdir', ''),
    d('data/opaque'),
    f('data/opaque/.wh..wh..opq', ''),
    f('data/opaque/new.txt', 'the only file left in opaque\n'),
    f('data/becomes-file', 'now a file\n'),
    f('data/hl-a', 'two names, one inode\n'),
    { path: 'data/hl-b', type: 'hardlink', linkname: 'data/hl-a', mode: 0o644, uid: 0, gid: 0, mtime: M },
  ];
}

/** What the merged root filesystem of the multi-layer image must and must not contain. */
export const MULTI_LAYER_EXPECT = {
  present: ['data/keep.txt', 'data/link-to-keep', 'data/abs-link', 'data/hard-keep', 'data/owned', 'data/opaque/new.txt', 'data/becomes-file', 'data/hl-a', 'data/hl-b', 'bin/busybox'],
  absent: ['data/remove-me.txt', 'data/subdir', 'data/subdir/inner.txt', 'data/opaque/old.txt', 'data/becomes-file/child.txt'],
  owned: { path: 'data/owned', uid: 1234, gid: 5678, mode: 0o640 },
};

export interface Fixture {
  repo: string;
  tag: string;
  image: BuiltImage | BuiltIndex;
}

let cache: Record<string, Fixture> | undefined;

/** Every fixture image, built once per process (building busybox layers takes ~0.3 s). */
export function fixtures() {
  if (cache) return cache as ReturnType<typeof buildFixtures>;
  const built = buildFixtures();
  cache = built;
  return built;
}

function buildFixtures() {
  const host = hostPlatform();
  const base = buildLayer(busyboxRootfsEntries(), 'gzip', 'oci');
  const baseDocker = buildLayer(busyboxRootfsEntries(), 'gzip', 'docker');
  const marker = (arch: string, format: ManifestFormat) => buildLayer([d('etc'), f('etc/arch', `${arch}\n`)], 'gzip', format);
  const archImage = (architecture: string, variant: string | undefined, format: ManifestFormat) =>
    buildImage({ layers: [format === 'oci' ? base : baseDocker, marker(architecture, format)], format, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const other = host.architecture === 'arm64' ? { a: 'amd64', v: undefined } : { a: 'arm64', v: 'v8' };
  const pair = (format: ManifestFormat) => {
    const images = [archImage(host.architecture, host.variant, format), archImage(other.a, other.v, format)];
    // amd64 first in the index whatever the host, as real indexes list it.
    images.sort((x, y) => (x.platform.architecture === 'amd64' ? -1 : y.platform.architecture === 'amd64' ? 1 : 0));
    return buildIndex(images, format);
  };
  return {
    busybox: { repo: 'crisp-test/busybox', tag: 'latest', image: buildImage({ layers: [base] }) },
    multiLayer: {
      repo: 'crisp-test/layers',
      tag: 'v1',
      image: buildImage({
        format: 'docker',
        layers: [baseDocker, buildLayer(multiLayerAdds(), 'gzip', 'docker'), buildLayer(multiLayerChanges(), 'gzip', 'docker')],
      }),
    },
    dockerList: { repo: 'crisp-test/multiarch-docker', tag: 'latest', image: pair('docker') },
    ociIndex: { repo: 'crisp-test/multiarch-oci', tag: 'latest', image: pair('oci') },
    userNumeric: { repo: 'crisp-test/user-numeric', tag: 'latest', image: buildImage({ layers: [base], config: { User: '1002' } }) },
    userNamed: { repo: 'crisp-test/user-named', tag: 'latest', image: buildImage({ layers: [base], config: { User: 'appuser', WorkingDir: '/home/appuser' } }) },
    zstd: {
      repo: 'crisp-test/zstd',
      tag: 'latest',
      image: buildImage({ layers: [base, buildLayer([d('zstd'), f('zstd/hello.txt', 'compressed with zstd\n')], 'zstd')] }),
    },
    uncompressed: {
      repo: 'crisp-test/uncompressed',
      tag: 'latest',
      image: buildImage({ layers: [buildLayer([d('plain'), f('plain/file.txt', 'an uncompressed layer\n')], 'none')] }),
    },
    // Its own layer, so serving that layer corrupted affects no other fixture.
    corrupt: {
      repo: 'crisp-test/corrupt',
      tag: 'latest',
      image: buildImage({ layers: [buildLayer([d('victim'), f('victim/data.bin', 'x'.repeat(64 * 1024))], 'gzip')] }),
    },
  } satisfies Record<string, Fixture>;
}

/** Pushes every fixture (or the named ones) to the registry at `registryUrl`. */
export async function pushFixtures(registryUrl: string, names?: (keyof ReturnType<typeof buildFixtures>)[]): Promise<void> {
  const all = fixtures();
  for (const [name, fx] of Object.entries(all)) {
    if (names && !names.includes(name as keyof typeof all)) continue;
    await pushImage(registryUrl, fx.repo, fx.tag, fx.image);
  }
}

/** The platform image of an index fixture for an architecture. */
export function imageFor(index: BuiltIndex, architecture: string): BuiltImage {
  const img = index.images.find((i) => i.platform.architecture === architecture);
  if (!img) throw new Error(`index has no ${architecture} image`);
  return img;
}

/**
 * A pause stand-in: busybox's sleep and nothing else, not even the directories runc mounts on
 * (the real pause image has none either).
 */
export function pauseLikeImage(entrypoint: string[]): BuiltImage {
  const entry = { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 };
  const layer = buildLayer([
    { path: 'bin', type: 'dir', ...entry },
    { path: 'bin/busybox', type: 'file', ...entry, content: readFileSync(BUSYBOX_BINARY) },
    { path: 'bin/sleep', type: 'symlink', linkname: 'busybox', ...entry, mode: 0o777 },
  ]);
  return buildImage({ layers: [layer], config: { Entrypoint: entrypoint, Cmd: null, User: '' } });
}
