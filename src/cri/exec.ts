import type { ExecRequest__Output } from './proto/gen/runtime/v1/ExecRequest.js';
import type { ExecResponse } from './proto/gen/runtime/v1/ExecResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { StreamingDeps } from './streaming-deps.js';
import { execSpec } from '../streaming/requests.js';

/** Validates the exec and answers with a single-use URL on the streaming server. */
export const exec = (deps: StreamingDeps): UnaryHandler<ExecRequest__Output, ExecResponse> =>
  (request) => ({ url: deps.server.issue(execSpec(deps.ctx.store, request)) });
