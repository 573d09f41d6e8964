import type { ListContainersRequest__Output } from './proto/gen/runtime/v1/ListContainersRequest.js';
import type { ListContainersResponse } from './proto/gen/runtime/v1/ListContainersResponse.js';
import type { ContainerFilter__Output } from './proto/gen/runtime/v1/ContainerFilter.js';
import type { Container } from './proto/gen/runtime/v1/Container.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { liveContainers, matchesFilter, toCriContainer } from '../actors/container/container-view.js';
import { perState } from './list-encoding.js';

const listedContainer = perState(toCriContainer);

export function selectContainers(deps: ContainerDeps, filter: ContainerFilter__Output | null): Container[] {
  return liveContainers(deps.ctx.store)
    .filter(([id, state]) => matchesFilter(id, state, filter))
    .sort(([, a], [, b]) => (BigInt(a.context.createdAt) < BigInt(b.context.createdAt) ? -1 : 1))
    .map(([id, state]) => listedContainer(id, state));
}

export const listContainers = (deps: ContainerDeps): UnaryHandler<ListContainersRequest__Output, ListContainersResponse> =>
  (request) => ({ containers: selectContainers(deps, request.filter) });
