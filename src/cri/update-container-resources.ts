import type { UpdateContainerResourcesRequest__Output } from './proto/gen/runtime/v1/UpdateContainerResourcesRequest.js';
import type { UpdateContainerResourcesResponse } from './proto/gen/runtime/v1/UpdateContainerResourcesResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { updateResources } from '../actors/container/container-commands.js';
import { planResources } from '../actors/spec/resources.js';
import { invalidArgument, notFound } from '../errors.js';

/** Records the limits as requested and answers once the runtime has applied them to the live cgroup. */
export const updateContainerResources = (deps: ContainerDeps): UnaryHandler<UpdateContainerResourcesRequest__Output, UpdateContainerResourcesResponse> =>
  async (request, rpc) => {
    if (!request.linux) throw invalidArgument('linux: required (crisp runs Linux containers only)');
    const found = findContainer(deps.ctx.store, request.container_id);
    if (!found) throw notFound(`container_id: container ${request.container_id} not found`);
    // Limits the node cannot honour are the caller's mistake: refused here, never recorded.
    planResources(request.linux, await deps.hostFacts());
    await updateResources(deps, found[0], found[1], request.linux, rpc.signal);
    return {};
  };
