// The sandbox planner: from a sandbox's state, the one next effect (DESIGN.md rule 5).
//
//   creating: pin namespaces (+ sysctls) → CNI ADD → pod files + shm
//             → [pod-wide PID namespace: pause image → infra rootfs → infra spec → infra start]
//             → ready
//   stopping: kill the infra → CNI DEL (while the netns is still pinned: the bridge plugin
//             needs it) → stopped
//   failed / removing: release what is held, newest first: infra process → infra runtime state
//                      → infra rootfs → files + shm → CNI DEL → namespaces → sweep the sandbox
//                      directory (and crisp's default pod cgroup) → removed
//
// The pod files come after CNI because /etc/hosts carries the pod IP. Every step is idempotent:
// after a crash the same step runs again from what the log says is held.
import { hostname as nodeHostname } from 'node:os';
import { join, posix } from 'node:path';
import { existsSync } from 'node:fs';
import type { Planner, Step } from '../driver.js';
import type { EntityState } from '../../machines/index.js';
import type { SandboxEvent } from '../../machines/events.js';
import { messageOf, recordedKind } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { CniRunner, PodIdentity } from '../network/cni.js';
import { isPinned, pinNamespaces, unpinNamespaces, type PinnedNamespaces } from '../network/namespaces.js';
import { POD_NAMESPACE_KINDS, bandwidthOf, portMappingsOf } from '../../machines/pod-rules.js';
import { mountPodShm, removePodFiles, unmountPodShm, writePodFiles } from './pod-files.js';
import { applySysctls } from './sysctls.js';
import { unmountOwn } from '../../host/mounts.js';
import { removePath } from '../../host/files.js';
import {
  effectiveHostname, isHostIpc, isHostNetwork, needsInfraContainer, podNamespaceKinds,
} from '../../machines/sandbox-config.js';
import { sandboxDir } from './sandbox-streams.js';
import {
  deleteInfra, infraLayout, mountInfraRootfs, resolvePauseImage, startInfra, stopInfra, unmountInfraRootfs, writeInfraSpec,
  type InfraDeps,
} from './infra.js';
import { cgroupsPathFor } from '../spec/resources.js';
import { detectCgroupLayout, removeCgroupTree, resolveCgroupPaths } from '../monitor/cgroups.js';

export interface SandboxPlannerOptions {
  runroot: string;
  cni: CniRunner;
  logger?: Logger;
  /** Size of each pod's /dev/shm tmpfs. */
  shmSizeBytes?: number;
  /**
   * Where the last failure of a step that is retried rather than recorded (a release) is kept
   * per sandbox, so an RPC waiting on it can answer with the reason instead of hanging.
   */
  stepErrors?: Map<string, string>;
  /** What the infra container of a pod-wide PID namespace needs; without it such pods fail at infra-image. */
  infra?: Omit<InfraDeps, 'runroot' | 'logger'>;
}

type SandboxState = EntityState<'sandbox'>;

// A pull of the pause image that makes no progress is cut by the puller's own progress timeout;
// this bounds the whole step, so a RunPodSandbox never waits forever on a registry.
const INFRA_PULL_TIMEOUT_MS = 10 * 60_000;

const nsDir = (dir: string) => join(dir, 'ns');
const shmDir = (dir: string) => join(dir, 'shm');

function podIdentity(state: SandboxState): PodIdentity {
  const m = state.context.config!.metadata!;
  return { namespace: m.namespace, name: m.name, uid: m.uid };
}

function isPinnedSomewhere(ns: PinnedNamespaces): boolean {
  return Object.values(ns).some(Boolean);
}

/**
 * Without a cgroup_parent from kubelet, a pod's containers (and its infra) live under crisp's
 * own /crisp/<sandbox id>, which nothing else removes. Only empty directories go: a process
 * still in it makes this step fail and retry rather than leak it silently.
 */
async function removeDefaultPodCgroup(id: string, state: SandboxState): Promise<void> {
  if ((state.context.config?.linux?.cgroup_parent ?? '').trim() !== '') return;
  const podCgroup = posix.dirname(cgroupsPathFor('', id, id));
  await removeCgroupTree(resolveCgroupPaths(await detectCgroupLayout(), podCgroup));
}

