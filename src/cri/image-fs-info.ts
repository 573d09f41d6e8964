import type { ImageFsInfoRequest__Output } from './proto/gen/runtime/v1/ImageFsInfoRequest.js';
import type { ImageFsInfoResponse } from './proto/gen/runtime/v1/ImageFsInfoResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { Images } from '../actors/image-pull/service.js';
import type { WritableLayersUsage } from '../actors/storage/writable-layers-usage.js';

/**
 * Bytes and inodes the image store (blobs and unpacked layers) uses, for kubelet's image GC, and
 * those of the containers' writable layers, for its eviction manager.
 */
export const imageFsInfo = (images: Images, writable: WritableLayersUsage): UnaryHandler<ImageFsInfoRequest__Output, ImageFsInfoResponse> => async () => {
  const [usage, layers] = await Promise.all([images.usage(), writable.usage()]);
  return {
    image_filesystems: [{
      timestamp: String(usage.at),
      fs_id: { mountpoint: images.mountpoint },
      used_bytes: { value: usage.bytes },
      inodes_used: { value: usage.inodes },
    }],
    container_filesystems: [{
      timestamp: String(layers.at),
      fs_id: { mountpoint: writable.mountpoint },
      used_bytes: { value: layers.bytes },
      inodes_used: { value: layers.inodes },
    }],
  };
};
