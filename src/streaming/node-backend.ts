// How the streaming server reaches the node: exec runs `runc exec` in the container, attach
// connects to conmon's attach socket, port-forward dials into the pod's network namespace.
// Given explicit dependencies, so streaming imports nothing of the CRI layer.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { EventStore } from '../events/store.js';
import { runtimeDirs } from '../actors/monitor/container-layout.js';
import { findContainer } from '../actors/container/container-view.js';
import { writeExecProcess } from '../actors/monitor/exec-process-file.js';
import { failedPrecondition } from '../errors.js';
import { startAttach } from './attach-process.js';
import { startExec } from './exec-process.js';
import { podDialer } from './port-forward.js';
import type { StreamingBackend } from './server.js';

export interface NodeBackendDeps {
  runroot: string;
  /** The OCI runtime binary and root a container was made with (its pod's handler). */
  runtimeOf(containerId: string): Promise<{ path: string; root: string }>;
  store: EventStore;
  /** conmon's attach socket of a container. */
  attachSocketPath(containerId: string): string;
}

export function nodeBackend(ctx: NodeBackendDeps): StreamingBackend {
  const dirs = runtimeDirs(ctx.runroot);
  return {
    async exec(spec) {
      const runtime = await ctx.runtimeOf(spec.containerId);
      const bundle = findContainer(ctx.store, spec.containerId)?.[1].context.bundle;
      if (!bundle) throw failedPrecondition(`container ${spec.containerId} has no bundle any more`);
      const name = `stream-exec-${randomBytes(6).toString('hex')}`;
      const processFile = join(dirs.runDir, spec.containerId, `${name}.json`);
      await writeExecProcess(bundle, spec.cmd, spec.tty, processFile);
      return startExec({
        processFile,
        runcPath: runtime.path,
        runcRoot: runtime.root,
        containerId: spec.containerId,
        cmd: spec.cmd,
        tty: spec.tty,
        stdin: spec.stdin,
        pidFile: join(dirs.runDir, spec.containerId, `${name}.pid`),
      });
    },
    async attach(spec) {
      const bundle = findContainer(ctx.store, spec.containerId)?.[1].context.bundle;
      if (!bundle) throw failedPrecondition(`container ${spec.containerId} has no bundle any more`);
      return startAttach({
        containerId: spec.containerId,
        socketPath: ctx.attachSocketPath(spec.containerId),
        ctlPath: join(bundle, 'ctl'),
        stdin: spec.stdin,
      });
    },
    dialer: podDialer,
  };
}
