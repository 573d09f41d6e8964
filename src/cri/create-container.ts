import type { CreateContainerRequest__Output } from './proto/gen/runtime/v1/CreateContainerRequest.js';
import type { CreateContainerResponse } from './proto/gen/runtime/v1/CreateContainerResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { validateCreateContainer } from '../machines/container-config.js';
import { createContainer as create } from '../actors/container/container-commands.js';
import { planResources } from '../actors/spec/resources.js';

export const createContainer = (deps: ContainerDeps): UnaryHandler<CreateContainerRequest__Output, CreateContainerResponse> =>
  async (request, rpc) => {
    const { sandboxId: requested, config, imageName } = validateCreateContainer(request);
    // Limits the node cannot honour (CPUs it lacks, a limit below the floor) are the caller's
    // mistake, found here rather than as a failed runtime step.
    planResources(config.linux?.resources ?? null, await deps.hostFacts());
    const id = await create(deps, { requested, config, imageName }, rpc.signal);
    return { container_id: id };
  };
