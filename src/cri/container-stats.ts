import type { ContainerStatsRequest__Output } from './proto/gen/runtime/v1/ContainerStatsRequest.js';
import type { ContainerStatsResponse } from './proto/gen/runtime/v1/ContainerStatsResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { StatsDeps } from '../actors/stats/stats-deps.js';
import { criState, findContainer } from '../actors/container/container-view.js';
import { notFound } from '../errors.js';

export const containerStats = (deps: StatsDeps): UnaryHandler<ContainerStatsRequest__Output, ContainerStatsResponse> => async (request) => {
  const found = findContainer(deps.ctx.store, request.container_id);
  if (!found || !criState(found[1].value)) throw notFound(`container_id: container ${request.container_id} not found`);
  return { stats: await deps.collector.containerStats(found[0], found[1]) };
};
