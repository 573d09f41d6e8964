import type { PodSandboxStatusRequest__Output } from './proto/gen/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from './proto/gen/runtime/v1/PodSandboxStatusResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { messageOf, notFound } from '../errors.js';
import { nowNs } from '../events/clock.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { toPodSandboxStatus, verboseInfo } from '../actors/sandbox/sandbox-view.js';

export const podSandboxStatus = (ctx: CriContext): UnaryHandler<PodSandboxStatusRequest__Output, PodSandboxStatusResponse> => async (request) => {
  const id = resolveStreamId(ctx.store, 'sandbox', request.pod_sandbox_id, 'pod_sandbox_id');
  const state = id ? sandboxState(ctx.store, id) : undefined;
  if (!id || !state || state.value === 'new' || state.value === 'removing') throw notFound(`pod sandbox ${request.pod_sandbox_id} not found`);
  const status = toPodSandboxStatus(id, state);
  const info = request.verbose ? verboseInfo(id, state) : {};
  // What `crictl inspectp` (verbose) adds: CNI CHECK of a ready pod's attachment, so an operator
  // sees whether the pod's network is still as ADD left it. kubelet never asks for verbose.
  if (request.verbose && state.value === 'ready' && status.network?.ip) info['networkCheck'] = JSON.stringify(await networkCheck(ctx, id));
  return { status, info, containers_statuses: [], timestamp: String(nowNs()) };
};

async function networkCheck(ctx: CriContext, id: string): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    await ctx.network.check({ containerId: id });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: messageOf(err) };
  }
}
