// A container's security context, mounts and resources, applied for real: created through the
// daemon's CRI socket, run by runc under conmon, and observed from inside with ExecSync (busybox's
// id, /proc/<pid>/status, hostname, mount, touch) and from the host (mountinfo, cgroupfs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerSecurityContext } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerSecurityContext.js';
import { removeContainerReleased } from '../helpers/eventually.js';

const run = promisify(execFile);
let node: TestNode;
let podId: string;
let privilegedPodId: string;
// Host-side mount sources of the propagation tests: bind mounts of their own, so making them
// shared never touches a mount the host owns.
const hostDir = mkdtempSync('/tmp/crisp-test-sec-');

const rt = () => node.daemon.clients.runtime;
const CGROUP_V2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
// A file of the default masked list this kernel has (some kernels are built without /proc/kcore).
const MASKED_PROBE = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].find((p) => existsSync(p))!;
const inMountinfo = (path: string) => new RegExp(` ${path.replaceAll('/', '\\/')} `);

before(async () => {
  node = await startTestNode();
  podId = await node.runPod(`secpod${node.tag}`);
  const privileged = node.podConfig(`secpriv${node.tag}`);
  privileged.linux!.security_context!.privileged = true;
  privilegedPodId = (await call(rt(), rt().RunPodSandbox, { config: privileged }, 60_000)).pod_sandbox_id;
});

