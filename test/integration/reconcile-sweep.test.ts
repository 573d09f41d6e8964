// The start-up leak sweep against real leaks. Before the daemon first starts on a fresh root,
// the test leaves behind what a crashed crisp would: a CNI attachment made by the real
// CniRunner into a pinned netns of a sandbox dir, a conmon+runc container with its record, one
// whose records are lost (only its conmon and bundle tell it is ours), one of which only runc's
// state is left, a container process left in a cgroup only a bundle attributes, and a stray
// tmpfs; beside them, a container of another crisp daemon, which must survive. The daemon's log then holds none of
// them, so each must be released and recorded as LeakReclaimed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon, testDirs, type TestDaemon } from '../helpers/daemon.js';
import { makeBundle, makeBusyboxRootfs } from '../helpers/bundle.js';
import { hexId } from '../helpers/events.js';
import { EventStore } from '../../src/events/store.js';
import { RUNTIME_STREAM_ID } from '../../src/machines/runtime.js';
import { ContainerRuntime } from '../../src/actors/monitor/container-runtime.js';
import { containerBundle, containerDirBundle, containerLayout, runtimeDirs } from '../../src/actors/monitor/container-layout.js';
import { isConmonFor } from '../../src/actors/monitor/conmon.js';
import { resolveExecutable } from '../../src/actors/monitor/executables.js';
import { cgroupDirs, cgroupExists, detectCgroupLayout, removeCgroupTree, resolveCgroupPaths } from '../../src/actors/monitor/cgroups.js';
import { CniRunner } from '../../src/actors/network/cni.js';
import { cacheFilePath } from '../../src/actors/network/cni-cache.js';
import { readMounts } from '../../src/host/mountinfo.js';
import { isMountPoint } from '../helpers/mounts.js';
import { pinNamespaces, unpinNamespaces } from '../../src/actors/network/namespaces.js';
import { run } from '../../src/host/run.js';
import { sandboxDir } from '../../src/actors/sandbox/sandbox-streams.js';
import { killCgroupProcesses } from '../../src/actors/reconcile/leaked-cgroups.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A v1 cpuset cgroup takes no task until its cpus and mems are set: copy them down from the parent. */
async function inheritCpuset(dir: string): Promise<void> {
  if (!existsSync(join(dir, 'cpuset.cpus'))) return;
  const parent = dirname(dir);
  if (existsSync(join(parent, 'cpuset.cpus'))) await inheritCpuset(parent);
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if ((await readFile(join(dir, file), 'utf8')).trim() === '') await writeFile(join(dir, file), await readFile(join(parent, file), 'utf8'));
  }
}

