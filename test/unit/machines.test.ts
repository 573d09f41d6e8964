import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor } from 'xstate';
import { accepts, initialSnapshot, next, xstateInitialSnapshot, sandboxMachine, containerMachine, imageMachine, pullMachine, runtimeMachine, type Snapshot } from '../../src/machines/index.js';
import type { ContainerEvent, DomainEvent, ImageEvent, PullEvent, RuntimeEvent, SandboxEvent, StreamKind } from '../../src/machines/events.js';
import { containerCreate, exited, fold, hexId, sandboxRun } from '../helpers/events.js';
import { criResources } from '../helpers/cri-defaults.js';


// One sample of every event type, per stream kind.
const SANDBOX_EVENTS: SandboxEvent[] = [
  sandboxRun(),
  { type: 'SandboxNamespacesPinned', paths: { net: '/run/n', ipc: '/run/i', uts: '/run/u' } },
  { type: 'SandboxFilesPrepared', dir: '/run/f', shmPath: '/run/f/shm' },
  { type: 'SandboxNetworkAttached', ips: ['10.1.0.2'], network: 'crisp' },
  { type: 'SandboxInfraImageResolved', image: { requested: 'registry.k8s.io/pause:3.9', id: 'sha256:pp', ref: 'registry.k8s.io/pause@sha256:qq' } },
  { type: 'SandboxInfraRootfsMounted', path: '/run/s/infra/rootfs' },
  { type: 'SandboxInfraSpecWritten', bundle: '/run/s/infra/bundle' },
  { type: 'SandboxInfraStarted', containerId: 'c', pid: 42 },
  { type: 'SandboxReady' },
  { type: 'SandboxRunFailed', step: 'cni-add', message: 'boom' },
  { type: 'SandboxStopRequested' },
  { type: 'SandboxInfraStopped' },
  { type: 'SandboxInfraDeleted' },
  { type: 'SandboxInfraRootfsUnmounted' },
  { type: 'SandboxNetworkDetached' },
  { type: 'SandboxStopped' },
  { type: 'SandboxNotReadyObserved', reason: 'namespaces gone after reboot' },
  { type: 'SandboxResourcesUpdated', overhead: null, resources: criResources({ cpu_shares: '512' }) },
  { type: 'SandboxRemoveRequested' },
  { type: 'SandboxFilesRemoved' },
  { type: 'SandboxNamespacesUnpinned' },
  { type: 'SandboxRemoved' },
];

const CONTAINER_EVENTS: ContainerEvent[] = [
  containerCreate('s'),
  { type: 'ContainerRootfsMounted', path: '/r' },
  { type: 'ContainerSpecWritten', bundle: '/b' },
  { type: 'ContainerCreated', pid: 10, conmonPid: 9 },
  { type: 'ContainerCreateFailed', step: 'runc-create', message: 'no' },
  { type: 'ContainerStartRequested' },
  { type: 'ContainerStarted', startedAt: '5' },
  { type: 'ContainerStartFailed', message: 'exec format error', finishedAt: '6' },
  { type: 'ContainerStopRequested', timeoutSeconds: 3 },
  exited(3),
  { type: 'ContainerExitObserved', exitCode: 137, reason: 'Error', finishedAt: '7' },
  { type: 'ContainerStateUnknownObserved', reason: 'runc state failed' },
  { type: 'ContainerResourcesUpdateRequested', resources: criResources({ memory_limit_in_bytes: '1048576' }) },
  { type: 'ContainerResourcesUpdated', resources: criResources({ memory_limit_in_bytes: '1048576' }) },
  { type: 'ContainerResourcesUpdateFailed', message: 'refused' },
  { type: 'ContainerRemoveRequested' },
  { type: 'ContainerRuntimeDeleted' },
  { type: 'ContainerRootfsUnmounted' },
  { type: 'ContainerRemoved' },
];

const IMAGE_EVENTS: ImageEvent[] = [
  { type: 'ImagePulled', repoTags: ['docker.io/library/busybox:latest'], repoDigests: ['docker.io/library/busybox@sha256:1'], size: 100, layers: [], manifestDigest: 'sha256:1', user: '', pulledAt: '1' },
  { type: 'ImageTagged', repoTag: 'x:1' },
  { type: 'ImageUntagged', repoTag: 'x:1' },
  { type: 'ImagePinned', pinned: true },
  { type: 'ImageRemoved' },
];

