import { assign, setup } from 'xstate';
import type { PodSandboxConfig__Output } from '../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { LinuxContainerResources__Output } from '../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { CallerFault, ImageRef, NamespacePaths, NsTime, SandboxEvent } from './events.js';

export interface SandboxContext {
  id: string;
  config: PodSandboxConfig__Output | null;
  runtimeHandler: string;
  nameKey: string;
  createdAt: NsTime;
  namespaces: NamespacePaths;
  filesDir: string | null;
  shmPath: string | null;
  network: string | null;
  ips: string[];
  /** The running infra (pause) process; null once it is stopped. */
  infra: { containerId: string; pid: number } | null;
  /** The pause image the infra container runs. */
  infraImage: ImageRef | null;
  /** The infra container's mounted rootfs and its bundle; null once unmounted and removed. */
  infraRootfs: string | null;
  infraBundle: string | null;
  /** The infra container as the OCI runtime knows it (runc state, conmon, cgroup) until deleted. */
  infraRuntimeId: string | null;
  failure: { step: string; message: string; kind?: CallerFault } | null;
  notReadyReason: string | null;
  /** The pod's overhead and resources: from the config, then as UpdatePodSandboxResources set them. */
  overhead: LinuxContainerResources__Output | null;
  resources: LinuxContainerResources__Output | null;
}

// Resource facts are recorded by the actors that acquire or release them; the machine keeps
// what is held, so a restart knows what still has to be released (DESIGN.md rule 5).
const releases = {
  SandboxInfraStopped: { actions: 'releaseInfra' },
  SandboxInfraDeleted: { actions: 'releaseInfraRuntime' },
  SandboxInfraRootfsUnmounted: { actions: 'releaseInfraRootfs' },
  SandboxNetworkDetached: { actions: 'releaseNetwork' },
  SandboxFilesRemoved: { actions: 'releaseFiles' },
  SandboxNamespacesUnpinned: { actions: 'releaseNamespaces' },
} as const;

export const sandboxMachine = setup({
  types: {
    context: {} as SandboxContext,
    events: {} as SandboxEvent,
    input: {} as { id: string },
  },
  actions: {
    // Kept in the log for `crisp replay`; the state has nothing to change.
    observe: assign(() => ({})),
    recordNamespaces: assign(({ event }) => (event.type === 'SandboxNamespacesPinned' ? { namespaces: event.paths } : {})),
    recordFiles: assign(({ event }) =>
      event.type === 'SandboxFilesPrepared' ? { filesDir: event.dir, shmPath: event.shmPath ?? null } : {}),
    recordNetwork: assign(({ event }) =>
      event.type === 'SandboxNetworkAttached' ? { ips: event.ips, network: event.network } : {}),
    recordInfra: assign(({ event }) =>
      event.type === 'SandboxInfraStarted'
        ? { infra: { containerId: event.containerId, pid: event.pid }, infraRuntimeId: event.containerId }
        : {}),
    recordInfraImage: assign(({ event }) => (event.type === 'SandboxInfraImageResolved' ? { infraImage: event.image } : {})),
    recordInfraRootfs: assign(({ event }) => (event.type === 'SandboxInfraRootfsMounted' ? { infraRootfs: event.path } : {})),
    recordInfraBundle: assign(({ event }) => (event.type === 'SandboxInfraSpecWritten' ? { infraBundle: event.bundle } : {})),
    recordResources: assign(({ event }) =>
      event.type === 'SandboxResourcesUpdated' ? { overhead: event.overhead, resources: event.resources } : {}),
    releaseInfra: assign({ infra: null }),
    releaseInfraRuntime: assign({ infraRuntimeId: null }),
    releaseInfraRootfs: assign({ infraRootfs: null, infraBundle: null }),
    releaseNetwork: assign({ network: null }),
    releaseFiles: assign({ filesDir: null, shmPath: null }),
    releaseNamespaces: assign({ namespaces: {} }),
  },
}).createMachine({
  id: 'sandbox',
  initial: 'new',
  // An observation, not a transition: whatever the state, the log keeps what was found.
  on: {
    SandboxMountMissingObserved: { actions: 'observe' },
  },
  context: ({ input }) => ({
    id: input.id,
    config: null,
    runtimeHandler: '',
    nameKey: '',
    createdAt: '0',
    namespaces: {},
    filesDir: null,
    shmPath: null,
    network: null,
    ips: [],
    infra: null,
    infraImage: null,
    infraRootfs: null,
    infraBundle: null,
    infraRuntimeId: null,
    failure: null,
    notReadyReason: null,
    overhead: null,
    resources: null,
  }),
  states: {
    new: {
      on: {
        SandboxRunRequested: {
          target: 'creating',
          actions: assign(({ event }) => ({
            config: event.config,
            runtimeHandler: event.runtimeHandler,
            nameKey: event.nameKey,
            createdAt: event.createdAt,
            overhead: event.config.linux?.overhead ?? null,
            resources: event.config.linux?.resources ?? null,
          })),
        },
      },
    },
    creating: {
      on: {
        SandboxNamespacesPinned: { actions: 'recordNamespaces' },
        SandboxFilesPrepared: { actions: 'recordFiles' },
        SandboxNetworkAttached: { actions: 'recordNetwork' },
        SandboxInfraImageResolved: { actions: 'recordInfraImage' },
        SandboxInfraRootfsMounted: { actions: 'recordInfraRootfs' },
        SandboxInfraSpecWritten: { actions: 'recordInfraBundle' },
        SandboxInfraStarted: { actions: 'recordInfra' },
        SandboxReady: { target: 'ready' },
        SandboxRunFailed: {
          target: 'failed',
          actions: assign(({ event }) => ({ failure: { step: event.step, message: event.message, ...(event.kind && { kind: event.kind }) } })),
        },
      },
    },
    ready: {
      on: {
        SandboxStopRequested: { target: 'stopping' },
        SandboxResourcesUpdated: { actions: 'recordResources' },
        SandboxNotReadyObserved: {
          target: 'notready',
          actions: assign(({ event }) => ({ notReadyReason: event.reason })),
        },
      },
    },
    stopping: {
      on: {
        SandboxInfraStopped: releases.SandboxInfraStopped,
        SandboxNetworkDetached: releases.SandboxNetworkDetached,
        SandboxStopped: { target: 'notready', actions: assign({ notReadyReason: 'stopped' }) },
      },
    },
    notready: {
      on: {
        // A pod found not ready (a reboot, say) may still hold its network: stopping it again
        // releases what is left.
        SandboxStopRequested: { target: 'stopping' },
        SandboxResourcesUpdated: { actions: 'recordResources' },
        SandboxRemoveRequested: { target: 'removing' },
      },
    },
    failed: {
      on: {
        ...releases,
        SandboxRemoved: { target: 'removed' },
      },
    },
    removing: {
      on: {
        ...releases,
        SandboxRemoved: { target: 'removed' },
      },
    },
    removed: { type: 'final' },
  },
});

export type SandboxStateName = 'new' | 'creating' | 'ready' | 'stopping' | 'notready' | 'failed' | 'removing' | 'removed';
