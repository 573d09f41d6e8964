import type { RemovePodSandboxRequest__Output } from './proto/gen/runtime/v1/RemovePodSandboxRequest.js';
import type { RemovePodSandboxResponse } from './proto/gen/runtime/v1/RemovePodSandboxResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { removeSandbox, type SandboxCommandDeps } from '../actors/sandbox/sandbox-commands.js';

/** kubelet expects success for a pod that is already gone. */
export const removePodSandbox = (ctx: CriContext, sandboxes: SandboxCommandDeps):
  UnaryHandler<RemovePodSandboxRequest__Output, RemovePodSandboxResponse> => async (request, rpc) => {
  const id = resolveStreamId(ctx.store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  if (id) await removeSandbox(sandboxes, id, rpc.signal);
  return {};
};