const RUNTIME_EVENTS: RuntimeEvent[] = [
  { type: 'RuntimeConfigUpdated', podCidr: '10.0.0.0/16' },
  { type: 'DaemonStarted', version: '0.1.0', pid: 1 },
  { type: 'DaemonStopped', pid: 1 },
  { type: 'NodeRebootDetected', bootId: 'b', previousBootId: 'a' },
  { type: 'LeakReclaimed', what: 'mount', path: '/x' },
];

const PULL_EVENTS: PullEvent[] = [
  { type: 'ImagePullRequested', reference: 'docker.io/library/busybox:latest', requestedAt: '1' },
  { type: 'ImageLayerStored', index: 0, digest: 'sha256:1', chainId: 'sha256:2', size: 10, reused: false },
  { type: 'ImagePullCompleted', imageId: 'sha256:3', servedBy: 'docker.io' },
  { type: 'ImagePullFailed', message: 'unauthorized' },
];

const SAMPLES: Record<StreamKind, DomainEvent[]> = {
  sandbox: SANDBOX_EVENTS, container: CONTAINER_EVENTS, image: IMAGE_EVENTS, pull: PULL_EVENTS, runtime: RUNTIME_EVENTS,
};

// The specification: what each state accepts. Everything else is illegal.
const ACCEPTS: Record<StreamKind, Record<string, string[]>> = {
  sandbox: {
    new: ['SandboxRunRequested'],
    creating: ['SandboxNamespacesPinned', 'SandboxFilesPrepared', 'SandboxNetworkAttached', 'SandboxInfraImageResolved',
      'SandboxInfraRootfsMounted', 'SandboxInfraSpecWritten', 'SandboxInfraStarted', 'SandboxReady', 'SandboxRunFailed'],
    ready: ['SandboxStopRequested', 'SandboxNotReadyObserved', 'SandboxResourcesUpdated'],
    stopping: ['SandboxInfraStopped', 'SandboxNetworkDetached', 'SandboxStopped'],
    notready: ['SandboxStopRequested', 'SandboxRemoveRequested', 'SandboxResourcesUpdated'],
    failed: ['SandboxInfraStopped', 'SandboxInfraDeleted', 'SandboxInfraRootfsUnmounted', 'SandboxNetworkDetached', 'SandboxFilesRemoved',
      'SandboxNamespacesUnpinned', 'SandboxRemoved'],
    removing: ['SandboxInfraStopped', 'SandboxInfraDeleted', 'SandboxInfraRootfsUnmounted', 'SandboxNetworkDetached', 'SandboxFilesRemoved',
      'SandboxNamespacesUnpinned', 'SandboxRemoved'],
    removed: [],
  },
  container: {
    new: ['ContainerCreateRequested'],
    creating: ['ContainerRootfsMounted', 'ContainerSpecWritten', 'ContainerCreated', 'ContainerCreateFailed'],
    created: ['ContainerStartRequested', 'ContainerStopRequested', 'ContainerRemoveRequested', 'ContainerStateUnknownObserved', 'ContainerExitObserved', 'ContainerResourcesUpdateRequested', 'ContainerResourcesUpdated', 'ContainerResourcesUpdateFailed'],
    starting: ['ContainerStarted', 'ContainerStartFailed', 'ContainerExited', 'ContainerExitObserved', 'ContainerResourcesUpdateRequested', 'ContainerResourcesUpdated', 'ContainerResourcesUpdateFailed'],
    running: ['ContainerStopRequested', 'ContainerStateUnknownObserved', 'ContainerExited', 'ContainerExitObserved', 'ContainerResourcesUpdateRequested', 'ContainerResourcesUpdated', 'ContainerResourcesUpdateFailed'],
    stopping: ['ContainerStopRequested', 'ContainerStateUnknownObserved', 'ContainerExited', 'ContainerExitObserved', 'ContainerResourcesUpdateRequested', 'ContainerResourcesUpdated', 'ContainerResourcesUpdateFailed'],
    exited: ['ContainerRemoveRequested'],
    unknown: ['ContainerStopRequested', 'ContainerRemoveRequested', 'ContainerExited', 'ContainerExitObserved'],
    createFailed: ['ContainerRuntimeDeleted', 'ContainerRootfsUnmounted', 'ContainerRemoved'],
    removing: ['ContainerRuntimeDeleted', 'ContainerRootfsUnmounted', 'ContainerRemoved'],
    removed: [],
  },
  image: {
    absent: ['ImagePulled'],
    present: ['ImagePulled', 'ImageTagged', 'ImageUntagged', 'ImagePinned', 'ImageRemoved'],
  },
  pull: {
    new: ['ImagePullRequested'],
    pulling: ['ImageLayerStored', 'ImagePullCompleted', 'ImagePullFailed'],
    completed: [],
    failed: [],
  },
  runtime: {
    stopped: ['RuntimeConfigUpdated', 'DaemonStarted', 'NodeRebootDetected', 'LeakReclaimed'],
    running: ['RuntimeConfigUpdated', 'DaemonStarted', 'DaemonStopped', 'NodeRebootDetected', 'LeakReclaimed'],
  },
};

