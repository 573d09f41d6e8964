// The sandbox planner's decisions (which step a state calls for) and the stream helpers the
// sandbox RPCs read with. Pure: no step is run, nothing on the node changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandboxPlanner } from '../../src/actors/sandbox/sandbox-planner.js';
import { CniRunner } from '../../src/actors/network/cni.js';
import { stateOf } from '../../src/machines/index.js';
import { fold } from '../helpers/events.js';
import type { SandboxEvent } from '../../src/machines/events.js';
import { EventStore } from '../../src/events/store.js';
import { sandboxByNameKey } from '../../src/actors/sandbox/sandbox-streams.js';
import { appendIfAccepted } from '../../src/events/append-if-accepted.js';
import { resolveStreamId } from '../../src/actors/stream-lookup.js';
import { matchesFilter, isListed, toPodSandboxStatus } from '../../src/actors/sandbox/sandbox-view.js';
import { sandboxConfig, sandboxRun } from '../helpers/events.js';

const planner = createSandboxPlanner({ runroot: '/nonexistent/run', cni: new CniRunner({ confDir: '/nonexistent/cni', cacheDir: '/nonexistent/cache' }) });

function run(namespaceOptions?: Record<string, string>): SandboxEvent {
  const event = sandboxRun('p') as Extract<SandboxEvent, { type: 'SandboxRunRequested' }>;
  if (!namespaceOptions) return event;
  return { ...event, config: { ...event.config, linux: { security_context: { namespace_options: namespaceOptions } } } as unknown as typeof event.config };
}

const pinned: SandboxEvent = { type: 'SandboxNamespacesPinned', paths: { net: '/r/net', ipc: '/r/ipc', uts: '/r/uts' } };
const attached: SandboxEvent = { type: 'SandboxNetworkAttached', ips: ['10.1.0.2', 'fd00::2'], network: 'n' };
const files: SandboxEvent = { type: 'SandboxFilesPrepared', dir: '/r', shmPath: '/r/shm' };

function nextStep(events: SandboxEvent[]): string | null {
  return planner('p', stateOf('sandbox', fold('sandbox', 'p', events)))?.name ?? null;
}

test('creating: pin, then CNI ADD, then the pod files (they need the IP), then ready', () => {
  const own = run({ network: 'POD', ipc: 'POD', pid: 'CONTAINER' });
  assert.equal(nextStep([own]), 'pin-namespaces');
  assert.equal(nextStep([own, pinned]), 'cni-add');
  assert.equal(nextStep([own, pinned, attached]), 'pod-files');
  assert.equal(nextStep([own, pinned, attached, files]), 'ready', 'no infra container without a pod-wide PID namespace');
  assert.equal(nextStep([own, pinned, attached, files, { type: 'SandboxReady' }]), null, 'a ready pod needs nothing');
});

const infraEvents: SandboxEvent[] = [
  { type: 'SandboxInfraImageResolved', image: { requested: 'pause', id: 'sha256:p', ref: 'pause@sha256:q' } },
  { type: 'SandboxInfraRootfsMounted', path: '/r/infra/rootfs' },
  { type: 'SandboxInfraSpecWritten', bundle: '/r/infra/bundle' },
  { type: 'SandboxInfraStarted', containerId: 'p', pid: 42 },
];

test('a pod-wide PID namespace (the proto default) adds the infra container after the pod files, before ready', () => {
  for (const podPid of [run(), run({ network: 'POD', ipc: 'POD', pid: 'POD' })]) {
    const base = [podPid, pinned, attached, files];
    const expected = ['infra-image', 'infra-rootfs', 'infra-spec', 'infra-start', 'ready'];
    expected.forEach((name, i) => assert.equal(nextStep([...base, ...infraEvents.slice(0, i)]), name));
  }
  const failing = planner('p', stateOf('sandbox', fold('sandbox', 'p', [run(), pinned, attached, files, ...infraEvents.slice(0, 3)])))!;
  assert.deepEqual(failing.failed!(new Error('exec failed')), [{ type: 'SandboxRunFailed', step: 'infra-start', message: 'exec failed' }]);
});

