import type { ListContainerStatsRequest__Output } from './proto/gen/runtime/v1/ListContainerStatsRequest.js';
import type { ListContainerStatsResponse } from './proto/gen/runtime/v1/ListContainerStatsResponse.js';
import type { ContainerStatsFilter__Output } from './proto/gen/runtime/v1/ContainerStatsFilter.js';
import type { ContainerStats } from './proto/gen/runtime/v1/ContainerStats.js';
import type { UnaryHandler } from './wrap.js';
import { forgetGone, mapYielding, statsContainers, type StatsDeps } from '../actors/stats/stats-deps.js';

export async function collectContainerStats(deps: StatsDeps, filter: ContainerStatsFilter__Output | null): Promise<ContainerStats[]> {
  forgetGone(deps);
  return mapYielding(statsContainers(deps.ctx.store, filter), ([id, state]) => deps.collector.containerStats(id, state));
}

export const listContainerStats = (deps: StatsDeps): UnaryHandler<ListContainerStatsRequest__Output, ListContainerStatsResponse> =>
  async (request) => ({ stats: await collectContainerStats(deps, request.filter) });
