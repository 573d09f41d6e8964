// The pod sandbox slice of the CRI: its RPCs, the driver that carries sandbox streams through
// their steps, and start-up recovery (finish or unwind what was in flight, notice pods whose
// namespaces or mounts vanished).
import type { ServiceFactory } from './context.js';
import { StreamDriver } from '../actors/driver.js';
import { writeDefaultConfig } from '../actors/network/cni-config.js';
import { createSandboxPlanner } from '../actors/sandbox/sandbox-planner.js';
import { liveSandboxes } from '../actors/sandbox/sandbox-streams.js';
import { reconcileSandbox } from '../actors/sandbox/sandbox-reconcile.js';
import type { SandboxCommandDeps } from '../actors/sandbox/sandbox-commands.js';
import { runPodSandbox } from './run-pod-sandbox.js';
import { stopPodSandbox } from './stop-pod-sandbox.js';
import { removePodSandbox } from './remove-pod-sandbox.js';
import { podSandboxStatus } from './pod-sandbox-status.js';
import { listPodSandbox } from './list-pod-sandbox.js';
import { streamPodSandboxes } from './stream-pod-sandboxes.js';
import { updatePodSandboxResources } from './update-pod-sandbox-resources.js';
import { InfraExitWatcher, type InfraDeps } from '../actors/sandbox/infra.js';
import { topMounts } from '../host/mounts.js';
import { recoverEach } from '../actors/recovery.js';

const DEFAULT_NETWORK = { name: 'crisp', bridge: 'crisp0', subnet: '10.85.0.0/16' } as const;
const CONTAINER_WAIT_MS = 30_000;
const CLOSE_WAIT_MS = 10_000;

export const sandboxService: ServiceFactory = (ctx) => {
  const logger = ctx.logger.child({ service: 'sandboxes' });
  const cni = ctx.network;
  const stepErrors = new Map<string, string>();
  // The daemon's one ContainerRuntime, so the exits dir and the conmon records show the infra
  // containers beside the others (each under its pod's runtime handler).
  const infra: Omit<InfraDeps, 'runroot' | 'logger'> = {
    store: ctx.store,
    blobs: ctx.blobs,
    layers: ctx.layers,
    pauseImage: ctx.config.pauseImage,
    pull: (image, signal) => ctx.images.pull(image, undefined, signal),
    runtime: () => ctx.runtime,
    hostFacts: ctx.hostFacts,
  };
  const infraExits = new InfraExitWatcher({ ...infra, runroot: ctx.config.runroot, logger });
  const planner = createSandboxPlanner({ runroot: ctx.config.runroot, cni, logger, stepErrors, infra });
  const driver = new StreamDriver(ctx.store, 'sandbox', planner, logger);
  const deps: SandboxCommandDeps = { store: ctx.store, driver, containerWaitMs: CONTAINER_WAIT_MS, stepErrors };

  return {
    name: 'sandboxes',
    runtime: {
      RunPodSandbox: runPodSandbox(ctx, deps),
      StopPodSandbox: stopPodSandbox(ctx, deps),
      RemovePodSandbox: removePodSandbox(ctx, deps),
      PodSandboxStatus: podSandboxStatus(ctx),
      ListPodSandbox: listPodSandbox(ctx),
      StreamPodSandboxes: streamPodSandboxes(ctx),
      UpdatePodSandboxResources: updatePodSandboxResources(ctx),
    },
    async recover() {
      const { written, path } = await writeDefaultConfig(ctx.config.cniConfigDir, DEFAULT_NETWORK);
      if (written) logger.info({ path, ...DEFAULT_NETWORK }, 'the CNI config dir was empty: wrote the default pod network');
      infraExits.start();
      const bound = ctx.config.recoveryItemTimeoutMs;
      const ids = liveSandboxes(ctx.store).map(([id]) => id);
      const mounted = await topMounts();
      const unsettled = await recoverEach(ids, { itemTimeoutMs: bound, logger, what: 'sandbox' }, async (id) => {
        await reconcileSandbox(ctx.store, id, logger, mounted);
        await infraExits.recoverOne(id);
      });
      driver.start();
      const busy = await driver.driveAll(bound);
      if (unsettled.length || busy.length) logger.warn({ unsettled, busy, boundMs: bound }, 'pods still recovering in the background; the server opens without them');
    },
    async close() {
      infraExits.stop();
      driver.stop();
      // Let a step under way record its fact before the log closes.
      await Promise.race([driver.idleAll(), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    },
  };
};
