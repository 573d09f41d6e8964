// The leak sweep's ownership and attribution decisions, on real inputs: mountinfo lines as the
// kernel printed them for crisp's layout, conmon's argv as conmonCreateArgs builds it, libcni
// cache entries, and stream contexts folded from real events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore } from '../../src/events/store.js';
import { conmonCreateArgs, type ConmonCreateOptions } from '../../src/actors/monitor/conmon.js';
import { runtimeDirs } from '../../src/actors/monitor/container-layout.js';
import { parseMountInfo } from '../../src/host/mountinfo.js';
import { CNI_CACHE_KIND, encodeConfig, type CachedAttachment } from '../../src/actors/network/cni-cache.js';
import { daemonConmonArgs, findDaemonConmons, parseConmonArgv } from '../../src/actors/reconcile/conmon-procs.js';
import { isWithin, liveOwners, ownedAttachments, ownedPaths, runtimeOwners, strayMounts, unownedAttachments } from '../../src/actors/reconcile/ownership.js';
import { attributedCgroup, bundleCgroupsPath, defaultPodCgroupOf } from '../../src/actors/reconcile/leaked-cgroups.js';
import { cgroupsPathFor } from '../../src/actors/spec/resources.js';
import { containerCreate, hexId, sandboxRun } from '../helpers/events.js';

const RUNROOT = '/tmp/crisp-test-sweep-Ab12/run';
const ROOT = '/tmp/crisp-test-sweep-Ab12/root';

function conmonOptions(id: string, runroot = RUNROOT): ConmonCreateOptions {
  const dirs = runtimeDirs(runroot);
  return {
    conmonPath: '/usr/bin/conmon', runtimePath: '/usr/sbin/runc', runtimeRoot: dirs.runtimeRoot, id,
    bundle: `${ROOT}/containers/${id}/bundle`, logPath: `${ROOT}/containers/${id}/container.log`,
    exitsDir: dirs.exitsDir, containerDir: join(dirs.runDir, id),
    containerPidFile: join(dirs.runDir, id, 'pidfile'), conmonPidFile: join(dirs.runDir, id, 'conmon.pid'),
    socketDir: join(dirs.runDir, 'attach'), logSizeMax: 1024, stdin: true,
  };
}

test('conmon argv: id, exits dir, bundle and runc root are read back from what conmonCreateArgs builds', () => {
  const id = hexId();
  const o = conmonOptions(id);
  const args = parseConmonArgv([o.conmonPath, ...conmonCreateArgs(o)]);
  assert.deepEqual(args, { id, exitDir: o.exitsDir, bundle: o.bundle, runtimePath: o.runtimePath, runtimeRoot: o.runtimeRoot });
  // the long forms other callers use
  assert.deepEqual(parseConmonArgv(['conmon', '--cid=x1', '--exit-dir=/e', '--bundle', '/b']), { id: 'x1', exitDir: '/e', bundle: '/b' });
  assert.equal(parseConmonArgv(['conmon', '--api-version', '1', '-b', '/b']), null, 'no -c: not a container monitor');
  assert.equal(parseConmonArgv(['conmon', '-c']), null, 'a flag without its value');
});

test('conmon attribution: the configured binary (by path or name) AND this daemon\'s exits dir', () => {
  const id = hexId();
  const ours = conmonOptions(id);
  const argv = [ours.conmonPath, ...conmonCreateArgs(ours)];
  const self = { conmonPath: '/usr/bin/conmon', exitsDir: runtimeDirs(RUNROOT).exitsDir };
  assert.equal(daemonConmonArgs(argv, self)?.id, id);
  assert.equal(daemonConmonArgs(argv, { ...self, conmonPath: 'conmon' })?.id, id, 'conmon found via PATH');
  assert.equal(daemonConmonArgs(argv, { ...self, exitsDir: `${RUNROOT}/exits/` })?.id, id, 'same dir, spelled with a slash');
  // another crisp daemon on the same machine: same binary, its own runroot
  const theirs = conmonOptions(id, '/tmp/crisp-test-other-Zz99/run');
  assert.equal(daemonConmonArgs([theirs.conmonPath, ...conmonCreateArgs(theirs)], self), null);
  assert.equal(daemonConmonArgs(['/usr/bin/sleep', ...conmonCreateArgs(ours)], self), null, 'not conmon');
  assert.equal(daemonConmonArgs(['/usr/bin/conmon', '-c', id], self), null, 'no exits dir: not attributable');
});

test('scanning /proc finds no conmon of a daemon whose exits dir nobody uses', async () => {
  const found = await findDaemonConmons({ conmonPath: 'conmon', exitsDir: `/tmp/crisp-test-none-${hexId()}/exits` });
  assert.deepEqual(found, []);
});

function storeWith(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-leaks-'));
  const store = EventStore.open(join(dir, 'state.db'));
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store };
}

