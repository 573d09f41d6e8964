import type { ExecSyncRequest__Output } from './proto/gen/runtime/v1/ExecSyncRequest.js';
import type { ExecSyncResponse } from './proto/gen/runtime/v1/ExecSyncResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { findContainer } from '../actors/container/container-view.js';
import { deadlineExceeded, invalidArgument, notFound } from '../errors.js';
import { rejectNul } from '../machines/request-bounds.js';

const MAX_OUTPUT = 16 * 1024 * 1024;

/** Runs a command to completion; on timeout the process is killed and reaped before answering. */
export const execSync = (deps: ContainerDeps): UnaryHandler<ExecSyncRequest__Output, ExecSyncResponse> =>
  async (request, rpc) => {
    if (request.cmd.length === 0) throw invalidArgument('cmd: required');
    rejectNul(request.cmd, 'cmd');
    const timeoutSeconds = Number(request.timeout || '0');
    if (!Number.isSafeInteger(timeoutSeconds) || timeoutSeconds < 0) throw invalidArgument(`timeout: ${request.timeout} is not a number of seconds`);
    const found = findContainer(deps.ctx.store, request.container_id);
    if (!found) throw notFound(`container_id: container ${request.container_id} not found`);
    const result = await deps.runtime.execSync(found[0], request.cmd, { timeoutSeconds, maxOutputBytes: MAX_OUTPUT });
    if (result.timedOut) {
      throw deadlineExceeded(`command ${JSON.stringify(request.cmd)} timed out after ${timeoutSeconds} s; it was killed`);
    }
    let stderr = result.stderr;
    if (result.truncated) {
      rpc.log.warn({ container: found[0], capBytes: MAX_OUTPUT }, 'exec output truncated');
      stderr = Buffer.concat([stderr, Buffer.from(`\n[crisp: output beyond ${MAX_OUTPUT} bytes per stream was dropped]\n`)]);
    }
    return { stdout: result.stdout, stderr, exit_code: result.exitCode };
  };