test('start-up releases and records CNI attachments, runtime containers, conmons, cgroups and mounts no stream owns', { timeout: 180_000 }, async (t) => {
  const tag = randomBytes(2).toString('hex');
  const network = `sweep${tag}`;
  const bridge = `crt${tag}`;
  const subnet = `10.199.${(parseInt(tag, 16) % 200) + 20}.0/24`;
  const cgroupParent = `/crisp-test-sweep-${tag}`;
  const dirs = testDirs('crisp-test-sweep-');
  const { root, runroot } = dirs;
  const cniDir = join(dirs.dir, 'cni');
  const cacheDir = join(root, 'cni-cache');
  const leaseDir = join('/var/lib/cni/networks', network);
  const layout = await detectCgroupLayout();
  const runtime = new ContainerRuntime({
    runtimePath: resolveExecutable('runc', 'runtime_path'),
    conmonPath: resolveExecutable('conmon', 'conmon_path'),
    ...runtimeDirs(runroot),
  });
  // Another crisp on the same machine (tests run several): same conmon and runc, its own runroot.
  const otherRunroot = join(dirs.dir, 'other-daemon-run');
  const otherRuntime = new ContainerRuntime({
    runtimePath: resolveExecutable('runc', 'runtime_path'),
    conmonPath: resolveExecutable('conmon', 'conmon_path'),
    ...runtimeDirs(otherRunroot),
  });
  const cni = new CniRunner({ confDir: cniDir, cacheDir });
  const podSandbox = hexId();
  const [withRecord, recordLost, runcOnly, cgroupOnly, otherDaemons] = [hexId(), hexId(), hexId(), hexId(), hexId()];
  const conmonPids: [number, string][] = [];
  let strayPid: number | undefined;
  let daemon: TestDaemon | undefined;

  t.after(async () => {
    daemon?.clients.close();
    await daemon?.stop('SIGKILL');
    for (const id of [withRecord, recordLost, runcOnly]) await runtime.delete(id).catch(() => undefined);
    await otherRuntime.delete(otherDaemons).catch(() => undefined);
    for (const [pid, id] of conmonPids) if (await isConmonFor(pid, id, 'conmon')) process.kill(pid, 'SIGKILL');
    if (strayPid !== undefined && alive(strayPid)) process.kill(strayPid, 'SIGKILL');
    if (existsSync(cacheFilePath(cacheDir, network, podSandbox, 'eth0'))) await cni.del({ containerId: podSandbox }).catch(() => undefined);
    await unpinNamespaces({ net: join(sandboxDir(runroot, podSandbox), 'ns', 'net') }).catch(() => undefined);
    const mounts = (await readMounts()).map((m) => m.mountPoint).filter((m) => m.startsWith(`${dirs.dir}/`));
    for (const m of [...new Set(mounts)].sort().reverse()) await run('umount', ['-l', m]);
    await run('ip', ['link', 'del', bridge]);
    await rm(leaseDir, { recursive: true, force: true });
    const parent = resolveCgroupPaths(layout, cgroupParent);
    await killCgroupProcesses(parent).catch(() => undefined);
    await removeCgroupTree(parent).catch(() => undefined);
    await rm(dirs.dir, { recursive: true, force: true });
  });

  // ---- the leaks -------------------------------------------------------------------------------
  await mkdir(cniDir, { recursive: true });
  await writeFile(join(cniDir, '10-sweep.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: network,
    plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet } }],
  }));
  // A pod's network, as a sandbox that died before its first fact would leave it.
  const ns = await pinNamespaces({ dir: join(sandboxDir(runroot, podSandbox), 'ns'), kinds: ['net'] });
  const attached = await cni.add({ containerId: podSandbox, netnsPath: ns.net!, pod: { namespace: 'default', name: 'leak', uid: `uid-${tag}` } });
  const podIp = attached.ips[0]!.ip;
  assert.ok(existsSync(join(leaseDir, podIp)), 'host-local leased the pod IP');

  const rootfs = await makeBusyboxRootfs(dirs.dir);
  // Its bundle where crisp makes it (in the runroot), or where crisp made it before (in the
  // container dir, `legacy`).
  const makeContainer = async (id: string, o: { root?: string; runroot?: string; legacy?: boolean } = {}) => {
    const dir = containerLayout(o.root ?? root, id).dir;
    const bundleDir = o.legacy ? containerDirBundle(o.root ?? root, id) : containerBundle(o.runroot ?? runroot, id);
    await mkdir(dir, { recursive: true });
    const bundle = await makeBundle({ dir: bundleDir, rootfs, args: ['sleep', '3600'], cgroupsPath: `${cgroupParent}/crisp-${id}` });
    return { dir, bundle, cgroup: resolveCgroupPaths(layout, `${cgroupParent}/crisp-${id}`) };
  };
  const containers = new Map<string, Awaited<ReturnType<typeof makeContainer>>>();
  for (const id of [withRecord, recordLost, runcOnly]) {
    const c = await makeContainer(id);
    containers.set(id, c);
    const made = await runtime.create({ id, bundle: c.bundle, logPath: join(c.dir, 'container.log') });
    conmonPids.push([made.conmonPid, id]);
    await runtime.start(id);
  }
  // Journal lost (a runroot cleaned by hand, say): only the conmon and the bundle tell it is ours.
  await rm(join(runtimeDirs(runroot).runDir, recordLost, 'intent.json'), { force: true });
  const recordLostConmon = conmonPids[1]![0];
  // Only runc's state is left: conmon died and the records went with the run dir.
  process.kill(conmonPids[2]![0], 'SIGKILL');
  await rm(join(runtimeDirs(runroot).runDir, runcOnly), { recursive: true, force: true });
  assert.equal((await runtime.state(runcOnly))?.status, 'running');
  assert.deepEqual(await runtime.list(), [withRecord]);

  const foreign = await makeContainer(otherDaemons, { root: join(dirs.dir, 'other-daemon-root'), runroot: join(dirs.dir, 'other-daemon-run') });
  const foreignConmon = (await otherRuntime.create({ id: otherDaemons, bundle: foreign.bundle, logPath: join(foreign.dir, 'container.log') })).conmonPid;
  conmonPids.push([foreignConmon, otherDaemons]);
  await otherRuntime.start(otherDaemons);

  // A container process whose runc state is gone, in the cgroup its bundle names.
  const orphan = await makeContainer(cgroupOnly, { legacy: true });
  containers.set(cgroupOnly, orphan);
  const sleeper = spawn('sleep', ['3600'], { detached: true, stdio: 'ignore' });
  sleeper.unref();
  strayPid = sleeper.pid!;
  for (const dir of cgroupDirs(orphan.cgroup)) {
    await mkdir(dir, { recursive: true });
    await inheritCpuset(dir);
    await writeFile(join(dir, 'cgroup.procs'), String(strayPid));
  }

  const strayMount = join(root, 'scratch', 'stray-tmpfs');
  await mkdir(strayMount, { recursive: true });
  assert.equal((await run('mount', ['-t', 'tmpfs', 'crisp-test-stray', strayMount])).code, 0);

  // ---- a fresh daemon on these dirs ------------------------------------------------------------
  daemon = await startDaemon(['--cni-config-dir', cniDir], dirs);
  daemon.clients.close();
  assert.equal(await daemon.stop('SIGTERM'), 0, daemon.stderr());

  const store = EventStore.open(join(root, 'state.db'));
  let reclaimed: { what: string; path: string }[];
  try {
    reclaimed = store.readStream(RUNTIME_STREAM_ID).flatMap((e) => (e.event.type === 'LeakReclaimed' ? [{ what: e.event.what, path: e.event.path }] : []));
  } finally {
    store.close();
  }
  const has = (what: string, path: string) => assert.ok(reclaimed.some((r) => r.what === what && r.path === path), `${what} ${path} recorded; got ${JSON.stringify(reclaimed, null, 1)}`);

  // the CNI attachment: DEL ran with the cached config (the lease is free again), cache entry gone
  has('cni-attachment', cacheFilePath(cacheDir, network, podSandbox, 'eth0'));
  assert.ok(!existsSync(join(leaseDir, podIp)), `the lease of ${podIp} was released`);
  assert.ok(!existsSync(cacheFilePath(cacheDir, network, podSandbox, 'eth0')));
  has('sandbox-dir', sandboxDir(runroot, podSandbox));
  assert.ok(!(await isMountPoint(ns.net!)), 'the pinned netns is unmounted');
  assert.equal((await run('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.trim(), '', 'the pod\'s veth left the bridge');

  // the container with a record: runc state, conmon and cgroup gone
  has('runtime-container', withRecord);
  assert.ok(!(await isConmonFor(conmonPids[0]![0], withRecord, 'conmon')));
  assert.equal(await runtime.state(withRecord), null);
  assert.ok(!(await cgroupExists(containers.get(withRecord)!.cgroup)), 'its cgroup was removed');

  // the container whose record was lost: found by its conmon's exits dir
  has('conmon', `pid ${recordLostConmon} (${recordLost})`);
  assert.ok(!(await isConmonFor(recordLostConmon, recordLost, 'conmon')));
  assert.equal(await runtime.state(recordLost), null);
  assert.ok(!(await cgroupExists(containers.get(recordLost)!.cgroup)), 'its cgroup was removed');

  // runc state with neither record nor conmon
  has('runtime-container', runcOnly);
  assert.equal(await runtime.state(runcOnly), null);
  assert.ok(!(await cgroupExists(containers.get(runcOnly)!.cgroup)), 'its cgroup was removed');

  // the process left in a cgroup its bundle attributes: killed, the cgroup removed and recorded
  has('cgroup', `${cgroupParent}/crisp-${cgroupOnly}`);
  for (let i = 0; i < 50 && alive(strayPid); i++) await sleep(20);
  assert.ok(!alive(strayPid), 'the leaked container process was killed');
  assert.ok(!(await cgroupExists(orphan.cgroup)));
  // the parent is the test's: shared parents are never removed by the sweep
  assert.ok(await cgroupExists(resolveCgroupPaths(layout, cgroupParent)), 'the shared parent stays');

  // the other daemon's container: same binaries, same cgroup parent, another exits dir: untouched
  assert.ok(await isConmonFor(foreignConmon, otherDaemons, 'conmon'), 'another daemon\'s conmon lives');
  assert.equal((await otherRuntime.state(otherDaemons))?.status, 'running');
  assert.ok(await cgroupExists(foreign.cgroup), 'another daemon\'s cgroup stays');
  assert.ok(!reclaimed.some((r) => r.path.includes(otherDaemons)), 'nothing of it is recorded');

  for (const id of [withRecord, recordLost, runcOnly, cgroupOnly]) {
    has('container-dir', containerLayout(root, id).dir);
    assert.ok(!existsSync(containerLayout(root, id).dir));
  }
  for (const id of [withRecord, recordLost, runcOnly]) {
    has('container-bundle', containerBundle(runroot, id));
    assert.ok(!existsSync(containerBundle(runroot, id)));
  }
  assert.ok(existsSync(foreign.bundle), 'another daemon\'s bundle stays');
  has('mount', strayMount);
  assert.ok(!(await isMountPoint(strayMount)));
  assert.deepEqual((await readMounts()).filter((m) => m.mountPoint.startsWith(`${dirs.dir}/`)), [], 'no mount is left under the test dirs');
  assert.deepEqual(readdirSync(join(runtimeDirs(runroot).runDir)).filter((e) => e !== 'attach'), [], 'no conmon record is left');
  const runcList = await run(resolveExecutable('runc', 'runtime_path'), ['--root', runtimeDirs(runroot).runtimeRoot, 'list', '-q']);
  assert.equal(runcList.stdout.trim(), '', 'runc knows no container any more');

  // ---- a second start finds nothing more -----------------------------------------------------------
  daemon = await startDaemon(['--cni-config-dir', cniDir], dirs);
  daemon.clients.close();
  assert.equal(await daemon.stop('SIGTERM'), 0, daemon.stderr());
  const again = EventStore.open(join(root, 'state.db'));
  try {
    const count = again.readStream(RUNTIME_STREAM_ID).filter((e) => e.event.type === 'LeakReclaimed').length;
    assert.equal(count, reclaimed.length, 'nothing is reclaimed twice');
  } finally {
    again.close();
  }
});
