// Pinned namespaces, hostname, sysctls, pod files and the pod's /dev/shm, on the real kernel.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readMounts } from '../../src/host/mountinfo.js';
import { isMountPoint } from '../helpers/mounts.js';
import {
  isPinned,
  pinNamespaces,
  runInNamespaces,
  runInNetns,
  unpinNamespaces,
  type PinnedNamespaces,
} from '../../src/actors/network/namespaces.js';
import { mountPodShm, removePodFiles, unmountPodShm, writePodFiles } from '../../src/actors/sandbox/pod-files.js';
import { applySysctls } from '../../src/actors/sandbox/sysctls.js';
import { isCrispError } from '../../src/errors.js';

const base = await mkdtemp('/tmp/crisp-test-ns-');
const pinnedAll: PinnedNamespaces[] = [];
const shmPaths: string[] = [];

after(async () => {
  for (const p of pinnedAll) await unpinNamespaces(p).catch(() => {});
  for (const p of shmPaths) await unmountPodShm(p).catch(() => {});
  await rm(base, { recursive: true, force: true });
});

async function pin(name: string, options: { hostname?: string; kinds?: ('net' | 'ipc' | 'uts')[] } = {}): Promise<PinnedNamespaces> {
  const ns = await pinNamespaces({ dir: join(base, name), ...options });
  pinnedAll.push(ns);
  return ns;
}

async function nsInode(path: string): Promise<string> {
  const entry = (await readMounts()).filter((m) => m.mountPoint === path).at(-1);
  assert.ok(entry, `${path} is mounted`);
  return entry.root;
}

test('pins net, ipc and uts namespaces with the hostname set, and unpins idempotently', async () => {
  const ns = await pin('pod1', { hostname: 'pod-one' });
  assert.deepEqual(Object.keys(ns).sort(), ['ipc', 'net', 'uts']);
  for (const k of ['net', 'ipc', 'uts'] as const) {
    assert.ok(await isPinned(ns[k]!, k), `${k} pinned`);
    assert.notEqual(await nsInode(ns[k]!), await readlink(`/proc/self/ns/${k}`), `${k} is not the host's`);
  }
  await assert.rejects(runInNamespaces({}, 'true', []), (e: unknown) => isCrispError(e, 'InvalidArgument'), 'entering no namespace is refused');

  const uts = await runInNamespaces({ uts: ns.uts! }, 'hostname', []);
  assert.equal(uts.stdout.trim(), 'pod-one');
  const hostHostname = (await readFile('/proc/sys/kernel/hostname', 'utf8')).trim();
  assert.notEqual(hostHostname, 'pod-one', "the node's hostname is untouched");

  const links = await runInNetns(ns.net!, 'ip', ['-o', 'link', 'show']);
  assert.equal(links.code, 0);
  assert.deepEqual(links.stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim()), ['lo'], 'a fresh netns has only lo');

  // Two pods get distinct namespaces.
  const other = await pin('pod2');
  assert.notEqual(await nsInode(ns.net!), await nsInode(other.net!));

  // Pinning over a live pin is refused rather than silently replacing it.
  await assert.rejects(pinNamespaces({ dir: join(base, 'pod1') }), (e: unknown) => isCrispError(e, 'AlreadyExists'));

  await unpinNamespaces(ns);
  for (const path of Object.values(ns)) {
    assert.equal(existsSync(path), false, `${path} removed`);
    assert.equal(await isMountPoint(path), false, `${path} unmounted`);
  }
  await unpinNamespaces(ns); // again: nothing to do, no error
  await unpinNamespaces(other);
});

test('only the requested kinds are pinned; bad input leaves nothing behind', async () => {
  const ns = await pin('ipc-only', { kinds: ['ipc'] });
  assert.deepEqual(Object.keys(ns), ['ipc']);
  assert.equal(existsSync(join(base, 'ipc-only', 'net')), false);
  await unpinNamespaces(ns);

  await assert.rejects(pinNamespaces({ dir: join(base, 'bad1'), hostname: 'Not_A_Hostname!' }), (e: unknown) => isCrispError(e, 'InvalidArgument') && /^hostname/.test(e.message));
  await assert.rejects(pinNamespaces({ dir: join(base, 'bad2'), kinds: ['net'], hostname: 'x' }), (e: unknown) => isCrispError(e, 'InvalidArgument') && /uts/.test(e.message));
  await assert.rejects(pinNamespaces({ dir: join(base, 'bad3'), kinds: ['pid' as 'net'] }), (e: unknown) => isCrispError(e, 'InvalidArgument') && /^kinds/.test(e.message));
  for (const d of ['bad1', 'bad2', 'bad3']) assert.equal(existsSync(join(base, d)), false, `${d} not created`);
});

