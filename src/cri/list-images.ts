import type { ListImagesRequest__Output } from './proto/gen/runtime/v1/ListImagesRequest.js';
import type { ListImagesResponse } from './proto/gen/runtime/v1/ListImagesResponse.js';
import type { ImageFilter__Output } from './proto/gen/runtime/v1/ImageFilter.js';
import type { Image } from './proto/gen/runtime/v1/Image.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import type { Images } from '../actors/image-pull/service.js';
import { liveImages, resolveImage } from '../actors/image-pull/image-index.js';
import { toCriImage } from './image-message.js';
import { perState } from './list-encoding.js';

const listedImage = perState((_id: string, image: Parameters<typeof toCriImage>[0]) => toCriImage(image));

/** The images a filter selects: all of them, or the one its image spec names. */
export function selectImages(ctx: CriContext, filter: ImageFilter__Output | null): Image[] {
  const wanted = filter?.image?.image ?? '';
  if (wanted === '') return liveImages(ctx.store).map((image) => listedImage(image.context.id, image));
  const one = resolveImage(ctx.store, wanted);
  return one ? [listedImage(one.context.id, one)] : [];
}

export const listImages = (ctx: CriContext, _images: Images): UnaryHandler<ListImagesRequest__Output, ListImagesResponse> => (request) => ({
  images: selectImages(ctx, request.filter),
});
