// The pod sandbox slice of the CRI: its RPCs, the driver that carries sandbox streams through
// their steps, and start-up recovery (finish or unwind what was in flight, notice pods whose
// namespaces or mounts vanished).
import { join, resolve } from 'node:path';
import type { ServiceFactory } from '../../cri/context.js';
import { StreamDriver } from '../driver.js';
import { CniRunner } from './cni.js';
import { writeDefaultConfig } from './cni-config.js';
import { pinnedBy, type PodNamespaceKind } from './namespaces.js';
import { createSandboxPlanner } from './sandbox-planner.js';
import { appendIfAccepted, liveSandboxes, sandboxState } from './sandbox-streams.js';
import type { SandboxCommandDeps } from './sandbox-commands.js';
import type { EventStore } from '../../events/store.js';
import type { Logger } from '../../log.js';
import type { CrispConfig } from '../../config/schema.js';
import { runPodSandbox } from '../../cri/run-pod-sandbox.js';
import { stopPodSandbox } from '../../cri/stop-pod-sandbox.js';
import { removePodSandbox } from '../../cri/remove-pod-sandbox.js';
import { podSandboxStatus } from '../../cri/pod-sandbox-status.js';
import { listPodSandbox } from '../../cri/list-pod-sandbox.js';
import { streamPodSandboxes } from '../../cri/stream-pod-sandboxes.js';
import { updatePodSandboxResources } from '../../cri/update-pod-sandbox-resources.js';
import { InfraExitWatcher, type InfraDeps } from './infra.js';
import { topMounts, type MountEntry } from './mounts.js';
import { recoverEach } from '../recovery.js';

export const DEFAULT_NETWORK = { name: 'crisp', bridge: 'crisp0', subnet: '10.85.0.0/16' } as const;
const CONTAINER_WAIT_MS = 30_000;
const CLOSE_WAIT_MS = 10_000;

/**
 * Start-up's check of what the log says a pod holds: a ready pod whose pinned namespaces are
 * gone (the node rebooted, someone unmounted them) is not ready; a shm or infra rootfs mount
 * that is missing is recorded as found.
 */
async function reconcileSandbox(store: EventStore, id: string, logger: Logger, mounted: Map<string, MountEntry>): Promise<void> {
  const state = sandboxState(store, id);
  if (!state) return;
  if (state.value === 'ready') {
    for (const [kind, path] of Object.entries(state.context.namespaces) as [PodNamespaceKind, string | undefined][]) {
      if (!path || pinnedBy(mounted.get(resolve(path)), kind)) continue;
      const reason = `the pinned ${kind} namespace ${path} is gone (node rebooted?)`;
      logger.warn({ sandbox: id, path }, 'pod namespace vanished; the pod is not ready');
      appendIfAccepted(store, 'sandbox', id, { type: 'SandboxNotReadyObserved', reason });
      break;
    }
  }
  const mounts: [string, string | null][] = [['shm', state.context.shmPath], ['infra rootfs', state.context.infraRootfs]];
  for (const [what, path] of mounts) {
    if (!path || mounted.has(resolve(path))) continue;
    logger.warn({ sandbox: id, what, path }, 'a pod mount the log holds is not mounted');
    appendIfAccepted(store, 'sandbox', id, { type: 'SandboxMountMissingObserved', path, what });
  }
}

/** The daemon's CNI runner over its config: pods use it, and the leak sweep DELs what no pod owns. */
export function cniRunnerFor(config: CrispConfig, logger: Logger): CniRunner {
  // The cache lives under the persistent root: host-local's IP leases survive a reboot, and
  // the DEL that releases them needs the ADD's cached result even after the netns is gone.
  return new CniRunner({ confDir: config.cniConfigDir, pluginDirs: config.cniPluginDirs, cacheDir: join(config.root, 'cni-cache'), logger,
    // pinNamespaces brings lo up in the pod's netns as it creates it
    loopback: false });
}

export const sandboxService: ServiceFactory = (ctx) => {
  const logger = ctx.logger.child({ service: 'sandboxes' });
  const cni = cniRunnerFor(ctx.config, logger);
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