const sample = (kind: StreamKind, type: string) => SAMPLES[kind].find((e) => e.type === type)!;

/** Breadth-first over the machine: a shortest path of events to each reachable state. */
function pathsToStates(kind: StreamKind): Map<string, DomainEvent[]> {
  const paths = new Map<string, DomainEvent[]>([[String(initialSnapshot(kind, 'x').value), []]]);
  const queue = [...paths.keys()];
  while (queue.length) {
    const state = queue.shift()!;
    const path = paths.get(state)!;
    const snapshot = fold(kind, 'x', path as never);
    for (const event of SAMPLES[kind]) {
      if (!accepts(snapshot, event)) continue;
      const to = String(next(kind, snapshot, event).value);
      if (!paths.has(to)) {
        paths.set(to, [...path, event]);
        queue.push(to);
      }
    }
  }
  return paths;
}

for (const kind of Object.keys(ACCEPTS) as StreamKind[]) {
  test(`${kind} machine: every state accepts exactly its events and refuses every other`, () => {
    const paths = pathsToStates(kind);
    assert.deepEqual([...paths.keys()].sort(), Object.keys(ACCEPTS[kind]).sort(), 'every state is reachable and none is unspecified');
    for (const [state, path] of paths) {
      const snapshot = fold(kind, 'x', path as never);
      const accepted = SAMPLES[kind].filter((e) => accepts(snapshot, e)).map((e) => e.type);
      assert.deepEqual(accepted.sort(), [...ACCEPTS[kind][state]!].sort(), `${kind} in ${state}`);
    }
  });
}

test('sandbox machine: transitions land where the lifecycle says and record what is held', () => {
  const steps: [string, string][] = [];
  let s: Snapshot = initialSnapshot('sandbox', 'p');
  for (const type of ['SandboxRunRequested', 'SandboxNamespacesPinned', 'SandboxFilesPrepared', 'SandboxNetworkAttached', 'SandboxReady',
    'SandboxStopRequested', 'SandboxNetworkDetached', 'SandboxStopped', 'SandboxRemoveRequested', 'SandboxFilesRemoved', 'SandboxNamespacesUnpinned', 'SandboxRemoved']) {
    s = next('sandbox', s, sample('sandbox', type));
    steps.push([type, String(s.value)]);
    if (type === 'SandboxNetworkAttached') assert.deepEqual(s.context.ips, ['10.1.0.2']);
    if (type === 'SandboxNetworkDetached') assert.equal(s.context.network, null);
  }
  assert.deepEqual(steps.map(([, state]) => state), [
    'creating', 'creating', 'creating', 'creating', 'ready', 'stopping', 'stopping', 'notready', 'removing', 'removing', 'removing', 'removed',
  ]);
  assert.equal(s.status, 'done');
  assert.deepEqual(s.context.namespaces, {});
  const failed = fold('sandbox', 'p', [sandboxRun(), { type: 'SandboxNamespacesPinned', paths: { net: '/n' } }, { type: 'SandboxRunFailed', step: 'cni-add', message: 'x' }]);
  assert.equal(failed.value, 'failed');
  assert.deepEqual(failed.context.failure, { step: 'cni-add', message: 'x' });
  assert.deepEqual(failed.context.namespaces, { net: '/n' }, 'a failed sandbox still holds what it must release');
});