test('stopping kills the infra before CNI DEL; removing deletes it and unmounts its rootfs before the pod files go', () => {
  const ready: SandboxEvent[] = [run(), pinned, attached, files, ...infraEvents, { type: 'SandboxReady' }, { type: 'SandboxStopRequested' }];
  assert.equal(nextStep(ready), 'infra-stop');
  const stopped: SandboxEvent[] = [...ready, { type: 'SandboxInfraStopped' }];
  assert.equal(nextStep(stopped), 'cni-del');
  const removing: SandboxEvent[] = [...stopped, { type: 'SandboxNetworkDetached' }, { type: 'SandboxStopped' }, { type: 'SandboxRemoveRequested' }];
  assert.equal(nextStep(removing), 'infra-delete');
  assert.equal(nextStep([...removing, { type: 'SandboxInfraDeleted' }]), 'infra-rootfs-unmount');
  assert.equal(nextStep([...removing, { type: 'SandboxInfraDeleted' }, { type: 'SandboxInfraRootfsUnmounted' }]), 'remove-pod-files');
  // A start that failed half-way: no process is recorded, but the rootfs (and whatever runc
  // made) is released before the pod's own resources.
  const failed: SandboxEvent[] = [run(), pinned, attached, files, ...infraEvents.slice(0, 3), { type: 'SandboxRunFailed', step: 'infra-start', message: 'm' }];
  assert.equal(nextStep(failed), 'infra-rootfs-unmount');
  assert.equal(nextStep([...failed, { type: 'SandboxInfraRootfsUnmounted' }]), 'remove-pod-files');
  // Removing a pod whose stop never ran (it was found not ready) still kills the infra first.
  const lost: SandboxEvent[] = [run(), pinned, attached, files, ...infraEvents, { type: 'SandboxReady' },
    { type: 'SandboxNotReadyObserved', reason: 'infra exited' }, { type: 'SandboxRemoveRequested' }];
  assert.equal(nextStep(lost), 'infra-stop');
});

test('host namespaces are not pinned and a host-network pod skips CNI', () => {
  const hostNet = run({ network: 'NODE', ipc: 'POD', pid: 'CONTAINER' });
  assert.equal(nextStep([hostNet]), 'pin-namespaces', 'its IPC namespace is still its own');
  assert.equal(nextStep([hostNet, { type: 'SandboxNamespacesPinned', paths: { ipc: '/r/ipc' } }]), 'pod-files');
  assert.equal(nextStep([run({ network: 'NODE', ipc: 'NODE', pid: 'CONTAINER' })]), 'pod-files', 'nothing to pin');
});

test('stopping: CNI DEL first (the netns is still pinned), then stopped', () => {
  const ready = [run(), pinned, attached, files, { type: 'SandboxReady' } as SandboxEvent, { type: 'SandboxStopRequested' } as SandboxEvent];
  assert.equal(nextStep(ready), 'cni-del');
  assert.equal(nextStep([...ready, { type: 'SandboxNetworkDetached' }]), 'stopped');
  assert.equal(nextStep([...ready, { type: 'SandboxNetworkDetached' }, { type: 'SandboxStopped' }]), null);
});

test('failed or removing: release newest first, then sweep the directory and end the record', () => {
  const failed: SandboxEvent[] = [run(), pinned, attached, files, { type: 'SandboxRunFailed', step: 'x', message: 'y' }];
  assert.equal(nextStep(failed), 'remove-pod-files');
  assert.equal(nextStep([...failed, { type: 'SandboxFilesRemoved' }]), 'cni-del');
  assert.equal(nextStep([...failed, { type: 'SandboxFilesRemoved' }, { type: 'SandboxNetworkDetached' }]), 'unpin-namespaces');
  assert.equal(nextStep([...failed, { type: 'SandboxFilesRemoved' }, { type: 'SandboxNetworkDetached' }, { type: 'SandboxNamespacesUnpinned' }]), 'remove-sandbox-dir');
  assert.equal(nextStep([run(), { type: 'SandboxRunFailed', step: 'pin-namespaces', message: 'm' }]), 'remove-sandbox-dir');
  const stopped: SandboxEvent[] = [run(), pinned, attached, files, { type: 'SandboxReady' }, { type: 'SandboxStopRequested' },
    { type: 'SandboxNetworkDetached' }, { type: 'SandboxStopped' }, { type: 'SandboxRemoveRequested' }];
  assert.equal(nextStep(stopped), 'remove-pod-files');
  assert.equal(nextStep([...stopped, { type: 'SandboxFilesRemoved' }]), 'unpin-namespaces');
});

