import { assign, setup } from 'xstate';
import type { ContainerConfig__Output } from '../cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { CallerFault, ContainerEvent, ExitFacts, ImageRef, ImageVolume, NsTime, ProcessUser } from './events.js';

export interface ContainerContext {
  id: string;
  sandboxId: string;
  config: ContainerConfig__Output | null;
  image: ImageRef | null;
  /** Images mounted as volumes (absent in logs older than image volumes). */
  imageVolumes?: ImageVolume[];
  nameKey: string;
  logPath: string;
  createdAt: NsTime;
  rootfs: string | null;
  bundle: string | null;
  /** Who the process runs as, from the spec written (absent in logs older than this field). */
  user?: ProcessUser | null;
  /** The signal StopContainer sends first (absent in logs older than this field: the image's is read then). */
  stopSignal?: string | null;
  pid: number | null;
  conmonPid: number | null;
  runtimeCreated: boolean;
  startedAt: NsTime | null;
  stopTimeoutSeconds: number | null;
  exit: ExitFacts | null;
  failure: { step: string; message: string; kind?: CallerFault } | null;
  unknownReason: string | null;
  /** Set when conmon was lost and crisp watches the process itself (its exit code will be unknown). */
  monitorLost: string | null;
  /** The resources last applied by UpdateContainerResources; null means those of the config. */
  resources: LinuxContainerResources__Output | null;
  /** Resources requested and not yet applied (absent in logs older than the request event). */
  pendingResources?: LinuxContainerResources__Output | null;
  /** Why the last requested resources were not applied; cleared by the next request. */
  resourcesFailure?: { message: string; kind?: CallerFault } | null;
  // Releases are facts of their own: "never acquired" and "released" look alike otherwise, and
  // an unwind after a failure must know which of the two it is looking at.
  runtimeDeleted: boolean;
  rootfsReleased: boolean;
}

const exits = {
  ContainerExited: { target: 'exited', actions: 'recordExit' },
  ContainerExitObserved: { target: 'exited', actions: 'recordExit' },
} as const;

// conmon gone, process alive: an observation that changes who watches, not the state.
const monitorLoss = {
  ContainerMonitorLost: { actions: 'recordMonitorLost' },
} as const;

const resourceUpdate = {
  ContainerResourcesUpdateRequested: { actions: 'requestResources' },
  ContainerResourcesUpdated: { actions: 'recordResources' },
  ContainerResourcesUpdateFailed: { actions: 'failResources' },
} as const;

const releases = {
  ContainerRuntimeDeleted: { actions: 'releaseRuntime' },
  ContainerRootfsUnmounted: { actions: 'releaseRootfs' },
} as const;

