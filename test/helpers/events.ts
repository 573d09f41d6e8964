import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerEvent, EventsByKind, SandboxEvent, StreamKind } from '../../src/machines/events.js';
import { initialSnapshot, next, type Snapshot } from '../../src/machines/index.js';
import { randomBytes } from 'node:crypto';

/** The state a stream's events lead to from its start. */
export function fold<K extends StreamKind>(kind: K, id: string, events: Iterable<EventsByKind[K]>): Snapshot {
  let snapshot = initialSnapshot(kind, id);
  for (const event of events) snapshot = next(kind, snapshot, event);
  return snapshot;
}

export const hexId = () => randomBytes(32).toString('hex');

export function sandboxConfig(name = 'pod', labels: Record<string, string> = {}): PodSandboxConfig__Output {
  return { metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 }, labels, annotations: {}, hostname: name } as unknown as PodSandboxConfig__Output;
}

export function containerConfig(name = 'app'): ContainerConfig__Output {
  return { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, labels: {}, annotations: {} } as unknown as ContainerConfig__Output;
}

export const sandboxRun = (name = 'pod'): SandboxEvent => ({
  type: 'SandboxRunRequested', config: sandboxConfig(name), runtimeHandler: '', nameKey: `${name}_default_uid-${name}_0`, createdAt: '1700000000000000000',
});

export const containerCreate = (sandboxId: string, name = 'app'): ContainerEvent => ({
  type: 'ContainerCreateRequested', sandboxId, config: containerConfig(name), image: { requested: 'busybox', id: 'sha256:aa', ref: 'docker.io/library/busybox@sha256:bb' },
  nameKey: `${name}_pod_default_uid_0`, logPath: '/var/log/pods/x/app/0.log', createdAt: '1700000000000000001',
});

export const exited = (exitCode = 0): ContainerEvent => ({ type: 'ContainerExited', exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', finishedAt: '1700000000000000009' });

/** One legal container life, creation to removal. */
export function containerLife(sandboxId: string): ContainerEvent[] {
  return [
    containerCreate(sandboxId),
    { type: 'ContainerRootfsMounted', path: '/r' },
    { type: 'ContainerSpecWritten', bundle: '/b' },
    { type: 'ContainerCreated', pid: 10, conmonPid: 9 },
    { type: 'ContainerStartRequested' },
    { type: 'ContainerStarted', startedAt: '1700000000000000005' },
    { type: 'ContainerStopRequested', timeoutSeconds: 10 },
    exited(0),
    { type: 'ContainerRemoveRequested' },
    { type: 'ContainerRuntimeDeleted' },
    { type: 'ContainerRootfsUnmounted' },
    { type: 'ContainerRemoved' },
  ];
}
