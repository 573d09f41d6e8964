import type { PortForwardRequest__Output } from './proto/gen/runtime/v1/PortForwardRequest.js';
import type { PortForwardResponse } from './proto/gen/runtime/v1/PortForwardResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { StreamingDeps } from './streaming-deps.js';
import { portForwardSpec } from '../streaming/requests.js';

/** Validates the pod and ports and answers with a single-use URL on the streaming server. */
export const portForward = (deps: StreamingDeps): UnaryHandler<PortForwardRequest__Output, PortForwardResponse> =>
  (request) => ({ url: deps.server.issue(portForwardSpec(deps.ctx.store, request)) });
