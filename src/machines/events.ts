// The domain events: facts, in the past tense, each with a schema version. They are both the
// rows of the event log and the events the machines transition on, so a stream's state is
// exactly the fold of its rows (DESIGN.md rule 2).
import type { PodSandboxConfig__Output } from '../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig__Output } from '../cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { RecordedKind } from '../errors.js';

export type StreamKind = 'sandbox' | 'container' | 'image' | 'pull' | 'runtime';

/** Nanoseconds since the epoch, as a decimal string (JSON has no 64-bit integers). */
/** The uid, gid and supplementary groups a container's process runs with. */
export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

/** An image mounted read-only into a container: the index of its mount in the config, and the image. */
export interface ImageVolume {
  mount: number;
  image: ImageRef;
}

export type NsTime = string;

export interface NamespacePaths {
  net?: string;
  ipc?: string;
  uts?: string;
  pid?: string;
}

// ---- pod sandboxes -------------------------------------------------------------------------

export type SandboxEvent =
  | { type: 'SandboxRunRequested'; config: PodSandboxConfig__Output; runtimeHandler: string; nameKey: string; createdAt: NsTime }
  | { type: 'SandboxNamespacesPinned'; paths: NamespacePaths }
  | { type: 'SandboxFilesPrepared'; dir: string; shmPath?: string }
  | { type: 'SandboxNetworkAttached'; ips: string[]; network: string }
  | { type: 'SandboxInfraImageResolved'; image: ImageRef }
  | { type: 'SandboxInfraRootfsMounted'; path: string }
  | { type: 'SandboxInfraSpecWritten'; bundle: string }
  | { type: 'SandboxInfraStarted'; containerId: string; pid: number }
  | { type: 'SandboxReady' }
  | { type: 'SandboxRunFailed'; step: string; message: string; kind?: CallerFault }
  | { type: 'SandboxStopRequested' }
  | { type: 'SandboxInfraStopped' }
  | { type: 'SandboxInfraDeleted' }
  | { type: 'SandboxInfraRootfsUnmounted' }
  | { type: 'SandboxNetworkDetached' }
  | { type: 'SandboxStopped' }
  | { type: 'SandboxNotReadyObserved'; reason: string }
  /** A mount the log says the pod holds (its shm, the infra rootfs) was not mounted at start-up. */
  | { type: 'SandboxMountMissingObserved'; path: string; what: string }
  | { type: 'SandboxResourcesUpdated'; overhead: LinuxContainerResources__Output | null; resources: LinuxContainerResources__Output | null }
  | { type: 'SandboxRemoveRequested' }
  | { type: 'SandboxFilesRemoved' }
  | { type: 'SandboxNamespacesUnpinned' }
  | { type: 'SandboxRemoved' };

// ---- containers ----------------------------------------------------------------------------

/**
 * Error kinds recorded with a failure so the RPC answers with them: the request's own fault, or a
 * full disk (RESOURCE_EXHAUSTED); a failure without one is INTERNAL.
 */
export type CallerFault = RecordedKind;

export interface ImageRef {
  /** What the CRI request named. */
  requested: string;
  /** The image id (config digest) it resolved to. */
  id: string;
  /** A digest reference for ContainerStatus.image_ref. */
  ref: string;
}

export interface ExitFacts {
  exitCode: number;
  reason: string;
  message?: string;
  finishedAt: NsTime;
}

export type ContainerEvent =
  /** imageVolumes: the images config.mounts[mount].image named, resolved when the create was asked (KEP-4639). */
  | { type: 'ContainerCreateRequested'; sandboxId: string; config: ContainerConfig__Output; image: ImageRef; imageVolumes?: ImageVolume[]; nameKey: string; logPath: string; createdAt: NsTime }
  | { type: 'ContainerRootfsMounted'; path: string }
  /** user: who the process runs as (ContainerStatus.user); stopSignal: the effective stop signal (config, else image, else SIGTERM). */
  | { type: 'ContainerSpecWritten'; bundle: string; user?: ProcessUser; stopSignal?: string }
  | { type: 'ContainerCreated'; pid: number; conmonPid: number }
  /** `kind` is set when the request itself was at fault (a user not in the image, say), so the RPC answers with it. */
  | { type: 'ContainerCreateFailed'; step: string; message: string; kind?: CallerFault }
  | { type: 'ContainerStartRequested' }
  | { type: 'ContainerStarted'; startedAt: NsTime }
  | { type: 'ContainerStartFailed'; message: string; finishedAt: NsTime }
  | { type: 'ContainerStopRequested'; timeoutSeconds: number }
  | ({ type: 'ContainerExited' } & ExitFacts)
  | ({ type: 'ContainerExitObserved' } & ExitFacts)
  | { type: 'ContainerStateUnknownObserved'; reason: string }
  /** conmon is gone while the process lives on: crisp itself watches the process from now on. */
  | { type: 'ContainerMonitorLost'; conmonPid: number | null; message: string }
  /** The rootfs the log says is mounted was not, at start-up. */
  | { type: 'ContainerRootfsMountMissingObserved'; path: string }
  /** UpdateContainerResources, recorded before the runtime is asked: the planner applies it. */
  | { type: 'ContainerResourcesUpdateRequested'; resources: LinuxContainerResources__Output }
  | { type: 'ContainerResourcesUpdated'; resources: LinuxContainerResources__Output }
  /** The runtime refused the requested resources; the ones applied before stay. */
  | { type: 'ContainerResourcesUpdateFailed'; message: string; kind?: CallerFault }
  | { type: 'ContainerRemoveRequested' }
  | { type: 'ContainerRuntimeDeleted' }
  | { type: 'ContainerRootfsUnmounted' }
  | { type: 'ContainerRemoved' };