test('a failing creation step is recorded as SandboxRunFailed naming the step', () => {
  const step = planner('p', stateOf('sandbox', fold('sandbox', 'p', [run(), pinned])))!;
  assert.deepEqual(step.failed!(new Error('plugin said no')), [{ type: 'SandboxRunFailed', step: 'cni-add', message: 'plugin said no' }]);
});

test('ids resolve exactly or by unique prefix; names are held by pods until they go, failed ones while they unwind', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = EventStore.open(join(dir, 'state.db'));
  t.after(() => store.close());
  const a = 'ab12'.padEnd(64, '0');
  const b = 'ab34'.padEnd(64, '0');
  store.append({ kind: 'sandbox', streamId: a, expectedVersion: 0, events: [sandboxRun('one')] });
  store.append({ kind: 'sandbox', streamId: b, expectedVersion: 0, events: [sandboxRun('two')] });
  assert.equal(resolveStreamId(store, 'sandbox', a, 'pod_sandbox_id'), a);
  assert.equal(resolveStreamId(store, 'sandbox', 'ab3', 'pod_sandbox_id'), b);
  assert.equal(resolveStreamId(store, 'sandbox', 'ffff', 'pod_sandbox_id'), undefined);
  assert.equal(resolveStreamId(store, 'container', a, 'container_id'), undefined, 'a sandbox id is no container id');
  assert.throws(() => resolveStreamId(store, 'sandbox', 'ab', 'pod_sandbox_id'), /pod_sandbox_id: prefix "ab" matches 2/);
  assert.throws(() => resolveStreamId(store, 'sandbox', '', 'pod_sandbox_id'), /pod_sandbox_id is required/);

  assert.equal(sandboxByNameKey(store, 'one_default_uid-one_0')?.[0], a);
  assert.equal(appendIfAccepted(store, 'sandbox', a, { type: 'SandboxStopRequested' }), false, 'a creating pod cannot be stopped yet');
  assert.equal(appendIfAccepted(store, 'sandbox', a, { type: 'SandboxRunFailed', step: 's', message: 'm' }), true);
  assert.equal(sandboxByNameKey(store, 'one_default_uid-one_0')?.[0], a, 'a failed pod holds its name while it unwinds: a retry gets its error');
  assert.equal(appendIfAccepted(store, 'sandbox', a, { type: 'SandboxRemoved' }), true);
  assert.equal(sandboxByNameKey(store, 'one_default_uid-one_0'), undefined, 'once gone, the name is free');
});

test('CRI views: listed states, filters, primary and additional IPs', () => {
  const events: SandboxEvent[] = [
    { ...(sandboxRun('v') as Extract<SandboxEvent, { type: 'SandboxRunRequested' }>), config: sandboxConfig('v', { tier: 'web' }) },
    pinned, attached, files, { type: 'SandboxReady' },
  ];
  const state = stateOf('sandbox', fold('sandbox', 'abc', events));
  assert.ok(isListed(state));
  assert.ok(!isListed(stateOf('sandbox', fold('sandbox', 'abc', events.slice(0, 2)))), 'a pod being created is not listed');
  assert.ok(matchesFilter('abcdef', state, { id: 'abc', state: { state: 'SANDBOX_READY' }, label_selector: { tier: 'web' } }));
  assert.ok(!matchesFilter('abcdef', state, { id: '', state: { state: 'SANDBOX_NOTREADY' }, label_selector: {} }));
  assert.ok(!matchesFilter('abcdef', state, { id: '', state: null, label_selector: { tier: 'db' } }));
  assert.ok(!matchesFilter('abcdef', state, { id: 'abd', state: null, label_selector: {} }));
  const status = toPodSandboxStatus('abcdef', state);
  assert.deepEqual(status.network, { ip: '10.1.0.2', additional_ips: [{ ip: 'fd00::2' }] });
  assert.equal(status.state, 'SANDBOX_READY');
});
