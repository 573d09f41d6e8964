import type { StreamContainersRequest__Output } from './proto/gen/runtime/v1/StreamContainersRequest.js';
import type { StreamContainersResponse } from './proto/gen/runtime/v1/StreamContainersResponse.js';
import type { StreamHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { selectContainers } from './list-containers.js';
import { sendInPages } from './paging.js';

// ListContainers in pages, so a node with thousands of containers never builds one huge message.

export const streamContainers = (deps: ContainerDeps): StreamHandler<StreamContainersRequest__Output, StreamContainersResponse> =>
  async (request, _rpc, send) => {
    const containers = selectContainers(deps, request.filter);
    await sendInPages(containers, (page) => ({ containers: page }), send);
  };
