// The ImageService handlers over the image slice (src/actors/image-pull/service.ts), and its
// start-up recovery.
import type { Service, CriContext } from './context.js';
import { settleInterruptedPulls } from '../actors/image-pull/service.js';
import { pullImage } from './pull-image.js';
import { listImages } from './list-images.js';
import { imageStatus } from './image-status.js';
import { removeImage } from './remove-image.js';
import { imageFsInfo } from './image-fs-info.js';
import { streamImages } from './stream-images.js';
import { WritableLayersUsage } from '../actors/storage/writable-layers-usage.js';

export const imageService = (ctx: CriContext): Service => {
  const images = ctx.images;
  return {
    name: 'images',
    image: {
      PullImage: pullImage(images),
      ListImages: listImages(ctx, images),
      ImageStatus: imageStatus(ctx, images),
      RemoveImage: removeImage(images),
      ImageFsInfo: imageFsInfo(images, new WritableLayersUsage(ctx.config.root, ctx.writableLayers)),
      StreamImages: streamImages(ctx, images),
    },
    async recover() {
      // Partial downloads and unpacks of a pull that died with the process are garbage.
      await ctx.blobs.sweepTemp();
      await ctx.layers.sweepPartial();
      await settleInterruptedPulls(ctx);
      images.collector.start();
    },
  };
};
