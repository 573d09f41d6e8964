import type { ReopenContainerLogRequest__Output } from './proto/gen/runtime/v1/ReopenContainerLogRequest.js';
import type { ReopenContainerLogResponse } from './proto/gen/runtime/v1/ReopenContainerLogResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { failedPrecondition, notFound } from '../errors.js';

/** After kubelet rotates the log: conmon reopens it, and the new file exists when this returns. */
export const reopenContainerLog = (deps: ContainerDeps): UnaryHandler<ReopenContainerLogRequest__Output, ReopenContainerLogResponse> =>
  async (request) => {
    const found = findContainer(deps.ctx.store, request.container_id);
    if (!found) throw notFound(`container_id: container ${request.container_id} not found`);
    if (found[1].value !== 'running') throw failedPrecondition(`container ${found[0]} is ${found[1].value}, not running; its log cannot be reopened`);
    await deps.runtime.reopenLog(found[0]);
    return {};
  };