/** A ready sandbox and a running container in it, as their real events record them. */
function liveNode(store: EventStore) {
  const sandbox = hexId();
  const container = hexId();
  const sdir = `${RUNROOT}/sandboxes/${sandbox}`;
  store.append({
    kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [
      sandboxRun('web'),
      { type: 'SandboxNamespacesPinned', paths: { net: `${sdir}/ns/net`, ipc: `${sdir}/ns/ipc`, uts: `${sdir}/ns/uts` } },
      { type: 'SandboxFilesPrepared', dir: `${ROOT}/pods/${sandbox}`, shmPath: `${sdir}/shm` },
      { type: 'SandboxNetworkAttached', ips: ['10.199.7.2'], network: 'testnet' },
      { type: 'SandboxInfraRootfsMounted', path: `${sdir}/infra/rootfs` },
      { type: 'SandboxInfraStarted', containerId: sandbox, pid: 4242 },
      { type: 'SandboxReady' },
    ],
  });
  store.append({
    kind: 'container', streamId: container, expectedVersion: 0, events: [
      containerCreate(sandbox),
      { type: 'ContainerRootfsMounted', path: `${ROOT}/containers/${container}/rootfs` },
      { type: 'ContainerSpecWritten', bundle: `${ROOT}/containers/${container}/bundle` },
      { type: 'ContainerCreated', pid: 4300, conmonPid: 4299 },
    ],
  });
  return { sandbox, container, sdir };
}

test('owned paths and runtime ids come from the live streams\' contexts', (t) => {
  const { store } = storeWith(t);
  const { sandbox, container, sdir } = liveNode(store);
  const owners = liveOwners(store);
  assert.deepEqual([...runtimeOwners(owners)].sort(), [sandbox, container].sort());
  const owned = ownedPaths(owners, ROOT, RUNROOT);
  for (const p of [`${ROOT}/containers/${container}`, sdir, `${sdir}/ns/net`, `${sdir}/shm`, `${ROOT}/pods/${sandbox}`]) {
    assert.ok(owned.includes(p), `${p} is owned`);
  }
  assert.ok(isWithin(`${sdir}/ns/net`, sdir));
  assert.ok(!isWithin(`${sdir}x/ns`, sdir), 'a sibling that shares a prefix is not inside');
});

test('stray mounts: unowned ones under root and runroot, deepest first; owned, structural and foreign ones stay', (t) => {
  const { store } = storeWith(t);
  const { sandbox, container } = liveNode(store);
  const gone = hexId();
  // Lines as /proc/self/mountinfo printed them for these paths on a real node (ids substituted).
  const mountinfo = [
    '27 1 8:1 / /tmp rw,relatime shared:1 - ext4 /dev/sda1 rw',
    `42 27 0:39 / ${RUNROOT}/sandboxes/${sandbox}/shm rw,relatime - tmpfs shm rw`,
    `45 27 0:4 net:[4026532177] ${RUNROOT}/sandboxes/${sandbox}/ns/net rw - nsfs nsfs rw`,
    `48 27 0:42 / ${ROOT}/containers/${container}/rootfs rw,relatime - overlay overlay rw,lowerdir=${ROOT}/layers/l,upperdir=${ROOT}/containers/${container}/upper,workdir=${ROOT}/containers/${container}/work,uuid=on`,
    `43 27 0:40 / ${ROOT}/tmp/stray\\040dir rw,relatime - tmpfs tmp rw`,
    `49 43 0:43 / ${ROOT}/tmp/stray\\040dir/inner rw,relatime - tmpfs inner rw`,
    `44 27 0:41 / ${ROOT}/layers rw,relatime - tmpfs layers rw`,
    `50 27 0:44 / ${ROOT} rw,relatime - tmpfs crisp-root rw`,
    `51 27 0:4 net:[4026532299] ${RUNROOT}/sandboxes/${gone}/ns/net rw - nsfs nsfs rw`,
    `52 27 0:45 / ${ROOT}/containers rw,relatime - xfs /dev/sdb1 rw`,
    '53 27 0:46 / /tmp/crisp-test-sweep-Ab12/rootfs-of-someone-else rw,relatime - tmpfs other rw',
    `54 27 0:47 / ${ROOT}/containers/${container}/rootfs/dev/shm rw,relatime - tmpfs inner-owned rw`,
  ].join('\n');
  const mounts = parseMountInfo(mountinfo);
  const stray = strayMounts(mounts, { roots: [ROOT, RUNROOT], owned: ownedPaths(liveOwners(store), ROOT, RUNROOT) });
  assert.deepEqual(stray, [`${RUNROOT}/sandboxes/${gone}/ns/net`, `${ROOT}/tmp/stray dir/inner`, `${ROOT}/tmp/stray dir`]);
});

