import type { PodSandboxStatusRequest__Output } from './proto/gen/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from './proto/gen/runtime/v1/PodSandboxStatusResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { notFound } from '../errors.js';
import { nowNs } from '../events/clock.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { toPodSandboxStatus, verboseInfo } from '../actors/sandbox/sandbox-view.js';

export const podSandboxStatus = (ctx: CriContext): UnaryHandler<PodSandboxStatusRequest__Output, PodSandboxStatusResponse> => (request) => {
  const id = resolveStreamId(ctx.store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  const state = id ? sandboxState(ctx.store, id) : undefined;
  if (!id || !state || state.value === 'new' || state.value === 'removing') throw notFound(`pod sandbox ${request.pod_sandbox_id} not found`);
  return {
    status: toPodSandboxStatus(id, state),
    info: request.verbose ? verboseInfo(id, state) : {},
    containers_statuses: [],
    timestamp: String(nowNs()),
  };
};