after(async () => {
  try {
    for (const id of [podId, privilegedPodId].filter(Boolean)) {
      await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000).catch(() => undefined);
      await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000).catch(() => undefined);
    }
  } finally {
    if (process.env['CRISP_TEST_DAEMON_LOG']) writeFileSync(process.env['CRISP_TEST_DAEMON_LOG'], node?.daemon.stderr() ?? '');
    await node?.cleanup();
    for (const m of mountsUnder(hostDir).reverse()) await run('umount', ['-l', m]).catch(() => undefined);
    rmSync(hostDir, { recursive: true, force: true });
  }
});

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`)).sort();
}

let counter = 0;
function config(extra: Partial<ContainerConfig> = {}, command = ['/bin/sleep', '600']): ContainerConfig {
  const name = `s${counter++}`;
  return { metadata: { name, attempt: 0 }, image: { image: node.image }, command, log_path: `${name}/0.log`, ...extra };
}
const secure = (sc: LinuxContainerSecurityContext, extra: Partial<ContainerConfig> = {}) =>
  config({ ...extra, linux: { ...extra.linux, security_context: sc } });

async function create(cfg: ContainerConfig, pod = podId): Promise<string> {
  const { container_id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: pod, config: cfg, sandbox_config: null }, 60_000);
  return container_id;
}
const start = (id: string) => call(rt(), rt().StartContainer, { container_id: id }, 30_000);
// RemoveContainer answers before the release; these tests look at the node after it.
const remove = (id: string) => removeContainerReleased(node.daemon, id);
const createError = (cfg: ContainerConfig, pod = podId) => create(cfg, pod).then(() => null, (e: grpc.ServiceError) => e);

async function exec(id: string, script: string): Promise<{ out: string; err: string; code: number }> {
  const r = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/sh', '-c', script], timeout: 10 }, 30_000);
  return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code };
}

/** Creates and starts a container, hands it to `body`, and removes it whatever happens. */
async function withContainer(cfg: ContainerConfig, body: (id: string) => Promise<void>, pod = podId): Promise<void> {
  const id = await create(cfg, pod);
  try {
    await start(id);
    await body(id);
  } finally {
    await remove(id);
  }
}

/** One field of the container's main process's /proc/<pid>/status, seen from inside. */
async function initStatus(id: string, field: string): Promise<string> {
  const r = await exec(id, `grep '^${field}:' /proc/1/status`);
  assert.equal(r.code, 0, r.err);
  return r.out.slice(field.length + 1).trim();
}

// Capability bit numbers (linux/capability.h) the tests name.
const CAP = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8, NET_BIND_SERVICE: 10, NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21, SYS_RESOURCE: 24 } as const;
const maskOf = (...bits: number[]) => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n);
const hexMask = (hex: string) => BigInt(`0x${hex}`);
const DEFAULT_CAPS = maskOf(CAP.CHOWN, CAP.DAC_OVERRIDE, CAP.FSETID, CAP.FOWNER, CAP.SETGID, CAP.SETUID, CAP.SETPCAP, CAP.NET_BIND_SERVICE, CAP.KILL);
// Every capability crisp knows (up to CAP_CHECKPOINT_RESTORE, 40) that this process's bounding set holds.
const HOST_CAPS = hexMask(readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s*(\w+)/m)![1]!) & ((1n << 41n) - 1n);

test('run as user, username and group, with image and supplemental groups', async () => {
  // appuser (1001) is in wheel (10) and audio (29) in the image's /etc/group.
  await withContainer(secure({ run_as_user: { value: '1001' }, supplemental_groups: ['4242'] }), async (id) => {
    assert.equal((await exec(id, 'id -u; id -g')).out, '1001\n1001\n');
    assert.deepEqual((await initStatus(id, 'Uid')).split(/\s+/), ['1001', '1001', '1001', '1001']);
    assert.deepEqual((await initStatus(id, 'Groups')).split(/\s+/).map(Number).sort((a, b) => a - b), [10, 29, 1001, 4242]);
    assert.equal((await exec(id, 'echo $HOME')).out, '/home/appuser\n', 'HOME comes from the image passwd entry');
  });
  await withContainer(secure({ run_as_username: 'builder' }), async (id) => {
    assert.equal((await exec(id, 'id -un; id -u; id -g')).out, 'builder\n1002\n100\n');
    assert.deepEqual((await initStatus(id, 'Groups')).split(/\s+/).map(Number).sort((a, b) => a - b), [29, 100]);
  });
  await withContainer(secure({ run_as_user: { value: '1001' }, run_as_group: { value: '29' } }), async (id) => {
    assert.deepEqual((await initStatus(id, 'Gid')).split(/\s+/), ['29', '29', '29', '29']);
    assert.equal((await exec(id, 'id -u; id -g')).out, '1001\n29\n');
  });
  // A uid the image does not know still runs, with gid 0 (as runc and CRI-O do).
  await withContainer(secure({ run_as_user: { value: '4321' } }), async (id) => {
    assert.equal((await exec(id, 'id -u; id -g')).out, '4321\n0\n');
  });
  // No user at all: the image has no USER, so root.
  await withContainer(config(), async (id) => {
    assert.equal((await exec(id, 'id -u; id -g')).out, '0\n0\n');
  });

  const groupOnly = await createError(secure({ run_as_group: { value: '29' } }));
  assert.equal(groupOnly?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(groupOnly.details, /run_as_group/);
  const unknownName = await createError(secure({ run_as_username: 'nosuchuser' }));
  assert.ok(unknownName, 'an unknown username fails the create');
  assert.equal(unknownName.code, grpc.status.INVALID_ARGUMENT, 'the request is at fault, not the node');
  assert.match(unknownName.details, /nosuchuser/);
});

test('ContainerStatus.user is what the process runs as; Strict leaves out the image\'s group memberships (KEP-3619)', async () => {
  const ids = (text: string) => text.split(/\s+/).map(Number).sort((a, b) => a - b);
  // appuser (1001) is in wheel (10) and audio (29) in the image's /etc/group.
  await withContainer(secure({ run_as_user: { value: '1001' }, supplemental_groups: ['4242'], supplemental_groups_policy: 'Merge' }), async (id) => {
    const user = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!.user!.linux!;
    assert.deepEqual({ uid: user.uid, gid: user.gid }, { uid: '1001', gid: '1001' });
    assert.deepEqual(user.supplemental_groups.map(Number).sort((a, b) => a - b), [10, 29, 1001, 4242]);
    assert.deepEqual(ids(await initStatus(id, 'Groups')), [10, 29, 1001, 4242], 'the status says what the process has');
  });
  await withContainer(secure({ run_as_user: { value: '1001' }, supplemental_groups: ['4242'], supplemental_groups_policy: 'Strict' }), async (id) => {
    const user = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!.user!.linux!;
    assert.deepEqual(user.supplemental_groups.map(Number).sort((a, b) => a - b), [1001, 4242]);
    assert.deepEqual(ids(await initStatus(id, 'Groups')), [1001, 4242]);
  });
  const status = await call(rt(), rt().Status, {});
  assert.equal(status.features?.supplemental_groups_policy, true);
});

test('stop_signal: the config\'s signal is sent first and reported; without one, SIGTERM is reported', async () => {
  const trap = ['/bin/sh', '-c', 'trap "exit 21" USR1; trap "exit 22" TERM; while true; do sleep 0.1; done'];
  const id = await create(config({ stop_signal: 'SIGNAL_SIGUSR1' }, trap));
  try {
    await start(id);
    assert.equal((await call(rt(), rt().ContainerStatus, { container_id: id })).status!.stop_signal, 'SIGNAL_SIGUSR1');
    await call(rt(), rt().StopContainer, { container_id: id, timeout: 10 }, 60_000);
    assert.equal((await call(rt(), rt().ContainerStatus, { container_id: id })).status!.exit_code, 21, 'SIGUSR1 reached the process');
  } finally {
    await remove(id);
  }
  await withContainer(config({}, trap), async (plain) => {
    assert.equal((await call(rt(), rt().ContainerStatus, { container_id: plain })).status!.stop_signal, 'SIGNAL_SIGTERM');
    await call(rt(), rt().StopContainer, { container_id: plain, timeout: 10 }, 60_000);
    assert.equal((await call(rt(), rt().ContainerStatus, { container_id: plain })).status!.exit_code, 22);
  });
});

test('capabilities: the default set, add and drop, ALL in either, clipped to the host', async () => {
  await withContainer(config(), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), DEFAULT_CAPS);
    assert.equal(hexMask(await initStatus(id, 'CapBnd')), DEFAULT_CAPS);
    assert.equal(hexMask(await initStatus(id, 'CapInh')), 0n);
    // root with CAP_CHOWN may give a file away
    assert.equal((await exec(id, 'touch /tmp/f && chown 1001 /tmp/f')).code, 0);
  });
  await withContainer(secure({ capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['CHOWN'], add_ambient_capabilities: [] } }), async (id) => {
    const want = (DEFAULT_CAPS | maskOf(CAP.NET_ADMIN)) & ~maskOf(CAP.CHOWN);
    assert.equal(hexMask(await initStatus(id, 'CapEff')), want);
    const chown = await exec(id, 'touch /tmp/f && chown 1001 /tmp/f');
    assert.notEqual(chown.code, 0, 'CAP_CHOWN was dropped');
    assert.match(chown.err, /Operation not permitted/);
  });
  await withContainer(secure({ capabilities: { add_capabilities: [], drop_capabilities: ['ALL'], add_ambient_capabilities: [] } }), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), 0n);
    assert.equal(hexMask(await initStatus(id, 'CapBnd')), 0n);
    assert.notEqual((await exec(id, 'touch /tmp/f && chown 1001 /tmp/f')).code, 0);
  });
  await withContainer(secure({ capabilities: { add_capabilities: ['NET_RAW'], drop_capabilities: ['ALL'], add_ambient_capabilities: [] } }), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), maskOf(CAP.NET_RAW));
  });
  // ALL is what the daemon itself may hand out: this host's bounding set lacks CAP_SYS_RESOURCE.
  await withContainer(secure({ capabilities: { add_capabilities: ['ALL'], drop_capabilities: ['NET_ADMIN'], add_ambient_capabilities: [] } }), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), HOST_CAPS & ~maskOf(CAP.NET_ADMIN));
  });

  const unknown = await createError(secure({ capabilities: { add_capabilities: ['CAP_NOT_A_THING'], drop_capabilities: [], add_ambient_capabilities: [] } }));
  assert.equal(unknown?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(unknown.details, /add_capabilities\[0\].*CAP_NOT_A_THING/);
});

test('privileged: every capability the host has, host devices, no masks, writable /sys, unconfined', async () => {
  const refused = await createError(secure({ privileged: true }));
  assert.ok(refused, 'a privileged container in an unprivileged pod is refused');
  assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
  assert.match(refused.details, /privileged/);

  const hostDevice = ['kmsg', 'mem', 'loop-control', 'fuse', 'net/tun'].find((d) => existsSync(`/dev/${d}`));
  assert.ok(hostDevice, 'the host has one of the probe devices');
  await withContainer(secure({ privileged: true }), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), HOST_CAPS);
    assert.equal(await initStatus(id, 'Seccomp'), '0');
    assert.equal((await exec(id, `test -e /dev/${hostDevice}`)).code, 0, `/dev/${hostDevice} is there`);
    const mountinfo = (await exec(id, 'cat /proc/self/mountinfo')).out;
    assert.doesNotMatch(mountinfo, inMountinfo(MASKED_PROBE), 'nothing masked');
    assert.doesNotMatch(mountinfo, / \/proc\/sys ro,/, 'nothing read-only under /proc');
    assert.match(mountinfo, / \/sys rw,/);
    assert.equal((await exec(id, 'mkdir -p /tmp/m && mount -t tmpfs tmpfs /tmp/m && umount /tmp/m')).code, 0, 'mount works');
    const info = JSON.parse((await call(rt(), rt().ContainerStatus, { container_id: id, verbose: true })).info['info']!);
    assert.equal(info.privileged, true);
  }, privilegedPodId);
  // An unprivileged container in a privileged pod is still confined.
  await withContainer(secure({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } }), async (id) => {
    assert.equal(hexMask(await initStatus(id, 'CapEff')), DEFAULT_CAPS);
    assert.equal(await initStatus(id, 'Seccomp'), '2');
  }, privilegedPodId);
});

test('read-only rootfs: the root and pod files refuse writes, /dev/shm and the termination log do not', async () => {
  await withContainer(secure({ readonly_rootfs: true }), async (id) => {
    const touch = await exec(id, 'touch /newfile');
    assert.notEqual(touch.code, 0);
    assert.match(touch.err, /Read-only file system/);
    assert.notEqual((await exec(id, 'echo x >> /etc/hosts')).code, 0, '/etc/hosts is read-only too');
    assert.equal((await exec(id, 'echo ok > /dev/shm/f && cat /dev/shm/f')).out, 'ok\n');
    assert.equal((await exec(id, 'echo msg > /dev/termination-log')).code, 0);
  });
  await withContainer(config(), async (id) => {
    assert.equal((await exec(id, 'touch /newfile && echo x >> /etc/hosts')).code, 0, 'a writable rootfs by default');
  });
});

test('masked and read-only paths: the defaults, the lists CRI gives, and empty lists', async () => {
  await withContainer(config(), async (id) => {
    assert.ok(readFileSync(MASKED_PROBE).length > 0, `${MASKED_PROBE} has content on the host`);
    const masked = await exec(id, `wc -c < ${MASKED_PROBE}`);
    assert.equal(masked.out.trim(), '0', `${MASKED_PROBE} reads as /dev/null: ${masked.err}`);
    assert.equal((await exec(id, `grep -c " ${MASKED_PROBE} " /proc/self/mountinfo`)).out.trim(), '1');
    const sys = await exec(id, 'echo 1 > /proc/sys/kernel/ns_last_pid');
    assert.notEqual(sys.code, 0);
    assert.match(sys.err, /Read-only file system/);
    assert.match((await exec(id, 'grep " /proc/sys " /proc/self/mountinfo')).out, / \/proc\/sys ro,/);
  });
  await withContainer(secure({ masked_paths: ['/proc/version'], readonly_paths: ['/home'] }), async (id) => {
    assert.equal((await exec(id, 'cat /proc/version')).out, '', 'masked file reads empty');
    assert.equal((await exec(id, `grep -c " ${MASKED_PROBE} " /proc/self/mountinfo`)).out.trim(), '0', 'the defaults are replaced');
    const home = await exec(id, 'touch /home/x');
    assert.match(home.err, /Read-only file system/);
    assert.equal((await exec(id, 'touch /tmp/x')).code, 0, 'the rest of the rootfs stays writable');
  });
  // proto3 reads unset lists as empty: empty lists keep the defaults, never an unmasked /proc.
  await withContainer(secure({ masked_paths: [], readonly_paths: [] }), async (id) => {
    const mountinfo = (await exec(id, 'cat /proc/self/mountinfo')).out;
    assert.match(mountinfo, inMountinfo(MASKED_PROBE));
    assert.match(mountinfo, / \/proc\/sys ro,/);
  });
});

test('seccomp: RuntimeDefault blocks sethostname without CAP_SYS_ADMIN; Unconfined and Localhost profiles', async () => {
  const sysAdmin = { add_capabilities: ['SYS_ADMIN'], drop_capabilities: [], add_ambient_capabilities: [] };
  const hostnameOf = async (id: string) => (await exec(id, 'hostname')).out.trim();
  // Nothing asked is unconfined (containerd's behaviour, and what critest checks).
  await withContainer(secure({}), async (id) => {
    assert.equal(await initStatus(id, 'Seccomp'), '0');
  });
  // The typed RuntimeDefault, and its legacy spelling.
  const defaults: LinuxContainerSecurityContext[] = [{ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } }, { seccomp_profile_path: 'runtime/default' }];
  for (const sc of defaults) {
    await withContainer(secure(sc), async (id) => {
      assert.equal(await initStatus(id, 'Seccomp'), '2');
      assert.equal(await initStatus(id, 'NoNewPrivs'), '0');
      const r = await exec(id, 'hostname blocked');
      assert.notEqual(r.code, 0);
      assert.match(r.err, /Operation not permitted/);
      const spec = JSON.parse((await call(rt(), rt().ContainerStatus, { container_id: id, verbose: true })).info['info']!).runtimeSpec;
      const rule = spec.linux.seccomp.syscalls.find((s: { names: string[] }) => s.names.includes('sethostname'));
      assert.equal(rule.action, 'SCMP_ACT_ERRNO', 'the profile itself refuses sethostname without CAP_SYS_ADMIN');
    });
  }
  // With CAP_SYS_ADMIN the default profile lets it through (its caps condition).
  await withContainer(secure({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, capabilities: sysAdmin }), async (id) => {
    const before = await hostnameOf(id);
    assert.equal((await exec(id, 'hostname allowed')).code, 0);
    assert.equal(await hostnameOf(id), 'allowed');
    await exec(id, `hostname ${before}`);
  });
  await withContainer(secure({ seccomp: { profile_type: 'Unconfined', localhost_ref: '' }, no_new_privs: true }), async (id) => {
    assert.equal(await initStatus(id, 'Seccomp'), '0');
    assert.equal(await initStatus(id, 'NoNewPrivs'), '1');
  });
  // A Localhost profile that refuses sethostname with ENOSYS even to CAP_SYS_ADMIN: the errno
  // shows the filter, not a missing capability, refused it.
  const profile = join(hostDir, 'no-sethostname.json');
  writeFileSync(profile, JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }],
  }));
  const localhost: LinuxContainerSecurityContext[] = [{ seccomp: { profile_type: 'Localhost', localhost_ref: profile } }, { seccomp_profile_path: `localhost/${profile}` }];
  for (const sc of localhost) {
    await withContainer(secure({ ...sc, capabilities: sysAdmin }), async (id) => {
      assert.equal(await initStatus(id, 'Seccomp'), '2');
      const r = await exec(id, 'hostname refused');
      assert.notEqual(r.code, 0);
      assert.match(r.err, /Function not implemented/);
    });
  }
  const legacy = await createError(secure({ seccomp_profile_path: 'no/such-form' }));
  assert.equal(legacy?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(legacy.details, /seccomp_profile_path/);
});

/** A host directory bind-mounted onto itself, so its propagation is ours to change. */
async function ownMount(name: string, propagation?: 'shared'): Promise<string> {
  const dir = join(hostDir, name);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  await run('mount', ['--bind', dir, dir]);
  if (propagation) await run('mount', ['--make-shared', dir]);
  return dir;
}
const propagationOf = async (dir: string) => (await run('findmnt', ['-n', '-o', 'PROPAGATION', '--mountpoint', dir])).stdout.trim();

test('mount propagation: PRIVATE sees no later host mount, HOST_TO_CONTAINER does', async () => {
  const priv = await ownMount('private', 'shared');
  const slave = await ownMount('h2c');
  const cfg = config({
    mounts: [
      { container_path: '/mnt/private', host_path: priv, propagation: 'PROPAGATION_PRIVATE' },
      { container_path: '/mnt/h2c', host_path: slave, propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
    ],
  });
  await withContainer(cfg, async (id) => {
    assert.match(await propagationOf(slave), /shared/, 'the host source was made shared so events can reach the container');
    for (const dir of [priv, slave]) {
      await run('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'sub')]);
      writeFileSync(join(dir, 'sub', 'hello'), 'from host\n');
    }
    assert.equal((await exec(id, 'cat /mnt/h2c/sub/hello')).out, 'from host\n');
    assert.equal((await exec(id, 'ls -A /mnt/private/sub')).out, '', 'a private mount receives nothing after start');
    // and nothing the container could do flows back out of a slave
    assert.equal((await exec(id, 'ls /mnt/h2c')).out, 'sub\n');
  });
  for (const dir of [priv, slave]) await run('umount', [join(dir, 'sub')]);
});

test('mount propagation: BIDIRECTIONAL carries mounts both ways', async () => {
  const shared = await ownMount('bidi');
  const cfg = secure({ privileged: true }, {
    mounts: [{ container_path: '/mnt/bidi', host_path: shared, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
  });
  try {
    await withContainer(cfg, async (id) => {
      assert.match(await propagationOf(shared), /shared/);
      await run('mount', ['-t', 'tmpfs', 'tmpfs', join(shared, 'sub')]);
      writeFileSync(join(shared, 'sub', 'hello'), 'from host\n');
      assert.equal((await exec(id, 'cat /mnt/bidi/sub/hello')).out, 'from host\n');
      const inside = await exec(id, 'mkdir -p /mnt/bidi/inner && mount -t tmpfs tmpfs /mnt/bidi/inner && echo from container > /mnt/bidi/inner/f');
      assert.equal(inside.code, 0, inside.err);
      assert.ok(mountsUnder(shared).includes(join(shared, 'inner')), 'the container\'s mount shows on the host');
      assert.equal(readFileSync(join(shared, 'inner', 'f'), 'utf8'), 'from container\n');
    }, privilegedPodId);
  } finally {
    for (const m of mountsUnder(shared).filter((m) => m !== shared).reverse()) await run('umount', ['-l', m]).catch(() => undefined);
  }
});

test('CRI mounts: read-only, a missing host path made a directory, a symlinked host path resolved', async () => {
  const data = join(hostDir, 'ro-data');
  mkdirSync(data);
  writeFileSync(join(data, 'file'), 'host data\n');
  const missing = join(hostDir, 'not', 'yet', 'there');
  const target = join(hostDir, 'link-target');
  mkdirSync(target);
  const link = join(hostDir, 'link');
  symlinkSync(target, link);
  const cfg = config({
    mounts: [
      { container_path: '/mnt/ro', host_path: data, readonly: true },
      { container_path: '/mnt/new', host_path: missing },
      { container_path: '/mnt/link', host_path: link },
    ],
  });
  const id = await create(cfg);
  try {
    assert.ok(lstatSync(missing).isDirectory(), 'the missing host path is now a directory');
    await start(id);
    assert.equal((await exec(id, 'cat /mnt/ro/file')).out, 'host data\n');
    const write = await exec(id, 'touch /mnt/ro/x');
    assert.match(write.err, /Read-only file system/);
    assert.equal(existsSync(join(data, 'x')), false);
    assert.equal((await exec(id, 'echo made > /mnt/new/f')).code, 0);
    assert.equal(readFileSync(join(missing, 'f'), 'utf8'), 'made\n');
    assert.equal((await exec(id, 'test -L /mnt/link || echo not-a-link > /mnt/link/f')).code, 0);
    assert.equal(readFileSync(join(target, 'f'), 'utf8'), 'not-a-link\n', 'the bind landed on the symlink target');
    const s = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!;
    assert.deepEqual(s.mounts.map((m) => [m.container_path, m.readonly]), [['/mnt/ro', true], ['/mnt/new', false], ['/mnt/link', false]]);
  } finally {
    await remove(id);
  }
});

test('recursive read-only mounts: submounts are read-only too; refused where the request or the handler cannot have them', async () => {
  const tree = join(hostDir, 'rro-tree');
  const sub = join(tree, 'sub');
  mkdirSync(sub, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'crisp-test-rro', sub]);
  const mount = (extra: object) => ({ container_path: '/mnt/tree', host_path: tree, readonly: true, ...extra });
  // Plain read-only: runc makes only the top of the bind read-only; its submount stays writable.
  await withContainer(config({ mounts: [mount({})] }), async (id) => {
    assert.match((await exec(id, 'touch /mnt/tree/top')).err, /Read-only file system/);
    assert.equal((await exec(id, 'touch /mnt/tree/sub/plain')).code, 0, 'a plain ro bind leaves submounts writable');
  });
  await withContainer(config({ mounts: [mount({ recursive_read_only: true, propagation: 'PROPAGATION_PRIVATE' })] }), async (id) => {
    const write = await exec(id, 'touch /mnt/tree/sub/rro');
    assert.notEqual(write.code, 0);
    assert.match(write.err, /Read-only file system/);
    assert.equal(existsSync(join(sub, 'rro')), false);
  });
  const notReadonly = await createError(config({ mounts: [mount({ readonly: false, recursive_read_only: true })] }));
  assert.equal(notReadonly?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(notReadonly.details, /mounts\[0\]\.recursive_read_only: needs readonly/);
  const shared = await createError(config({ mounts: [mount({ recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }));
  assert.equal(shared?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(shared.details, /needs propagation PROPAGATION_PRIVATE/);
  // crun 1.8 cannot say it supports rro, so its pods are refused one.
  const crunConfig = node.podConfig(`seccrun${node.tag}`);
  const crunPodId = (await call(rt(), rt().RunPodSandbox, { config: crunConfig, runtime_handler: 'crun' }, 60_000)).pod_sandbox_id;
  try {
    const refused = await createError(config({ mounts: [mount({ recursive_read_only: true })] }), crunPodId);
    assert.equal(refused?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(refused.details, /runtime handler "crun" does not support recursive read-only mounts/);
  } finally {
    await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: crunPodId }, 60_000);
    await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: crunPodId }, 60_000);
    await run('umount', [sub]);
  }
});

test('mount_options: bind-mount flags are honoured, anything else is INVALID_ARGUMENT naming the option', async () => {
  const dir = join(hostDir, 'opts');
  mkdirSync(dir);
  await withContainer(config({ mounts: [{ container_path: '/mnt/opts', host_path: dir, mount_options: ['noexec', 'nosuid', 'ro'] }] }), async (id) => {
    const line = (await exec(id, 'grep " /mnt/opts " /proc/mounts')).out;
    const flags = line.split(' ')[3]!.split(',');
    for (const flag of ['ro', 'noexec', 'nosuid']) assert.ok(flags.includes(flag), `${flag} in ${line}`);
  });
  const bad = await createError(config({ mounts: [{ container_path: '/mnt/opts', host_path: dir, mount_options: ['nosuid', 'size=10m'] }] }));
  assert.equal(bad?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(bad.details, /mounts\[0\]\.mount_options\[1\]: "size=10m" is not supported/);
});

function cgroupDir(controller: string, id: string): string {
  const leaf = join(node.cgroupParent, `crisp-${id}`);
  return CGROUP_V2 ? join('/sys/fs/cgroup', leaf) : join('/sys/fs/cgroup', controller, leaf);
}
const readCgroup = (controller: string, id: string, file: string) => readFileSync(join(cgroupDir(controller, id), file), 'utf8').trim();

test('resources are in the container\'s cgroup at create: cpu shares and quota, memory limit, pids', async () => {
  const cfg = config({
    linux: {
      resources: {
        cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000',
        memory_limit_in_bytes: String(48 * 1024 * 1024),
      },
    },
  });
  const id = await create(cfg);
  try {
    if (CGROUP_V2) {
      // runc's shares → weight conversion: 1 + ((512 - 2) * 9999) / 262142
      assert.equal(readCgroup('cpu', id, 'cpu.weight'), String(1 + Math.floor(((512 - 2) * 9999) / 262142)));
      assert.equal(readCgroup('cpu', id, 'cpu.max'), '50000 100000');
      assert.equal(readCgroup('memory', id, 'memory.max'), String(48 * 1024 * 1024));
    } else {
      assert.equal(readCgroup('cpu', id, 'cpu.shares'), '512');
      assert.equal(readCgroup('cpu', id, 'cpu.cfs_quota_us'), '50000');
      assert.equal(readCgroup('cpu', id, 'cpu.cfs_period_us'), '100000');
      assert.equal(readCgroup('memory', id, 'memory.limit_in_bytes'), String(48 * 1024 * 1024));
    }
    // The created (not yet started) process is already counted in its pids cgroup.
    const info = JSON.parse((await call(rt(), rt().ContainerStatus, { container_id: id, verbose: true })).info['info']!);
    assert.ok(info.pid > 0);
    assert.ok(readCgroup('pids', id, 'cgroup.procs').split('\n').includes(String(info.pid)));
    assert.ok(Number(readCgroup('pids', id, 'pids.current')) >= 1);
    await start(id);
    await exec(id, 'sleep 30 >/dev/null 2>&1 & sleep 30 >/dev/null 2>&1 & true');
    assert.ok(Number(readCgroup('pids', id, 'pids.current')) >= 3, 'background processes are counted');
    assert.equal((await exec(id, 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max')).out.trim(), String(48 * 1024 * 1024), 'the container sees its own limit');
  } finally {
    await remove(id);
  }
  assert.equal(existsSync(cgroupDir('memory', id)), false, 'the cgroup is gone after remove');
});

/** Command lines of the conmon and runc processes whose arguments name `dir`. */
function processesMentioning(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const cmdline = argv.join(' ');
      if (/(^|\/)(conmon|runc)$/.test(argv[0] ?? '') && cmdline.includes(dir)) found.push(cmdline);
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** Everything of crisp's on the host that a container could leave behind, live containers aside. */
function leftovers(live: string[]) {
  const containersDir = join(node.daemon.root, 'containers');
  const cgroupBases = CGROUP_V2
    ? [join('/sys/fs/cgroup', node.cgroupParent)]
    : readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, node.cgroupParent));
  const runcRoot = join(node.daemon.runroot, 'runc');
  const notLive = (names: string[]) => names.filter((n) => !live.some((id) => n.includes(id)));
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  return {
    mounts: notLive(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(containersDir))),
    dirs: notLive(list(containersDir)),
    cgroups: notLive(cgroupBases.flatMap((base) => list(base).filter((n) => n.startsWith('crisp-')).map((n) => join(base, n)))),
    runc: notLive(list(runcRoot)),
    conmons: notLive(processesMentioning(node.daemon.runroot)),
  };
}
const NOTHING = { mounts: [], dirs: [], cgroups: [], runc: [], conmons: [] };
const liveIds = async () => (await call(rt(), rt().ListContainers, { filter: null })).containers.map((c) => c.id);

test('a failure at the rootfs-mount step (an image layer gone) leaves nothing behind, and the name is free again', async () => {
  const layersDir = join(node.daemon.root, 'layers');
  const diffs = readdirSync(layersDir).filter((d) => /^[0-9a-f]{64}$/.test(d) && existsSync(join(layersDir, d, 'diff')));
  assert.ok(diffs.length > 0, 'the pulled image has layers on disk');
  for (const d of diffs) renameSync(join(layersDir, d, 'diff'), join(layersDir, d, 'diff.away'));
  const cfg = config({ linux: { resources: { memory_limit_in_bytes: String(32 * 1024 * 1024) } } });
  let err: grpc.ServiceError | null;
  try {
    err = await createError(cfg);
  } finally {
    for (const d of diffs) renameSync(join(layersDir, d, 'diff.away'), join(layersDir, d, 'diff'));
  }
  assert.ok(err, 'create failed');
  assert.match(err.details, /rootfs-mount/);
  assert.deepEqual(leftovers(await liveIds()), NOTHING);
  // With the layers back the same name creates and runs.
  await withContainer(cfg, async (id) => assert.equal((await exec(id, 'echo up')).out, 'up\n'));
});

test('a failure at runtime-create with resources set leaves no cgroup, mount or conmon', async () => {
  const err = await createError(config({
    working_dir: '/bin/busybox',
    linux: { resources: { cpu_shares: '256', memory_limit_in_bytes: String(32 * 1024 * 1024) } },
  }));
  assert.ok(err, 'create failed');
  assert.match(err.details, /runtime-create/);
  assert.deepEqual(leftovers(await liveIds()), NOTHING);
});

test('a failure at spec-write removes the missing host path it had made, and everything else', async () => {
  const parent = join(hostDir, 'made-then-failed');
  const missing = join(parent, 'a', 'b');
  const err = await createError(secure(
    { seccomp: { profile_type: 'Localhost', localhost_ref: join(hostDir, 'no-such-profile.json') } },
    { mounts: [{ container_path: '/mnt/new', host_path: missing }] },
  ));
  assert.ok(err, 'create failed');
  assert.match(err.details, /spec-write.*no-such-profile/);
  assert.equal(existsSync(parent), false, 'the directories made for the mount are gone');
  assert.deepEqual(leftovers(await liveIds()), NOTHING);
});