test('sandbox machine: the infra container is held from its image to its rootfs, and each part is released on its own', () => {
  const infraLife = ['SandboxInfraImageResolved', 'SandboxInfraRootfsMounted', 'SandboxInfraSpecWritten', 'SandboxInfraStarted'];
  const ready = fold('sandbox', 'p', [sandboxRun(), ...infraLife.map((t) => sample('sandbox', t)), sample('sandbox', 'SandboxReady')] as SandboxEvent[]);
  assert.equal(ready.value, 'ready');
  assert.deepEqual(ready.context.infra, { containerId: 'c', pid: 42 });
  assert.equal(ready.context.infraImage.id, 'sha256:pp');
  assert.deepEqual([ready.context.infraRootfs, ready.context.infraBundle, ready.context.infraRuntimeId], ['/run/s/infra/rootfs', '/run/s/infra/bundle', 'c']);
  const stopped = fold('sandbox', 'p', [sandboxRun(), ...infraLife.map((t) => sample('sandbox', t)), sample('sandbox', 'SandboxReady'),
    { type: 'SandboxStopRequested' }, { type: 'SandboxInfraStopped' }, { type: 'SandboxStopped' }] as SandboxEvent[]);
  assert.equal(stopped.context.infra, null, 'a stopped infra has no pid');
  assert.equal(stopped.context.infraRuntimeId, 'c', 'its runtime state is held until removal');
  let removing = next('sandbox', stopped, { type: 'SandboxRemoveRequested' });
  removing = next('sandbox', removing, { type: 'SandboxInfraDeleted' });
  assert.deepEqual([removing.context.infraRuntimeId, removing.context.infraRootfs], [null, '/run/s/infra/rootfs']);
  removing = next('sandbox', removing, { type: 'SandboxInfraRootfsUnmounted' });
  assert.deepEqual([removing.value, removing.context.infraRootfs, removing.context.infraBundle], ['removing', null, null]);
  const failed = fold('sandbox', 'p', [sandboxRun(), sample('sandbox', 'SandboxInfraImageResolved'), sample('sandbox', 'SandboxInfraRootfsMounted'),
    { type: 'SandboxRunFailed', step: 'infra-start', message: 'x' }] as SandboxEvent[]);
  assert.deepEqual([failed.value, failed.context.infraRootfs, failed.context.infraRuntimeId], ['failed', '/run/s/infra/rootfs', null]);
});

test('container machine: exits, start failures and unknown states carry their facts', () => {
  const created = [containerCreate('s'), { type: 'ContainerCreated', pid: 10, conmonPid: 9 }] as ContainerEvent[];
  const startFailed = fold('container', 'c', [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStartFailed', message: 'exec: no such file', finishedAt: '6' }]);
  assert.equal(startFailed.value, 'exited');
  assert.equal(startFailed.context.exit.reason, 'StartError');
  const ran = fold('container', 'c', [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }, exited(3)]);
  assert.deepEqual([ran.value, ran.context.exit.exitCode, ran.context.exit.reason, ran.context.startedAt], ['exited', 3, 'Error', '5']);
  const lost = fold('container', 'c', [...created, { type: 'ContainerStateUnknownObserved', reason: 'runc state failed' }]);
  assert.equal(lost.value, 'unknown');
  const found = next('container', lost, { type: 'ContainerExitObserved', exitCode: 137, reason: 'Error', finishedAt: '9' });
  assert.deepEqual([found.value, found.context.unknownReason, found.context.exit.exitCode], ['exited', null, 137]);
  const restop = fold('container', 'c', [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' },
    { type: 'ContainerStopRequested', timeoutSeconds: 30 }, { type: 'ContainerStopRequested', timeoutSeconds: 0 }]);
  assert.deepEqual([restop.value, restop.context.stopTimeoutSeconds], ['stopping', 0]);
});

test('container machine: resource updates are kept, releases are remembered apart from "never acquired"', () => {
  const created = [containerCreate('s'), { type: 'ContainerCreated', pid: 10, conmonPid: 9 }] as ContainerEvent[];
  const updated = fold('container', 'c', [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' },
    { type: 'ContainerResourcesUpdated', resources: criResources({ cpu_shares: '512' }) }]);
  assert.equal(updated.context.resources.cpu_shares, '512');
  // Requested, then applied or refused: the request is pending until one of the two.
  const running = [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }] as ContainerEvent[];
  const asked = { type: 'ContainerResourcesUpdateRequested', resources: criResources({ cpu_shares: '256' }) } as ContainerEvent;
  const pending = fold('container', 'c', [...running, asked]);
  assert.deepEqual([pending.context.pendingResources.cpu_shares, pending.context.resources], ['256', null]);
  const applied = next('container', pending, { type: 'ContainerResourcesUpdated', resources: criResources({ cpu_shares: '256' }) });
  assert.deepEqual([applied.context.pendingResources, applied.context.resources.cpu_shares], [null, '256']);
  const refused = next('container', pending, { type: 'ContainerResourcesUpdateFailed', message: 'runc said no' });
  assert.deepEqual([refused.context.pendingResources, refused.context.resources, refused.context.resourcesFailure], [null, null, { message: 'runc said no' }]);
  assert.equal(next('container', refused, asked).context.resourcesFailure, null, 'a new request clears the last failure');
  const failed = fold('container', 'c', [containerCreate('s'), { type: 'ContainerCreateFailed', step: 'rootfs-mount', message: 'x' }]);
  assert.deepEqual([failed.context.runtimeDeleted, failed.context.rootfsReleased], [false, false]);
  const unwound = next('container', next('container', failed, { type: 'ContainerRuntimeDeleted' }), { type: 'ContainerRootfsUnmounted' });
  assert.deepEqual([unwound.value, unwound.context.runtimeDeleted, unwound.context.rootfsReleased], ['createFailed', true, true]);
  const exitedOne = fold('container', 'c', [...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }, exited(0)]);
  assert.equal(accepts(exitedOne, { type: 'ContainerResourcesUpdated', resources: criResources() }), false);
});