export function createSandboxPlanner(options: SandboxPlannerOptions): Planner<'sandbox'> {
  const log = options.logger ?? silentLogger;
  const { cni } = options;

  /** A step whose failure ends creation: recorded as SandboxRunFailed naming the step. */
  const creationStep = (name: string, run: (signal: AbortSignal) => Promise<SandboxEvent[]>): Step<'sandbox'> => ({
    name,
    run,
    failed: (err) => {
      const kind = recordedKind(err, false);
      return [{ type: 'SandboxRunFailed', step: name, message: messageOf(err), ...(kind && { kind }) }];
    },
  });

  const pin = (id: string, state: SandboxState) => creationStep('pin-namespaces', async () => {
    const config = state.context.config!;
    const dir = nsDir(sandboxDir(options.runroot, id));
    const kinds = podNamespaceKinds(config);
    // Files of an attempt that died before its fact was recorded are nobody's: release them.
    if (existsSync(dir)) await unpinNamespaces(Object.fromEntries(POD_NAMESPACE_KINDS.map((k) => [k, join(dir, k)])));
    const paths = await pinNamespaces({
      dir, kinds, logger: log,
      ...(kinds.includes('uts') ? { hostname: effectiveHostname(config, id, nodeHostname()) } : {}),
    });
    try {
      await applySysctls(paths, config.linux?.sysctls ?? {});
    } catch (err) {
      await unpinNamespaces(paths);
      throw err;
    }
    return [{ type: 'SandboxNamespacesPinned', paths }];
  });

  const infraDeps = (): InfraDeps => {
    if (!options.infra) throw new Error('this planner was built without the infra container runtime');
    return { ...options.infra, runroot: options.runroot, logger: log };
  };

  const infraImage = () => creationStep('infra-image', async (signal) => {
    // The driver's signal aborts a pull when the daemon shuts down.
    const image = await resolvePauseImage(infraDeps(), AbortSignal.any([signal, AbortSignal.timeout(INFRA_PULL_TIMEOUT_MS)]));
    return [{ type: 'SandboxInfraImageResolved', image }];
  });

  const infraRootfs = (id: string, state: SandboxState) => creationStep('infra-rootfs', async () => {
    const path = await mountInfraRootfs(infraDeps(), id, state.context.infraImage!);
    return [{ type: 'SandboxInfraRootfsMounted', path }];
  });

  const infraSpec = (id: string, state: SandboxState) => creationStep('infra-spec', async () => {
    const bundle = await writeInfraSpec(infraDeps(), id, state);
    return [{ type: 'SandboxInfraSpecWritten', bundle }];
  });

  const infraStart = (id: string, state: SandboxState) => creationStep('infra-start', async () => {
    const pid = await startInfra(infraDeps(), id, state.context.infraBundle!, state.context.runtimeHandler);
    return [{ type: 'SandboxInfraStarted', containerId: id, pid }];
  });

  const infraStop = (id: string): Step<'sandbox'> => ({
    name: 'infra-stop',
    run: async () => {
      await stopInfra(infraDeps(), id);
      return [{ type: 'SandboxInfraStopped' }];
    },
  });

  const infraDelete = (id: string): Step<'sandbox'> => ({
    name: 'infra-delete',
    run: async () => {
      await deleteInfra(infraDeps(), id);
      return [{ type: 'SandboxInfraDeleted' }];
    },
  });

  const infraUnmount = (id: string): Step<'sandbox'> => ({
    name: 'infra-rootfs-unmount',
    run: async () => {
      await unmountInfraRootfs(infraDeps(), id);
      return [{ type: 'SandboxInfraRootfsUnmounted' }];
    },
  });

  const attach = (id: string, state: SandboxState) => creationStep('cni-add', async () => {
    const netnsPath = state.context.namespaces.net!;
    // An ADD cut short by a crash left a cache entry; DEL it so the new ADD starts clean.
    if ((await cni.cachedAttachments(id)).length > 0) await cni.del({ containerId: id, netnsPath, pod: podIdentity(state) });
    // Re-read the config dir: pods created after an edit use the new network, as libcni does.
    await cni.reload();
    const bandwidth = bandwidthOf(state.context.config!);
    const status = await cni.add({
      containerId: id,
      netnsPath,
      pod: podIdentity(state),
      portMappings: portMappingsOf(state.context.config!),
      ...(bandwidth ? { bandwidth } : {}),
    });
    return [{ type: 'SandboxNetworkAttached', ips: status.ips.map((p) => p.ip), network: status.networkName }];
  });

  const prepareFiles = (id: string, state: SandboxState) => creationStep('pod-files', async () => {
    const config = state.context.config!;
    const dir = sandboxDir(options.runroot, id);
    const shm = isHostIpc(config) ? undefined : shmDir(dir);
    try {
      await writePodFiles({
        dir,
        hostname: effectiveHostname(config, id, nodeHostname()),
        podIps: state.context.ips,
        hostNetwork: isHostNetwork(config),
        ...(config.dns_config ? { dnsConfig: config.dns_config } : {}),
      });
      if (shm) await mountPodShm(shm, options.shmSizeBytes !== undefined ? { sizeBytes: options.shmSizeBytes } : {});
    } catch (err) {
      if (shm) await unmountPodShm(shm).catch(() => {});
      await removePodFiles(dir).catch(() => {});
      throw err;
    }
    return [{ type: 'SandboxFilesPrepared', dir, ...(shm ? { shmPath: shm } : {}) }];
  });

  const detach = (id: string, state: SandboxState): Step<'sandbox'> => ({
    name: 'cni-del',
    run: async () => {
      const netnsPath = state.context.namespaces.net;
      const netnsGone = !netnsPath || !(await isPinned(netnsPath, 'net'));
      await cni.del({ containerId: id, pod: podIdentity(state), netnsGone, ...(netnsPath ? { netnsPath } : {}) });
      return [{ type: 'SandboxNetworkDetached' }];
    },
  });

  // The releases below are redoable (an unmount of nothing, a removal of what is gone, a DEL
  // of no attachment are no-ops): the driver records consecutive ones in one append.
  const releaseFiles = (state: SandboxState): Step<'sandbox'> => ({
    name: 'remove-pod-files',
    redoable: true,
    run: async () => {
      if (state.context.shmPath) await unmountPodShm(state.context.shmPath);
      await removePodFiles(state.context.filesDir!);
      return [{ type: 'SandboxFilesRemoved' }];
    },
  });

  const unpin = (state: SandboxState): Step<'sandbox'> => ({
    name: 'unpin-namespaces',
    redoable: true,
    run: async () => {
      await unpinNamespaces(state.context.namespaces);
      return [{ type: 'SandboxNamespacesUnpinned' }];
    },
  });

  /**
   * The last step of every sandbox: whatever a step that died half-way left (a CNI cache entry
   * of a failed ADD whose own DEL failed, a mount, a file) is released here before the record
   * ends, so nothing outlives the sandbox.
   */
  const sweep = (id: string, state: SandboxState): Step<'sandbox'> => ({
    name: 'remove-sandbox-dir',
    redoable: true,
    run: async () => {
      const dir = sandboxDir(options.runroot, id);
      if ((await cni.cachedAttachments(id)).length > 0) {
        await cni.del({ containerId: id, netnsGone: !(await isPinned(join(nsDir(dir), 'net'), 'net')) });
      }
      await unmountOwn(infraLayout(options.runroot, id).rootfs, shmDir(dir), ...POD_NAMESPACE_KINDS.map((k) => join(nsDir(dir), k)));
      // a few files on the runroot's tmpfs: removed in place, not through the thread pool
      await removePath(dir);
      await removeDefaultPodCgroup(id, state);
      return [{ type: 'SandboxRemoved' }];
    },
  });

  const tracked = (id: string, step: Step<'sandbox'> | null): Step<'sandbox'> | null => {
    if (!step || !options.stepErrors) return step;
    const errors = options.stepErrors;
    return {
      ...step,
      run: async (signal) => {
        try {
          const facts = await step.run(signal);
          errors.delete(id);
          return facts;
        } catch (err) {
          errors.set(id, `step ${step.name} failed: ${messageOf(err)}`);
          throw err;
        }
      },
    };
  };

  return (id, state) => tracked(id, plan(id, state));

  function plan(id: string, state: SandboxState): Step<'sandbox'> | null {
    const c = state.context;
    switch (state.value) {
      case 'creating': {
        const config = c.config!;
        if (podNamespaceKinds(config).length > 0 && !isPinnedSomewhere(c.namespaces)) return pin(id, state);
        if (!isHostNetwork(config) && c.network === null) return attach(id, state);
        if (c.filesDir === null) return prepareFiles(id, state);
        if (needsInfraContainer(config) && c.infra === null) {
          if (c.infraImage == null) return infraImage();
          if (c.infraRootfs == null) return infraRootfs(id, state);
          if (c.infraBundle == null) return infraSpec(id, state);
          return infraStart(id, state);
        }
        return { name: 'ready', pure: true, run: async () => [{ type: 'SandboxReady' }] };
      }
      case 'stopping':
        if (c.infra != null) return infraStop(id);
        if (c.network !== null) return detach(id, state);
        return { name: 'stopped', pure: true, run: async () => [{ type: 'SandboxStopped' }] };
      case 'failed':
      case 'removing':
        if (c.infra != null) return infraStop(id);
        if (c.infraRuntimeId != null) return infraDelete(id);
        if (c.infraRootfs != null) return infraUnmount(id);
        if (c.filesDir !== null) return releaseFiles(state);
        if (c.network !== null) return detach(id, state);
        if (isPinnedSomewhere(c.namespaces)) return unpin(state);
        return sweep(id, state);
      default:
        return null;
    }
  }
}
