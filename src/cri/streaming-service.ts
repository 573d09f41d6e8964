// The streaming slice of the CRI: Exec, Attach and PortForward hand out URLs on the streaming
// server, which runs the sessions. Nothing here is an acquired resource of a container or pod:
// a session lives as long as its client connection, and a daemon restart ends it (its
// processes are killed with it).
import type { ServiceFactory } from './context.js';
import type { StreamingDeps } from './streaming-deps.js';
import { exec } from './exec.js';
import { attach } from './attach.js';
import { portForward } from './port-forward.js';
import { StreamingServer } from '../streaming/server.js';
import { nodeBackend } from '../streaming/node-backend.js';

export const streamingService: ServiceFactory = (ctx) => {
  const server = new StreamingServer({
    address: ctx.config.streamAddress,
    port: ctx.config.streamPort,
    backend: nodeBackend({
      runroot: ctx.config.runroot,
      runtimeOf: (id) => ctx.runtime.runtimeOf(id),
      store: ctx.store,
      attachSocketPath: (id) => ctx.runtime.attachSocketPath(id),
    }),
    logger: ctx.logger,
  });
  const deps: StreamingDeps = { ctx, server };
  return {
    name: 'streaming',
    runtime: {
      Exec: exec(deps),
      Attach: attach(deps),
      PortForward: portForward(deps),
    },
    async recover() {
      await server.start();
    },
    async close() {
      await server.stop();
    },
  };
};
