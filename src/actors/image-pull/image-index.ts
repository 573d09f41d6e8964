// Finds images the way CRI clients name them: by id (with or without "sha256:"), by a unique
// id prefix, by tag (normalised: "busybox" is docker.io/library/busybox:latest), or by a
// digest reference (name@sha256:…). Reads live machine state only, so it never waits.
import type { EventStore } from '../../events/store.js';
import { stateOf, type EntityState } from '../../machines/index.js';
import { REFERENCE_MAX, parseReference } from './reference.js';
import { clip, invalidArgument } from '../../errors.js';

export type ImageState = EntityState<'image'>;

const FULL_ID = /^(sha256:)?([0-9a-f]{64})$/;
const ID_PREFIX = /^(sha256:)?([0-9a-f]{6,63})$/;

export function liveImages(store: EventStore): ImageState[] {
  return store
    .liveStreams('image')
    .map(([, live]) => stateOf('image', live.snapshot))
    .filter((state) => state.value === 'present');
}

/** The image a CRI image string names, or undefined. An ambiguous id prefix is an error. */
export function resolveImage(store: EventStore, nameOrId: string): ImageState | undefined {
  const text = nameOrId.trim();
  if (text === '') return undefined;
  // No image has a longer name; parsing a huge one would only cost time.
  if (text.length > REFERENCE_MAX) throw invalidArgument(`image ${JSON.stringify(clip(text, 100))} is longer than ${REFERENCE_MAX} characters`);
  const images = liveImages(store);
  const full = FULL_ID.exec(text);
  if (full) {
    const found = images.find((image) => image.context.id === `sha256:${full[2]}`);
    if (found) return found;
  }
  const byName = findByReference(images, text);
  if (byName) return byName;
  const prefix = ID_PREFIX.exec(text);
  if (prefix && !full) {
    const matches = images.filter((image) => image.context.id.startsWith(`sha256:${prefix[2]}`));
    if (matches.length > 1) throw invalidArgument(`image id prefix ${JSON.stringify(text)} matches ${matches.length} images`);
    return matches[0];
  }
  return undefined;
}

function findByReference(images: ImageState[], text: string): ImageState | undefined {
  let ref;
  try {
    ref = parseReference(text);
  } catch {
    return undefined;
  }
  if (ref.digest) {
    const wanted = `${ref.name}@${ref.digest}`;
    const byDigest = images.find((image) => image.context.repoDigests.includes(wanted) || image.context.manifestDigest === ref.digest && image.context.repoDigests.some((d) => d.startsWith(`${ref.name}@`)));
    if (byDigest || !ref.tag) return byDigest;
  }
  const tag = ref.digest && ref.tag ? `${ref.name}:${ref.tag}` : ref.toString();
  return images.find((image) => image.context.repoTags.includes(tag));
}