test('container machine: a lost conmon is noted without a transition; a missing rootfs mount is an observation in any state', () => {
  const running = fold('container', 'c', [containerCreate('s'), { type: 'ContainerCreated', pid: 10, conmonPid: 9 },
    { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }]);
  const lost = next('container', running, { type: 'ContainerMonitorLost', conmonPid: 9, message: 'conmon (pid 9) is gone' });
  assert.deepEqual([lost.value, lost.context.monitorLost, lost.context.pid], ['running', 'conmon (pid 9) is gone', 10]);
  const ended = next('container', lost, exited(0));
  assert.equal(accepts(ended, { type: 'ContainerMonitorLost', conmonPid: 9, message: 'x' }), false, 'nothing left to monitor');
  for (const state of [running, ended]) {
    const seen = next('container', state, { type: 'ContainerRootfsMountMissingObserved', path: '/r' });
    assert.equal(seen.value, state.value);
  }
  const ready = fold('sandbox', 's', [sandboxRun()]);
  assert.ok(accepts(ready, { type: 'SandboxMountMissingObserved', path: '/shm', what: 'shm' }));
});

test('image machine: names come and go, removal forgets them', () => {
  const [pulled, tagged, untagged, pinned, removed] = IMAGE_EVENTS;
  const s = fold('image', 'sha256:x', [pulled!, tagged!, pinned!]);
  assert.deepEqual(s.context.repoTags, ['docker.io/library/busybox:latest', 'x:1']);
  assert.equal(s.context.pinned, true);
  const u = fold('image', 'sha256:x', [pulled!, tagged!, untagged!, removed!]);
  assert.deepEqual([u.value, u.context.repoTags], ['absent', []]);
});

// Property: any legal history folds through the pure functions to exactly the state a live
// xstate actor reaches when sent the same events.
const MACHINE_OF = { sandbox: sandboxMachine, container: containerMachine, image: imageMachine, pull: pullMachine, runtime: runtimeMachine };

function seededRandom(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

test('a new stream starts where xstate itself would start it', () => {
  for (const kind of Object.keys(MACHINE_OF) as StreamKind[]) {
    const ours = initialSnapshot(kind, 'abc');
    const theirs = xstateInitialSnapshot(kind, 'abc');
    assert.deepEqual([ours.value, ours.context, ours.status], [theirs.value, theirs.context, theirs.status], kind);
  }
});

for (const kind of Object.keys(SAMPLES) as StreamKind[]) {
  test(`${kind} machine: 300 random legal histories replay to the same state as live sends`, () => {
    const random = seededRandom(kind.length * 7919);
    for (let run = 0; run < 300; run++) {
      const id = hexId();
      const history: DomainEvent[] = [];
      let snapshot = initialSnapshot(kind, id);
      for (let step = 0; step < 25 && snapshot.status === 'active'; step++) {
        const legal = SAMPLES[kind].filter((e) => accepts(snapshot, e));
        if (legal.length === 0) break;
        const event = legal[Math.floor(random() * legal.length)]!;
        history.push(event);
        snapshot = next(kind, snapshot, event);
      }
      const actor = createActor(MACHINE_OF[kind] as never, { input: { id } } as never);
      actor.start();
      for (const event of history) actor.send(event as never);
      const live = actor.getSnapshot() as Snapshot;
      actor.stop();
      const replayed = fold(kind, id, history as never);
      assert.deepEqual([replayed.value, replayed.context], [live.value, live.context], `history: ${history.map((e) => e.type).join(' → ')}`);
    }
  });
}
