import type { PodSandboxStatsRequest__Output } from './proto/gen/runtime/v1/PodSandboxStatsRequest.js';
import type { PodSandboxStatsResponse } from './proto/gen/runtime/v1/PodSandboxStatsResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { StatsDeps } from '../actors/stats/stats-deps.js';
import { containersByPod } from '../actors/stats/stats-deps.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { isListed } from '../actors/sandbox/sandbox-view.js';
import { notFound } from '../errors.js';

export const podSandboxStats = (deps: StatsDeps): UnaryHandler<PodSandboxStatsRequest__Output, PodSandboxStatsResponse> => async (request) => {
  const store = deps.ctx.store;
  const id = resolveStreamId(store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  const state = id ? sandboxState(store, id) : undefined;
  if (!id || !state || !isListed(state)) throw notFound(`pod_sandbox_id: pod sandbox ${request.pod_sandbox_id} not found`);
  return { stats: await deps.collector.podStats(id, state, containersByPod(store).get(id) ?? []) };
};
