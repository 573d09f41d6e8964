import type { ListPodSandboxRequest__Output } from './proto/gen/runtime/v1/ListPodSandboxRequest.js';
import type { ListPodSandboxResponse } from './proto/gen/runtime/v1/ListPodSandboxResponse.js';
import type { PodSandbox } from './proto/gen/runtime/v1/PodSandbox.js';
import type { PodSandboxFilter__Output } from './proto/gen/runtime/v1/PodSandboxFilter.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { liveSandboxes } from '../actors/sandbox/sandbox-streams.js';
import { isListed, matchesFilter, toPodSandbox } from '../actors/sandbox/sandbox-view.js';
import { perState } from './list-encoding.js';

const listedPodSandbox = perState(toPodSandbox);

/** The listed pods a filter selects, from the live states (readers never wait). */
export function selectSandboxes(ctx: CriContext, filter: PodSandboxFilter__Output | null): PodSandbox[] {
  return liveSandboxes(ctx.store)
    .filter(([id, state]) => isListed(state) && matchesFilter(id, state, filter))
    .map(([id, state]) => listedPodSandbox(id, state));
}

export const listPodSandbox = (ctx: CriContext): UnaryHandler<ListPodSandboxRequest__Output, ListPodSandboxResponse> => (request) => ({
  items: selectSandboxes(ctx, request.filter),
});
