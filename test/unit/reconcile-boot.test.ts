import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore } from '../../src/events/store.js';
import { reconcileBoot, BOOT_MARKER } from '../../src/actors/reconcile/boot.js';
import { RUNTIME_STREAM_ID } from '../../src/machines/runtime.js';
import { stateOf } from '../../src/machines/index.js';
import { silentLogger } from '../../src/log.js';
import { containerCreate, hexId, sandboxRun } from '../helpers/events.js';

function setup(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-boot-'));
  const store = EventStore.open(join(dir, 'state.db'));
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  store.append({ kind: 'runtime', streamId: RUNTIME_STREAM_ID, expectedVersion: 0, events: [{ type: 'DaemonStarted', version: '0', pid: 1 }] });
  return { dir, store };
}

const runtimeEvents = (store: EventStore) => store.readStream(RUNTIME_STREAM_ID).map((e) => e.event.type);

test('first start on a fresh root: the marker is written, no reboot recorded', async (t) => {
  const { dir, store } = setup(t);
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-a' }), false);
  assert.equal(readFileSync(join(dir, BOOT_MARKER), 'utf8').trim(), 'boot-a');
  assert.ok(!runtimeEvents(store).includes('NodeRebootDetected'));
});

test('a changed boot id is a reboot, recorded once; the same boot is not', async (t) => {
  const { dir, store } = setup(t);
  await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-a' });
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-a' }), false);
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-b' }), true);
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-b' }), false);
  assert.equal(runtimeEvents(store).filter((e) => e === 'NodeRebootDetected').length, 1);
  assert.equal(stateOf('runtime', store.stream(RUNTIME_STREAM_ID)!.snapshot).context.bootId, 'boot-b');
});

test('a wiped runroot (tmpfs after a reboot) under a root with history is a reboot', async (t) => {
  const { dir, store } = setup(t);
  store.append({ kind: 'runtime', streamId: RUNTIME_STREAM_ID, expectedVersion: 1, events: [{ type: 'DaemonStarted', version: '0', pid: 2 }] });
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-c' }), true);
  assert.deepEqual(runtimeEvents(store).at(-1), 'NodeRebootDetected');
});

test('after a reboot a running container has exited (255) and a ready pod is not ready, each recorded once', async (t) => {
  const { dir, store } = setup(t);
  // The daemon ran on this boot before the pod was made.
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-a' }), false);
  const sandbox = hexId();
  const container = hexId();
  const sdir = join(dir, 'sandboxes', sandbox);
  store.append({
    kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [
      sandboxRun('web'),
      { type: 'SandboxNamespacesPinned', paths: { net: join(sdir, 'ns/net'), ipc: join(sdir, 'ns/ipc'), uts: join(sdir, 'ns/uts') } },
      { type: 'SandboxFilesPrepared', dir: join(sdir, 'files'), shmPath: join(sdir, 'shm') },
      { type: 'SandboxNetworkAttached', ips: ['10.199.3.4'], network: 'testnet' },
      { type: 'SandboxInfraStarted', containerId: sandbox, pid: 4000 },
      { type: 'SandboxReady' },
    ],
  });
  // What a CreateContainer then StartContainer records.
  store.append({
    kind: 'container', streamId: container, expectedVersion: 0, events: [
      containerCreate(sandbox),
      { type: 'ContainerRootfsMounted', path: join(dir, 'containers', container, 'rootfs') },
      { type: 'ContainerSpecWritten', bundle: join(dir, 'containers', container, 'bundle') },
      { type: 'ContainerCreated', pid: 4101, conmonPid: 4100 },
      { type: 'ContainerStartRequested' },
      { type: 'ContainerStarted', startedAt: '1700000000000000005' },
    ],
  });
  const versions = () => [store.stream(sandbox)!.version, store.stream(container)!.version, store.stream(RUNTIME_STREAM_ID)!.version];
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-a' }), false);
  assert.equal(stateOf('container', store.stream(container)!.snapshot).value, 'running', 'the same boot changes nothing');

  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-b' }), true);
  const c = stateOf('container', store.stream(container)!.snapshot);
  assert.equal(c.value, 'exited');
  assert.equal(c.context.exit?.exitCode, 255);
  assert.equal(c.context.exit?.reason, 'Error');
  assert.match(c.context.exit?.message ?? '', /rebooted/);
  assert.ok(BigInt(c.context.exit!.finishedAt) > 1_700_000_000_000_000_005n, 'finished after it started');
  const observed = store.readStream(container).filter((e) => e.event.type === 'ContainerExitObserved');
  assert.equal(observed.length, 1);
  const s = stateOf('sandbox', store.stream(sandbox)!.snapshot);
  assert.equal(s.value, 'notready');
  assert.match(s.context.notReadyReason ?? '', /rebooted/);
  assert.equal(store.readStream(sandbox).filter((e) => e.event.type === 'SandboxNotReadyObserved').length, 1);

  const after = versions();
  assert.equal(await reconcileBoot({ runroot: dir, store, logger: silentLogger, bootId: 'boot-b' }), false);
  assert.deepEqual(versions(), after, 'a second start in the same boot records nothing more');
});
