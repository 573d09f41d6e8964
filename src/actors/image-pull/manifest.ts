// Manifest formats crisp pulls (OCI image manifest/index, Docker schema 2 manifest/list),
// validated on arrival so that later code can trust their shape.

import { failedPrecondition } from '../../errors.js';
import { isSha256Digest } from './reference.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What the manifest endpoint is asked for, most preferred first. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest];

const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.dockerLayerGzip,
]);

const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.ociConfig, MediaType.dockerConfig]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
  [k: string]: unknown;
}

export type ParsedManifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

function descriptor(v: unknown, where: string, source: string): Descriptor {
  const bad = (why: string) => failedPrecondition(`${source}: ${where}: ${why}`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const d = v as Record<string, unknown>;
  if (typeof d['mediaType'] !== 'string') throw bad('mediaType missing');
  if (typeof d['digest'] !== 'string' || !isSha256Digest(d['digest'])) throw bad(`digest ${JSON.stringify(d['digest'])} is not a sha256 digest`);
  if (typeof d['size'] !== 'number' || !Number.isSafeInteger(d['size']) || d['size'] < 0) throw bad('size missing or invalid');
  return d as unknown as Descriptor;
}

/**
 * Parses manifest bytes given the Content-Type the registry sent. The mediaType inside the
 * document wins when present; without either, the document's shape decides.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, source: string): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw failedPrecondition(`${source}: manifest is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw failedPrecondition(`${source}: manifest is not a JSON object`);
  const header = contentType?.split(';')[0]?.trim();
  const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
  let mediaType = declared ?? header;
  if (mediaType === undefined || mediaType === 'application/json' || mediaType === 'text/plain') {
    mediaType = Array.isArray(doc['manifests']) ? MediaType.ociIndex : MediaType.ociManifest;
  }
  if (mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed || doc['schemaVersion'] === 1) {
    throw failedPrecondition(`${source}: Docker schema 1 manifests are not supported; push the image with a current client`);
  }
  if (doc['schemaVersion'] !== 2) throw failedPrecondition(`${source}: unsupported manifest schemaVersion ${JSON.stringify(doc['schemaVersion'])}`);

  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    if (!Array.isArray(doc['manifests'])) throw failedPrecondition(`${source}: index has no manifests array`);
    const manifests = doc['manifests'].map((m, i) => descriptor(m, `manifests[${i}]`, source));
    return { kind: 'index', index: { ...(doc as object), schemaVersion: 2, mediaType, manifests } as ImageIndex };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest) {
    const config = descriptor(doc['config'], 'config', source);
    if (!CONFIG_MEDIA_TYPES.has(config.mediaType)) {
      throw failedPrecondition(`${source}: config media type ${config.mediaType} is not a container image config (artifacts are not pullable images)`);
    }
    if (!Array.isArray(doc['layers'])) throw failedPrecondition(`${source}: manifest has no layers array`);
    const layers = doc['layers'].map((l, i) => {
      const d = descriptor(l, `layers[${i}]`, source);
      if (!LAYER_MEDIA_TYPES.has(d.mediaType)) {
        throw failedPrecondition(`${source}: layers[${i}] has unsupported media type ${d.mediaType}`);
      }
      return d;
    });
    return { kind: 'manifest', manifest: { ...(doc as object), schemaVersion: 2, mediaType, config, layers } as ImageManifest };
  }
  throw failedPrecondition(`${source}: unsupported manifest media type ${mediaType}`);
}

/** Parses an image config and checks it matches the manifest's layers. */
export function parseImageConfig(body: Buffer, layerCount: number, source: string): ImageConfig {
  let doc: ImageConfig;
  try {
    doc = JSON.parse(body.toString('utf8')) as ImageConfig;
  } catch {
    throw failedPrecondition(`${source}: image config is not valid JSON`);
  }
  const rootfs = doc?.rootfs;
  if (typeof rootfs !== 'object' || rootfs === null || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw failedPrecondition(`${source}: image config has no rootfs of type "layers" with diff_ids`);
  }
  rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string' || !isSha256Digest(d)) throw failedPrecondition(`${source}: rootfs.diff_ids[${i}] is not a sha256 digest`);
  });
  if (rootfs.diff_ids.length !== layerCount) {
    throw failedPrecondition(`${source}: config lists ${rootfs.diff_ids.length} diff_ids but the manifest has ${layerCount} layers`);
  }
  return doc;
}