test('namespaced sysctls are applied inside the pod, others are rejected', async () => {
  const ns = await pin('sysctl-pod', { hostname: 'sysctl-pod' });
  const hostPortStart = (await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')).trim();
  const hostShmmni = (await readFile('/proc/sys/kernel/shmmni', 'utf8')).trim();
  await applySysctls(ns, {
    'net.ipv4.ip_unprivileged_port_start': '0',
    'net/ipv4/tcp_syncookies': '0',
    'kernel.shmmni': '1234',
    'kernel.domainname': 'pods.example',
  });
  const read = async (key: string) => (await runInNamespaces(ns, 'sysctl', ['-n', key])).stdout.trim();
  assert.equal(await read('net.ipv4.ip_unprivileged_port_start'), '0');
  assert.equal(await read('net.ipv4.tcp_syncookies'), '0');
  assert.equal(await read('kernel.shmmni'), '1234');
  assert.equal(await read('kernel.domainname'), 'pods.example');
  assert.equal((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')).trim(), hostPortStart, 'node unchanged');
  assert.equal((await readFile('/proc/sys/kernel/shmmni', 'utf8')).trim(), hostShmmni, 'node unchanged');

  const hostPanic = (await readFile('/proc/sys/kernel/panic', 'utf8')).trim();
  await assert.rejects(
    applySysctls(ns, { 'net.ipv4.tcp_syncookies': '1', 'kernel.panic': '5' }),
    (e: unknown) => isCrispError(e, 'InvalidArgument') && /kernel\.panic/.test(e.message),
  );
  assert.equal(await read('net.ipv4.tcp_syncookies'), '0', 'nothing of a rejected set is applied');
  assert.equal((await readFile('/proc/sys/kernel/panic', 'utf8')).trim(), hostPanic);

  // A pod on the host network may not set net.*: that would change the node.
  const ipcOnly = await pin('sysctl-hostnet', { kinds: ['ipc', 'uts'] });
  await assert.rejects(applySysctls(ipcOnly, { 'net.ipv4.tcp_syncookies': '0' }), (e: unknown) => isCrispError(e, 'InvalidArgument') && /host network/.test(e.message));
  // A namespaced key the kernel does not have fails with the kernel's word on it.
  await assert.rejects(applySysctls(ns, { 'net.ipv4.crisp_no_such_key': '1' }), (e: unknown) => isCrispError(e, 'Internal') && /crisp_no_such_key/.test(e.message));
  await unpinNamespaces(ns);
  await unpinNamespaces(ipcOnly);
});

test('pod files hold what was asked; host-network pods get the host files', async () => {
  const dir = join(base, 'files');
  const files = await writePodFiles({
    dir,
    hostname: 'web-0',
    podIps: ['10.88.0.5', 'fd00::5'],
    dnsConfig: { servers: ['10.96.0.10', 'fd00::a'], searches: ['ns.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5', 'edns0'] },
  });
  assert.equal(await readFile(files.hostname, 'utf8'), 'web-0\n');
  assert.equal(
    await readFile(files.resolvConf, 'utf8'),
    'search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 edns0\n',
  );
  const hosts = await readFile(files.hosts, 'utf8');
  assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
  assert.match(hosts, /^::1\tlocalhost ip6-localhost ip6-loopback$/m);
  assert.match(hosts, /^10\.88\.0\.5\tweb-0$/m);
  assert.match(hosts, /^fd00::5\tweb-0$/m);

  const hostResolv = join(base, 'host-resolv.conf');
  const hostHosts = join(base, 'host-hosts');
  await writeFile(hostResolv, 'nameserver 192.0.2.53\n');
  await writeFile(hostHosts, '127.0.0.1 localhost\n192.0.2.2 node-1\n');
  const hostNet = await writePodFiles({ dir: join(base, 'files-hostnet'), hostname: 'node-1', podIps: [], hostNetwork: true, hostResolvConf: hostResolv, hostHostsFile: hostHosts });
  assert.equal(await readFile(hostNet.resolvConf, 'utf8'), 'nameserver 192.0.2.53\n');
  assert.equal(await readFile(hostNet.hosts, 'utf8'), '127.0.0.1 localhost\n192.0.2.2 node-1\n');

  await assert.rejects(
    writePodFiles({ dir: join(base, 'files-bad'), hostname: 'x', podIps: [], dnsConfig: { servers: ['not-an-ip'] } }),
    (e: unknown) => isCrispError(e, 'InvalidArgument') && /^dns_config\.servers\[0\]/.test(e.message),
  );
  assert.equal(existsSync(join(base, 'files-bad')), false, 'nothing written for a bad request');

  await removePodFiles(dir);
  await removePodFiles(dir);
  for (const f of Object.values(files)) assert.equal(existsSync(f), false);
});

test("the pod's /dev/shm is a sized tmpfs, unmounted idempotently", async () => {
  const path = join(base, 'shm');
  shmPaths.push(path);
  await mountPodShm(path, { sizeBytes: 1024 * 1024 });
  await mountPodShm(path, { sizeBytes: 1024 * 1024 }); // re-driven acquire: no second mount
  const mounts = (await readMounts()).filter((m) => m.mountPoint === path);
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0]!.fsType, 'tmpfs');
  const opts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.includes(` ${path} `))!;
  assert.match(opts, /size=1024k/);
  assert.equal((await stat(path)).mode & 0o7777, 0o1777, 'world-writable with the sticky bit, like /dev/shm');
  await assert.rejects(mountPodShm(join(base, 'shm-bad'), { sizeBytes: 0 }), (e: unknown) => isCrispError(e, 'InvalidArgument'));
  await unmountPodShm(path);
  await unmountPodShm(path);
  assert.equal(await isMountPoint(path), false);
  assert.equal(existsSync(path), false);
});
