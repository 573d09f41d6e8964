import type { StopContainerRequest__Output } from './proto/gen/runtime/v1/StopContainerRequest.js';
import type { StopContainerResponse } from './proto/gen/runtime/v1/StopContainerResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { stopAndWait } from '../actors/container/container-commands.js';
import { invalidArgument } from '../errors.js';

/** Idempotent, and OK for a container that does not exist (kubelet's contract). */
export const stopContainer = (deps: ContainerDeps): UnaryHandler<StopContainerRequest__Output, StopContainerResponse> =>
  async (request, rpc) => {
    const timeout = Number(request.timeout || '0');
    if (!Number.isSafeInteger(timeout)) throw invalidArgument(`timeout: ${request.timeout} is not a number of seconds`);
    const found = findContainer(deps.ctx.store, request.container_id);
    if (found) await stopAndWait(deps, found[0], Math.max(0, timeout), rpc.signal);
    return {};
  };
