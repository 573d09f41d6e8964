import type { UpdatePodSandboxResourcesRequest__Output } from './proto/gen/runtime/v1/UpdatePodSandboxResourcesRequest.js';
import type { UpdatePodSandboxResourcesResponse } from './proto/gen/runtime/v1/UpdatePodSandboxResourcesResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { failedPrecondition, notFound } from '../errors.js';
import { planResources } from '../actors/spec/resources.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { appendIfAccepted } from '../events/append-if-accepted.js';

/**
 * Records the pod's overhead and resources. crisp keeps no pod-level cgroup of its own (the pod
 * cgroup is kubelet's cgroup_parent, which kubelet sizes), so recording is all there is to do;
 * containers read the recorded values.
 */
export const updatePodSandboxResources = (ctx: CriContext):
  UnaryHandler<UpdatePodSandboxResourcesRequest__Output, UpdatePodSandboxResourcesResponse> => async (request) => {
  // Containers read these values: limits the node cannot honour are refused here, not at their create.
  const host = await ctx.hostFacts();
  if (request.overhead) planResources(request.overhead, host, { field: 'overhead', noMemoryFloor: true });
  if (request.resources) planResources(request.resources, host, { field: 'resources', noMemoryFloor: true });
  const id = resolveStreamId(ctx.store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  const state = id ? sandboxState(ctx.store, id) : undefined;
  if (!id || !state) throw notFound(`pod sandbox ${request.pod_sandbox_id} not found`);
  const recorded = appendIfAccepted(ctx.store, 'sandbox', id, {
    type: 'SandboxResourcesUpdated',
    overhead: request.overhead ?? state.context.overhead,
    resources: request.resources ?? state.context.resources,
  });
  if (!recorded) throw failedPrecondition(`pod sandbox ${id} is ${state.value}; resources can be updated only while it is ready or not ready`);
  return {};
};
