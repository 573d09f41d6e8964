import type { StartContainerRequest__Output } from './proto/gen/runtime/v1/StartContainerRequest.js';
import type { StartContainerResponse } from './proto/gen/runtime/v1/StartContainerResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { startAndWait } from '../actors/container/container-commands.js';
import { notFound } from '../errors.js';

export const startContainer = (deps: ContainerDeps): UnaryHandler<StartContainerRequest__Output, StartContainerResponse> =>
  async (request, rpc) => {
    const found = findContainer(deps.ctx.store, request.container_id);
    if (!found) throw notFound(`container_id: container ${request.container_id} not found`);
    await startAndWait(deps, found[0], found[1], rpc.signal);
    return {};
  };
