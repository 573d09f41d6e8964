import type { RunPodSandboxRequest__Output } from './proto/gen/runtime/v1/RunPodSandboxRequest.js';
import type { RunPodSandboxResponse } from './proto/gen/runtime/v1/RunPodSandboxResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { validateSandboxRequest } from '../machines/sandbox-config.js';
import { runSandbox, type SandboxCommandDeps } from '../actors/sandbox/sandbox-commands.js';

export const runPodSandbox = (ctx: CriContext, sandboxes: SandboxCommandDeps):
  UnaryHandler<RunPodSandboxRequest__Output, RunPodSandboxResponse> => async (request, rpc) => {
  const { config, nameKey } = validateSandboxRequest(request.config, request.runtime_handler, { runtimeHandlers: ctx.handlers.names() });
  // A handler this host cannot run (crun on a hybrid cgroup host) is refused before anything is made.
  ctx.handlers.usable(request.runtime_handler);
  const id = await runSandbox(sandboxes, { config, nameKey, runtimeHandler: request.runtime_handler }, rpc.signal);
  return { pod_sandbox_id: id };
};
