import type { StatusRequest__Output } from './proto/gen/runtime/v1/StatusRequest.js';
import type { StatusResponse } from './proto/gen/runtime/v1/StatusResponse.js';
import type { RuntimeCondition } from './proto/gen/runtime/v1/RuntimeCondition.js';
import type { UnaryHandler } from './wrap.js';
import type { CriContext } from './context.js';
import { messageOf } from '../errors.js';

// ContainerStatus reports the user a container really runs as, and Strict is honoured (KEP-3619).
const SUPPLEMENTAL_GROUPS_POLICY = true;

/**
 * NetworkReady says whether a pod could be networked now, as CRI-O asks libcni: the CNI config
 * loads, every plugin it names is installed, and (spec 1.1.0 on) each plugin's STATUS says ready.
 */
async function networkCondition(ctx: CriContext): Promise<RuntimeCondition> {
  try {
    const network = await ctx.network.status();
    return { type: 'NetworkReady', status: true, reason: '', message: `CNI network ${network.name}` };
  } catch (err) {
    return { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: messageOf(err) };
  }
}

// crictl (up to at least 1.26) pastes each value into its JSON output unescaped unless the value
// is JSON itself, so every value here is JSON; the TOML view is `crisp config`'s.
function verboseInfo(ctx: CriContext): Record<string, string> {
  const runtimeHandlers = ctx.handlers.all.map((h) => ({
    name: h.name, runtimePath: h.path, runtimeRoot: h.root, features: h.features, notes: h.notes, ...(h.problem && { problem: h.problem }),
  }));
  return { config: JSON.stringify(ctx.config), runtimeHandlers: JSON.stringify(runtimeHandlers) };
}

export const status = (ctx: CriContext): UnaryHandler<StatusRequest__Output, StatusResponse> => async (request) => {
  const conditions: RuntimeCondition[] = [
    { type: 'RuntimeReady', status: true, reason: '', message: '' },
    await networkCondition(ctx),
  ];
  return {
    status: { conditions },
    info: request.verbose ? verboseInfo(ctx) : {},
    // What each handler really supports here; kubelet and critest gate features on these.
    runtime_handlers: ctx.handlers.all.map((h) => ({
      name: h.name,
      features: { recursive_read_only_mounts: h.features.recursiveReadOnlyMounts, user_namespaces: h.features.userNamespaces },
    })),
    features: { supplemental_groups_policy: SUPPLEMENTAL_GROUPS_POLICY },
  };
};
