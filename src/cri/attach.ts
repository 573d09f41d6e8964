import type { AttachRequest__Output } from './proto/gen/runtime/v1/AttachRequest.js';
import type { AttachResponse } from './proto/gen/runtime/v1/AttachResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { StreamingDeps } from './streaming-deps.js';
import { attachSpec } from '../streaming/requests.js';

/** Validates the attach and answers with a single-use URL on the streaming server. */
export const attach = (deps: StreamingDeps): UnaryHandler<AttachRequest__Output, AttachResponse> =>
  (request) => ({ url: deps.server.issue(attachSpec(deps.ctx.store, request)) });
