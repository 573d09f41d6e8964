import type { Image } from './proto/gen/runtime/v1/Image.js';
import type { ImageState } from '../actors/image-pull/image-index.js';

/** The image's USER as CRI wants it: a numeric uid, or a user name for the kubelet to check. */
function imageUser(user: string): Pick<Image, 'uid' | 'username'> {
  const name = user.split(':')[0] ?? '';
  if (name === '') return { uid: null, username: '' };
  return /^\d+$/.test(name) ? { uid: { value: name }, username: '' } : { uid: null, username: name };
}

/** One CRI Image from an image's state: what ListImages, ImageStatus and StreamImages return. */
export function toCriImage(image: ImageState): Image {
  const c = image.context;
  return {
    id: c.id,
    repo_tags: c.repoTags,
    repo_digests: c.repoDigests,
    size: c.size,
    ...imageUser(c.user),
    spec: { image: c.id, annotations: {} },
    pinned: c.pinned,
  };
}
