import type { StopPodSandboxRequest__Output } from './proto/gen/runtime/v1/StopPodSandboxRequest.js';
import type { StopPodSandboxResponse } from './proto/gen/runtime/v1/StopPodSandboxResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { stopSandbox, type SandboxCommandDeps } from '../actors/sandbox/sandbox-commands.js';

/** kubelet expects success for a pod that is already gone. */
export const stopPodSandbox = (ctx: CriContext, sandboxes: SandboxCommandDeps):
  UnaryHandler<StopPodSandboxRequest__Output, StopPodSandboxResponse> => async (request, rpc) => {
  const id = resolveStreamId(ctx.store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  if (id) await stopSandbox(sandboxes, id, rpc.signal);
  return {};
};