test('stray mounts: with no live stream every mount inside an entity dir is stray, the roots\' own children are not', () => {
  const id = hexId();
  const mounts = parseMountInfo([
    `48 27 0:42 / ${ROOT}/containers/${id}/rootfs rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w`,
    `42 27 0:39 / ${RUNROOT}/sandboxes rw,relatime - tmpfs sandboxes rw`,
    `41 27 0:38 / ${RUNROOT} rw,relatime - tmpfs run rw`,
  ].join('\n'));
  assert.deepEqual(strayMounts(mounts, { roots: [ROOT, RUNROOT], owned: [] }), [`${ROOT}/containers/${id}/rootfs`]);
});

test('stray mounts: a runroot inside the root is a root of its own, its children structural too', () => {
  const root = '/var/lib/crisp-test';
  const runroot = `${root}/run`;
  const id = hexId();
  const mounts = parseMountInfo([
    `41 27 0:38 / ${runroot} rw,relatime - tmpfs run rw`,
    `42 41 0:39 / ${runroot}/sandboxes rw,relatime - tmpfs sandboxes rw`,
    `43 42 0:40 / ${runroot}/sandboxes/${id}/shm rw,relatime - tmpfs shm rw`,
  ].join('\n'));
  assert.deepEqual(strayMounts(mounts, { roots: [root, runroot], owned: [] }), [`${runroot}/sandboxes/${id}/shm`]);
});

function cacheEntry(containerId: string, ifName = 'eth0', networkName = 'testnet'): CachedAttachment {
  const config = JSON.stringify({ cniVersion: '1.0.0', name: networkName, plugins: [{ type: 'bridge', bridge: 'crtab12' }] });
  return {
    kind: CNI_CACHE_KIND, containerId, config: encodeConfig(config), ifName, networkName,
    netns: `${RUNROOT}/sandboxes/${containerId}/ns/net`, cniArgs: [['IgnoreUnknown', '1']], addComplete: true,
    result: { cniVersion: '1.0.0', ips: [{ address: '10.199.7.9/24' }] },
  };
}

test('CNI: entries of sandboxes no live stream owns are released; GC keeps what the log owns', (t) => {
  const { store } = storeWith(t);
  const { sandbox } = liveNode(store);
  const orphan = hexId();
  const entries = [cacheEntry(sandbox), cacheEntry(sandbox, 'net1'), cacheEntry(orphan)];
  const owners = liveOwners(store);
  assert.deepEqual(unownedAttachments(entries, owners).map((e) => e.containerId), [orphan]);
  assert.deepEqual(ownedAttachments(entries, owners), [
    { containerId: sandbox, ifName: 'eth0' },
    { containerId: sandbox, ifName: 'net1' },
  ]);
  // a live pod that recorded its network keeps it even when its cache entry is lost
  assert.deepEqual(ownedAttachments([], owners), [{ containerId: sandbox, ifName: 'eth0' }]);
});

test('cgroup attribution: only the cgroup cgroupsPathFor gives that very id, never a shared parent', () => {
  const id = hexId();
  const sandbox = hexId();
  const byDefault = cgroupsPathFor('', sandbox, id);
  const underKubelet = cgroupsPathFor('/kubepods/burstable/pod1234', sandbox, id);
  assert.equal(attributedCgroup(id, byDefault), `/crisp/${sandbox}/crisp-${id}`);
  assert.equal(attributedCgroup(id, `${underKubelet}/`), underKubelet);
  assert.equal(attributedCgroup(hexId(), byDefault), null, 'a record naming another container\'s cgroup');
  assert.equal(attributedCgroup(id, '/kubepods'), null);
  assert.equal(attributedCgroup(id, '/crisp'), null);
  assert.equal(attributedCgroup(id, `/crisp-${id}`), null, 'directly under the root: a parent nobody shares is still no parent we made');
  assert.equal(attributedCgroup(id, `/crisp/../crisp-${id}`), null);
  assert.equal(attributedCgroup(id, 'system.slice:crisp:x'), null);
  assert.equal(attributedCgroup(id, undefined), null);
  // crisp's default pod cgroup is removable once empty; kubelet's parents are not ours
  assert.deepEqual(defaultPodCgroupOf(byDefault), { path: `/crisp/${sandbox}`, sandboxId: sandbox });
  assert.equal(defaultPodCgroupOf(underKubelet), null);
});

test('cgroupsPath of a bundle crisp wrote; a missing or broken config.json attributes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-bundle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const id = hexId();
  mkdirSync(join(dir, 'good'));
  writeFileSync(join(dir, 'good', 'config.json'), JSON.stringify({ ociVersion: '1.0.2', linux: { cgroupsPath: `/crisp-test-ab12/crisp-${id}` } }));
  mkdirSync(join(dir, 'broken'));
  writeFileSync(join(dir, 'broken', 'config.json'), '{"linux": ');
  assert.equal(await bundleCgroupsPath(join(dir, 'good')), `/crisp-test-ab12/crisp-${id}`);
  assert.equal(await bundleCgroupsPath(join(dir, 'broken')), undefined);
  assert.equal(await bundleCgroupsPath(join(dir, 'absent')), undefined);
});
