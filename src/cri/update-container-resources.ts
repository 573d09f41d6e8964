import type { UpdateContainerResourcesRequest__Output } from './proto/gen/runtime/v1/UpdateContainerResourcesRequest.js';
import type { UpdateContainerResourcesResponse } from './proto/gen/runtime/v1/UpdateContainerResourcesResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import type { LinuxResources } from '../actors/monitor/types.js';
import { findContainer } from '../actors/container/container-view.js';
import { planResources } from '../actors/spec/resources.js';
import { accepts } from '../machines/index.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';

/** Applies the limits to the live cgroup through the runtime, then records them. */
export const updateContainerResources = (deps: ContainerDeps): UnaryHandler<UpdateContainerResourcesRequest__Output, UpdateContainerResourcesResponse> =>
  async (request, rpc) => {
    if (!request.linux) throw invalidArgument('linux: required (crisp runs Linux containers only)');
    const found = findContainer(deps.ctx.store, request.container_id);
    if (!found) throw notFound(`container_id: container ${request.container_id} not found`);
    const [id] = found;
    const event = { type: 'ContainerResourcesUpdated', resources: request.linux } as const;
    const before = deps.ctx.store.stream(id)!;
    if (!accepts(before.snapshot, event)) throw failedPrecondition(`container ${id} is ${found[1].value}; only a created or running container can be updated`);
    const plan = planResources(request.linux, await deps.hostFacts());
    for (const warning of plan.warnings) rpc.log.warn({ container: id }, warning);
    await deps.runtime.updateResources(id, plan.resources as LinuxResources);
    const now = deps.ctx.store.stream(id);
    if (now && accepts(now.snapshot, event)) {
      deps.ctx.store.append({ kind: 'container', streamId: id, expectedVersion: now.version, events: [event] });
    }
    return {};
  };