export const containerMachine = setup({
  types: {
    context: {} as ContainerContext,
    events: {} as ContainerEvent,
    input: {} as { id: string },
  },
  actions: {
    recordExit: assign(({ event }) =>
      event.type === 'ContainerExited' || event.type === 'ContainerExitObserved'
        ? {
            exit: { exitCode: event.exitCode, reason: event.reason, message: event.message, finishedAt: event.finishedAt },
            unknownReason: null,
          }
        : {}),
    recordUnknown: assign(({ event }) => (event.type === 'ContainerStateUnknownObserved' ? { unknownReason: event.reason } : {})),
    // Kept in the log for `crisp replay`; the state has nothing to change.
    observe: assign(() => ({})),
    recordMonitorLost: assign(({ event }) => (event.type === 'ContainerMonitorLost' ? { monitorLost: event.message } : {})),
    recordStopRequest: assign(({ event }) =>
      event.type === 'ContainerStopRequested' ? { stopTimeoutSeconds: event.timeoutSeconds } : {}),
    requestResources: assign(({ event }) =>
      event.type === 'ContainerResourcesUpdateRequested' ? { pendingResources: event.resources, resourcesFailure: null } : {}),
    recordResources: assign(({ event }) => (event.type === 'ContainerResourcesUpdated' ? { resources: event.resources, pendingResources: null } : {})),
    failResources: assign(({ event }) =>
      event.type === 'ContainerResourcesUpdateFailed'
        ? { pendingResources: null, resourcesFailure: { message: event.message, ...(event.kind && { kind: event.kind }) } }
        : {}),
    releaseRuntime: assign({ runtimeCreated: false, pid: null, conmonPid: null, runtimeDeleted: true }),
    releaseRootfs: assign({ rootfs: null, rootfsReleased: true }),
  },
}).createMachine({
  id: 'container',
  initial: 'new',
  // An observation, not a transition: whatever the state, the log keeps what was found.
  on: {
    ContainerRootfsMountMissingObserved: { actions: 'observe' },
  },
  context: ({ input }) => ({
    id: input.id,
    sandboxId: '',
    config: null,
    image: null,
    nameKey: '',
    logPath: '',
    createdAt: '0',
    rootfs: null,
    bundle: null,
    pid: null,
    conmonPid: null,
    runtimeCreated: false,
    startedAt: null,
    stopTimeoutSeconds: null,
    exit: null,
    failure: null,
    unknownReason: null,
    monitorLost: null,
    resources: null,
    pendingResources: null,
    resourcesFailure: null,
    runtimeDeleted: false,
    rootfsReleased: false,
  }),
  states: {
    new: {
      on: {
        ContainerCreateRequested: {
          target: 'creating',
          actions: assign(({ event }) => ({
            sandboxId: event.sandboxId,
            config: event.config,
            image: event.image,
            imageVolumes: event.imageVolumes ?? [],
            nameKey: event.nameKey,
            logPath: event.logPath,
            createdAt: event.createdAt,
          })),
        },
      },
    },
    creating: {
      on: {
        ContainerRootfsMounted: { actions: assign(({ event }) => ({ rootfs: event.path })) },
        ContainerSpecWritten: {
          actions: assign(({ event }) => ({ bundle: event.bundle, user: event.user ?? null, stopSignal: event.stopSignal ?? null })),
        },
        ContainerCreated: {
          target: 'created',
          actions: assign(({ event }) => ({ pid: event.pid, conmonPid: event.conmonPid, runtimeCreated: true })),
        },
        ContainerCreateFailed: {
          target: 'createFailed',
          actions: assign(({ event }) => ({ failure: { step: event.step, message: event.message, ...(event.kind && { kind: event.kind }) } })),
        },
      },
    },
    created: {
      on: {
        ...monitorLoss,
        ContainerStartRequested: { target: 'starting' },
        ContainerStopRequested: { target: 'stopping', actions: 'recordStopRequest' },
        ContainerRemoveRequested: { target: 'removing' },
        ContainerStateUnknownObserved: { target: 'unknown', actions: 'recordUnknown' },
        ContainerExitObserved: exits.ContainerExitObserved,
        ...resourceUpdate,
      },
    },
    starting: {
      on: {
        ...monitorLoss,
        ContainerStarted: { target: 'running', actions: assign(({ event }) => ({ startedAt: event.startedAt })) },
        ContainerStartFailed: {
          target: 'exited',
          actions: assign(({ event }) => ({
            exit: { exitCode: 128, reason: 'StartError', message: event.message, finishedAt: event.finishedAt },
          })),
        },
        ...exits,
        ...resourceUpdate,
      },
    },
    running: {
      on: {
        ...monitorLoss,
        ContainerStopRequested: { target: 'stopping', actions: 'recordStopRequest' },
        ContainerStateUnknownObserved: { target: 'unknown', actions: 'recordUnknown' },
        ...exits,
        ...resourceUpdate,
      },
    },
    stopping: {
      on: {
        ...monitorLoss,
        // kubelet may ask again with a shorter grace period while a stop is under way.
        ContainerStopRequested: { actions: 'recordStopRequest' },
        ContainerStateUnknownObserved: { target: 'unknown', actions: 'recordUnknown' },
        ...exits,
        ...resourceUpdate,
      },
    },
    exited: {
      on: {
        ContainerRemoveRequested: { target: 'removing' },
      },
    },
    unknown: {
      on: {
        ...monitorLoss,
        ContainerStopRequested: { target: 'stopping', actions: 'recordStopRequest' },
        ContainerRemoveRequested: { target: 'removing' },
        ...exits,
      },
    },
    createFailed: {
      on: {
        ...releases,
        ContainerRemoved: { target: 'removed' },
      },
    },
    removing: {
      on: {
        ...releases,
        ContainerRemoved: { target: 'removed' },
      },
    },
    removed: { type: 'final' },
  },
});

export type ContainerStateName =
  | 'new' | 'creating' | 'created' | 'starting' | 'running' | 'stopping' | 'exited' | 'unknown'
  | 'createFailed' | 'removing' | 'removed';

/** Every image whose layers the container holds mounted: its own and its image volumes'. */
export function imagesOf(c: Pick<ContainerContext, 'image' | 'imageVolumes'>): string[] {
  return [...(c.image ? [c.image.id] : []), ...(c.imageVolumes ?? []).map((v) => v.image.id)];
}
