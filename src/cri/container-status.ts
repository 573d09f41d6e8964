import type { ContainerStatusRequest__Output } from './proto/gen/runtime/v1/ContainerStatusRequest.js';
import type { ContainerStatusResponse } from './proto/gen/runtime/v1/ContainerStatusResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer, toCriStatus, verboseInfo } from '../actors/container/container-view.js';
import { notFound } from '../errors.js';

export const containerStatus = (deps: ContainerDeps): UnaryHandler<ContainerStatusRequest__Output, ContainerStatusResponse> =>
  async (request) => {
    const found = findContainer(deps.ctx.store, request.container_id);
    // A container whose removal is recorded is gone for kubelet, while its release finishes.
    if (!found || found[1].value === 'removing') throw notFound(`container_id: container ${request.container_id} not found`);
    const [id, state] = found;
    return { status: toCriStatus(id, state), info: request.verbose ? await verboseInfo(id, state) : {} };
  };
