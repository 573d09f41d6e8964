import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stateOf } from '../../src/machines/index.js';
import { fold } from '../helpers/events.js';
import type { ContainerEvent } from '../../src/machines/events.js';
import { matchesFilter, toCriContainer, toCriStatus } from '../../src/actors/container/container-view.js';
import { containerPlanner } from '../../src/actors/container/container-planner.js';
import type { ContainerDeps } from '../../src/actors/container/container-deps.js';
import { containerCreate, exited } from '../helpers/events.js';

const created: ContainerEvent[] = [
  containerCreate('pod1'),
  { type: 'ContainerRootfsMounted', path: '/r' },
  { type: 'ContainerSpecWritten', bundle: '/b' },
  { type: 'ContainerCreated', pid: 10, conmonPid: 9 },
];
const state = (events: ContainerEvent[]) => stateOf('container', fold('container', 'c1', events));
const filter = (p: object) => ({ id: '', state: null, pod_sandbox_id: '', label_selector: {}, ...p });

test('CRI states: created, running (also while stopping), exited with its facts', () => {
  const running = state([...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }]);
  assert.equal(toCriStatus('c1', state(created)).state, 'CONTAINER_CREATED');
  assert.equal(toCriStatus('c1', running).state, 'CONTAINER_RUNNING');
  assert.equal(toCriStatus('c1', state([...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }, { type: 'ContainerStopRequested', timeoutSeconds: 1 }])).state, 'CONTAINER_RUNNING');
  const done = toCriStatus('c1', state([...created, { type: 'ContainerStartRequested' }, { type: 'ContainerStarted', startedAt: '5' }, exited(3)]));
  assert.deepEqual([done.state, done.exit_code, done.reason, done.started_at, done.finished_at], ['CONTAINER_EXITED', 3, 'Error', '5', '1700000000000000009']);
  const listed = toCriContainer('c1', running);
  assert.deepEqual([listed.pod_sandbox_id, listed.image?.image, listed.image_ref, listed.image_id], ['pod1', 'busybox', 'docker.io/library/busybox@sha256:bb', 'sha256:aa']);
});

test('filters: id prefix, state, pod id prefix, labels; containers being made are not listed', () => {
  const s = state(created);
  assert.equal(matchesFilter('c1', s, null), true);
  assert.equal(matchesFilter('c1', s, filter({ id: 'c' })), true);
  assert.equal(matchesFilter('c1', s, filter({ id: 'd' })), false);
  assert.equal(matchesFilter('c1', s, filter({ state: { state: 'CONTAINER_RUNNING' } })), false);
  assert.equal(matchesFilter('c1', s, filter({ state: { state: 'CONTAINER_CREATED' }, pod_sandbox_id: 'pod' })), true);
  assert.equal(matchesFilter('c1', s, filter({ pod_sandbox_id: 'other' })), false);
  assert.equal(matchesFilter('c1', s, filter({ label_selector: { app: 'x' } })), false);
  assert.equal(matchesFilter('c1', state([containerCreate('pod1')]), null), false);
});

test('the planner: create steps in order, unwind in reverse, nothing to do when settled', () => {
  const plan = containerPlanner({ ctx: { config: { root: '/nonexistent' } } } as unknown as ContainerDeps);
  const name = (events: ContainerEvent[]) => plan('c1', state(events))?.name ?? null;
  assert.equal(name(created.slice(0, 1)), 'rootfs-mount');
  assert.equal(name(created.slice(0, 2)), 'spec-write');
  assert.equal(name(created.slice(0, 3)), 'runtime-create');
  assert.equal(name(created), null);
  assert.equal(name([...created, { type: 'ContainerStartRequested' }]), 'start');
  assert.equal(name([...created, { type: 'ContainerStopRequested', timeoutSeconds: 3 }]), 'stop');
  const failed: ContainerEvent[] = [...created.slice(0, 2), { type: 'ContainerCreateFailed', step: 'spec-write', message: 'x' }];
  assert.equal(name(failed), 'runtime-delete');
  assert.equal(name([...failed, { type: 'ContainerRuntimeDeleted' }]), 'rootfs-unmount');
  assert.equal(name([...failed, { type: 'ContainerRuntimeDeleted' }, { type: 'ContainerRootfsUnmounted' }]), 'forget');
  const failedStep = plan('c1', state(created.slice(0, 1)))!;
  assert.deepEqual(failedStep.failed!(new Error('no space')), [{ type: 'ContainerCreateFailed', step: 'rootfs-mount', message: 'no space' }]);
});
