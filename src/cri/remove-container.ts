import type { RemoveContainerRequest__Output } from './proto/gen/runtime/v1/RemoveContainerRequest.js';
import type { RemoveContainerResponse } from './proto/gen/runtime/v1/RemoveContainerResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { requestRemoval } from '../actors/container/container-commands.js';

/**
 * Stops a running container first; idempotent, and OK for a container that does not exist.
 * Answers once the removal is recorded; the release finishes after the reply.
 */
export const removeContainer = (deps: ContainerDeps): UnaryHandler<RemoveContainerRequest__Output, RemoveContainerResponse> =>
  async (request, rpc) => {
    const found = findContainer(deps.ctx.store, request.container_id);
    if (found) await requestRemoval(deps, found[0], rpc.signal);
    return {};
  };