// ---- images --------------------------------------------------------------------------------

export interface ImageLayerFacts {
  digest: string;
  diffId: string;
  chainId: string;
  size: number;
  mediaType: string;
}

export type ImageEvent =
  | { type: 'ImagePulled'; repoTags: string[]; repoDigests: string[]; size: number; layers: ImageLayerFacts[]; manifestDigest: string; user: string; pulledAt: NsTime }
  | { type: 'ImageTagged'; repoTag: string }
  | { type: 'ImageUntagged'; repoTag: string }
  | { type: 'ImagePinned'; pinned: boolean }
  | { type: 'ImageRemoved' };

// ---- pulls: one stream per PullImage, so a pull's timing and layers are in the log even
// before the image id is known, and a failed pull is a fact too.

export type PullEvent =
  | { type: 'ImagePullRequested'; reference: string; requestedAt: NsTime }
  | { type: 'ImageLayerStored'; index: number; digest: string; chainId: string; size: number; reused: boolean }
  | { type: 'ImagePullCompleted'; imageId: string; servedBy: string }
  | { type: 'ImagePullFailed'; message: string };

// ---- the runtime itself --------------------------------------------------------------------

export type RuntimeEvent =
  | { type: 'RuntimeConfigUpdated'; podCidr: string }
  | { type: 'DaemonStarted'; version: string; pid: number }
  | { type: 'DaemonStopped'; pid: number }
  // Start-up reconcile: the boot id changed (or the runroot marker vanished) since the last start.
  | { type: 'NodeRebootDetected'; bootId: string; previousBootId: string | null }
  // Start-up reconcile: something on the node no stream of the log owns, released.
  | { type: 'LeakReclaimed'; what: string; path: string }
  // Image content no image refers to (a failed pull's layers, a removed image's), deleted while running.
  | { type: 'ContentCollected'; reason: string; layers: string[]; blobs: string[] };

export type DomainEvent = SandboxEvent | ContainerEvent | ImageEvent | PullEvent | RuntimeEvent;
export type DomainEventType = DomainEvent['type'];

export interface EventsByKind {
  sandbox: SandboxEvent;
  container: ContainerEvent;
  image: ImageEvent;
  pull: PullEvent;
  runtime: RuntimeEvent;
}

/**
 * Schema version of each event's data. Bump a type's number when its shape changes, and teach
 * src/events/upcast.ts to read the older shape: rows are never rewritten.
 */
export const SCHEMA_VERSIONS: Record<DomainEventType, number> = {
  SandboxRunRequested: 1, SandboxNamespacesPinned: 1, SandboxFilesPrepared: 1, SandboxNetworkAttached: 1,
  SandboxInfraStarted: 1, SandboxReady: 1, SandboxRunFailed: 1, SandboxStopRequested: 1, SandboxInfraStopped: 1,
  SandboxNetworkDetached: 1, SandboxStopped: 1, SandboxNotReadyObserved: 1, SandboxMountMissingObserved: 1, SandboxResourcesUpdated: 1, SandboxRemoveRequested: 1,
  SandboxFilesRemoved: 1, SandboxNamespacesUnpinned: 1, SandboxRemoved: 1,
  SandboxInfraImageResolved: 1, SandboxInfraRootfsMounted: 1, SandboxInfraSpecWritten: 1, SandboxInfraDeleted: 1,
  SandboxInfraRootfsUnmounted: 1,
  ContainerCreateRequested: 1, ContainerRootfsMounted: 1, ContainerSpecWritten: 1, ContainerCreated: 1,
  ContainerCreateFailed: 1, ContainerStartRequested: 1, ContainerStarted: 1, ContainerStartFailed: 1,
  ContainerStopRequested: 1, ContainerExited: 1, ContainerExitObserved: 1, ContainerStateUnknownObserved: 1,
  ContainerMonitorLost: 1, ContainerRootfsMountMissingObserved: 1,
  ContainerResourcesUpdateRequested: 1, ContainerResourcesUpdated: 1, ContainerResourcesUpdateFailed: 1,
  ContainerRemoveRequested: 1, ContainerRuntimeDeleted: 1, ContainerRootfsUnmounted: 1, ContainerRemoved: 1,
  ImagePulled: 1, ImageTagged: 1, ImageUntagged: 1, ImagePinned: 1, ImageRemoved: 1,
  ImagePullRequested: 1, ImageLayerStored: 1, ImagePullCompleted: 1, ImagePullFailed: 1,
  RuntimeConfigUpdated: 1, DaemonStarted: 1, DaemonStopped: 1, NodeRebootDetected: 1, LeakReclaimed: 1,
  ContentCollected: 1,
};

