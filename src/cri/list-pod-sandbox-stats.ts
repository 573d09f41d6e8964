import type { ListPodSandboxStatsRequest__Output } from './proto/gen/runtime/v1/ListPodSandboxStatsRequest.js';
import type { ListPodSandboxStatsResponse } from './proto/gen/runtime/v1/ListPodSandboxStatsResponse.js';
import type { PodSandboxStatsFilter__Output } from './proto/gen/runtime/v1/PodSandboxStatsFilter.js';
import type { PodSandboxStats } from './proto/gen/runtime/v1/PodSandboxStats.js';
import type { UnaryHandler } from './wrap.js';
import { containersByPod, forgetGone, mapYielding, statsSandboxes, type StatsDeps } from '../actors/stats/stats-deps.js';

export async function collectPodSandboxStats(deps: StatsDeps, filter: PodSandboxStatsFilter__Output | null): Promise<PodSandboxStats[]> {
  forgetGone(deps);
  const byPod = containersByPod(deps.ctx.store);
  return mapYielding(statsSandboxes(deps.ctx.store, filter), ([id, state]) => deps.collector.podStats(id, state, byPod.get(id) ?? []));
}

export const listPodSandboxStats = (deps: StatsDeps): UnaryHandler<ListPodSandboxStatsRequest__Output, ListPodSandboxStatsResponse> =>
  async (request) => ({ stats: await collectPodSandboxStats(deps, request.filter) });
