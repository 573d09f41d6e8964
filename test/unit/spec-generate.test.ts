import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSubPath, KNOWN_CAPABILITIES, validateCriMount } from '../../src/machines/container-rules.js';
import { readFileSync } from 'node:fs';
import { isCrispError } from '../../src/errors.js';
import { generateSpec, generateInfraSpec, ANNOTATIONS } from '../../src/actors/spec/generate.js';
import { DEFAULT_CAPABILITIES } from '../../src/actors/spec/capabilities.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../src/actors/spec/security.js';
import {
  criContainerConfig,
  criMount,
  criResources,
  criSandboxConfig,
  criSandboxSecurityContext,
  criSecurityContext,
} from '../helpers/cri-defaults.js';
import type { HostFacts, ResolvedUser, SpecInput } from '../../src/actors/spec/input.js';
import { podResourcesOf } from '../../src/actors/spec/pod-resources.js';
import type { SandboxContext } from '../../src/machines/sandbox.js';
import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerSecurityContext__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { LinuxContainerResources__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { PodSandboxConfig__Output } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { OciImageConfig } from '../../src/actors/spec/oci-types.js';

const seccompJson = JSON.parse(readFileSync('/usr/share/containers/seccomp.json', 'utf8')) as unknown;

// This host's shape: cgroup v1, a bounding set without CAP_SYS_RESOURCE, no LSMs.
const HOST: HostFacts = {
  capabilities: KNOWN_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'),
  cgroupVersion: 1,
  cgroupNamespace: true,
  defaultSeccompProfile: seccompJson,
  oomScoreAdj: -500,
  apparmor: false,
  selinux: false,
  swapAccounting: true,
  hugetlb: true,
  arch: 'amd64',
  kernelRelease: '6.1.0',
  devices: [
    { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/loop0', type: 'b', major: 7, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
  ],
};

const ROOT_USER: ResolvedUser = { uid: 0, gid: 0, additionalGids: [0], username: 'root', home: '/root' };

interface Overrides {
  container?: Partial<ContainerConfig__Output>;
  sc?: Partial<LinuxContainerSecurityContext__Output>;
  resources?: Partial<LinuxContainerResources__Output>;
  sandbox?: Partial<PodSandboxConfig__Output>;
  podPrivileged?: boolean;
  image?: OciImageConfig;
  host?: Partial<HostFacts>;
  input?: Partial<SpecInput>;
  pod?: Partial<SpecInput['pod']>;
}

function input(o: Overrides = {}): SpecInput {
  const sandbox = criSandboxConfig(o.sandbox);
  if (o.podPrivileged && sandbox.linux?.security_context) sandbox.linux.security_context.privileged = true;
  return {
    containerId: 'c1',
    sandboxId: 'sb1',
    container: criContainerConfig({
      linux: { resources: criResources(o.resources), security_context: criSecurityContext(o.sc) },
      ...o.container,
    }),
    sandbox,
    image: { config: o.image ?? { Entrypoint: ['/bin/app'], Cmd: ['--serve'], Env: ['PATH=/usr/bin:/bin', 'A=1'] }, name: 'example.com/app:1', id: 'sha256:abc' },
    rootfs: '/var/lib/crisp/containers/c1/rootfs',
    pod: {
      netns: '/run/crisp/netns/sb1',
      ipcns: '/run/crisp/ipcns/sb1',
      utsns: '/run/crisp/utsns/sb1',
      pidns: '/proc/4242/ns/pid',
      hostnamePath: '/run/crisp/pods/sb1/hostname',
      hostsPath: '/run/crisp/pods/sb1/hosts',
      resolvConfPath: '/run/crisp/pods/sb1/resolv.conf',
      shmPath: '/run/crisp/pods/sb1/shm',
      cgroupParent: '/kubepods/pod1',
      hostname: 'web-0',
      ...o.pod,
    },
    host: { ...HOST, ...o.host },
    ...o.input,
  };
}

const gen = (o: Overrides = {}, user: ResolvedUser = ROOT_USER) => generateSpec(input(o), user);

function rejects(fn: () => unknown, kind: string, fieldPattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isCrispError(err), `expected a CrispError, got ${String(err)}`);
    assert.equal(err.kind, kind);
    assert.match(err.message, fieldPattern);
    return true;
  });
}

const kv = (key: string, value: string) => ({ key, value: Buffer.from(value) });

test('process args follow kubelet merge rules', () => {
  const image = { Entrypoint: ['/ep', 'e1'], Cmd: ['c1', 'c2'] };
  const cases: { command: string[]; args: string[]; want: string[] }[] = [
    { command: [], args: [], want: ['/ep', 'e1', 'c1', 'c2'] },
    { command: ['/cmd'], args: [], want: ['/cmd'] },
    { command: [], args: ['a1'], want: ['/ep', 'e1', 'a1'] },
    { command: ['/cmd', 'x'], args: ['a1'], want: ['/cmd', 'x', 'a1'] },
  ];
  for (const c of cases) {
    const { spec } = gen({ image, container: { command: c.command, args: c.args } });
    assert.deepEqual(spec.process.args, c.want, JSON.stringify(c));
  }
  assert.deepEqual(gen({ image: { Cmd: ['/only-cmd'] } }).spec.process.args, ['/only-cmd']);
  rejects(() => gen({ image: {} }), 'InvalidArgument', /command/);
});

test('env: image first, CRI wins, PATH default, HOSTNAME/HOME/TERM', () => {
  const { spec } = gen({ container: { envs: [kv('A', '2'), kv('B', 'x=y')], tty: true } });
  assert.deepEqual(spec.process.env, ['PATH=/usr/bin:/bin', 'A=2', 'B=x=y', 'HOSTNAME=web-0', 'TERM=xterm', 'HOME=/root']);
  assert.equal(spec.process.terminal, true);
  const noPath = gen({ image: { Cmd: ['/x'] } }).spec.process.env;
  assert.ok(noPath.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));
  assert.ok(!noPath.some((e) => e.startsWith('TERM=')));
  const criHome = gen({ container: { envs: [kv('HOME', '/custom'), kv('HOSTNAME', 'mine')] } }).spec.process.env;
  assert.ok(criHome.includes('HOME=/custom') && criHome.includes('HOSTNAME=mine'));
  rejects(() => gen({ container: { envs: [kv('', 'v')] } }), 'InvalidArgument', /envs\[0\]\.key/);
});

test('cwd: CRI working_dir, else image WorkingDir, else /', () => {
  assert.equal(gen({ container: { working_dir: '/w' }, image: { Cmd: ['x'], WorkingDir: '/img' } }).spec.process.cwd, '/w');
  assert.equal(gen({ image: { Cmd: ['x'], WorkingDir: '/img' } }).spec.process.cwd, '/img');
  assert.equal(gen({ image: { Cmd: ['x'] } }).spec.process.cwd, '/');
  rejects(() => gen({ container: { working_dir: 'rel' } }), 'InvalidArgument', /working_dir/);
});

test('user and groups, with the pod supplemental groups added', () => {
  const { spec } = gen(
    { sandbox: { linux: { ...criSandboxConfig().linux!, security_context: criSandboxSecurityContext({ supplemental_groups: ['3000', '10'] }) } } },
    { uid: 1000, gid: 1000, additionalGids: [1000, 10], home: '/home/u', username: 'u' },
  );
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10, 3000] });
});

test('namespaces per namespace_options', () => {
  const types = (o: Overrides) => gen(o).spec.linux.namespaces;
  const nsOpt = (network: string, pid: string, ipc: string) =>
    criSecurityContext({ namespace_options: { network, pid, ipc, target_id: '', userns_options: null } as never });
  // No options anywhere reads as proto3's default, POD: join the pod's PID namespace.
  assert.deepEqual(types({}), [
    { type: 'network', path: '/run/crisp/netns/sb1' },
    { type: 'ipc', path: '/run/crisp/ipcns/sb1' },
    { type: 'uts', path: '/run/crisp/utsns/sb1' },
    { type: 'pid', path: '/proc/4242/ns/pid' },
    { type: 'mount' },
  ]);
  assert.deepEqual(types({ sc: nsOpt('POD', 'CONTAINER', 'POD') })[3], { type: 'pid' });
  assert.deepEqual(types({ sc: nsOpt('NODE', 'NODE', 'NODE') }), [{ type: 'mount' }]);
  assert.deepEqual(types({ sc: nsOpt('POD', 'POD', 'POD') })[3], { type: 'pid', path: '/proc/4242/ns/pid' });
  // A pod without a PID namespace of its own has none to share: the container gets its own.
  assert.deepEqual(types({ sc: nsOpt('POD', 'POD', 'POD'), pod: { pidns: undefined } })[3], { type: 'pid' });
  rejects(() => gen({ pod: { netns: undefined } }), 'FailedPrecondition', /network/);
  const target = { ...nsOpt('POD', 'TARGET', 'POD') };
  assert.deepEqual(gen({ sc: target, input: { targetPidns: '/proc/7/ns/pid' } }).spec.linux.namespaces[3], { type: 'pid', path: '/proc/7/ns/pid' });
  rejects(() => gen({ sc: target }), 'FailedPrecondition', /target_id/);
  // cgroup namespace on cgroup v2 only
  assert.ok(types({ host: { cgroupVersion: 2 } }).some((n) => n.type === 'cgroup'));
  assert.ok(!types({ host: { cgroupVersion: 1 } }).some((n) => n.type === 'cgroup'));
  assert.ok(!types({ host: { cgroupVersion: 2, cgroupNamespace: false } }).some((n) => n.type === 'cgroup'));
  // pod-level options apply when the container has none
  const podNode = criSandboxConfig();
  podNode.linux!.security_context!.namespace_options = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null };
  const hostNet = gen({ sandbox: podNode });
  assert.ok(!hostNet.spec.linux.namespaces.some((n) => n.type === 'network' || n.type === 'uts'));
  assert.equal(hostNet.spec.hostname, undefined);
  assert.ok(!hostNet.spec.process.env.some((e) => e.startsWith('HOSTNAME=')));
  const userns = criSecurityContext({ namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: { mode: 'POD', uids: [], gids: [] } } });
  rejects(() => gen({ sc: userns }), 'Unimplemented', /userns_options/);
});

test('default mounts, pod files, shm and their order', () => {
  const { spec } = gen();
  const dests = spec.mounts.map((m) => m.destination);
  assert.deepEqual(dests, ['/proc', '/dev', '/sys', '/dev/pts', '/dev/mqueue', '/dev/shm', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/sys/fs/cgroup']);
  const byDest = Object.fromEntries(spec.mounts.map((m) => [m.destination, m]));
  assert.deepEqual(byDest['/sys']?.options, ['nosuid', 'noexec', 'nodev', 'ro']);
  assert.deepEqual(byDest['/sys/fs/cgroup']?.options.at(-1), 'ro');
  assert.deepEqual(byDest['/dev/shm'], { destination: '/dev/shm', type: 'bind', source: '/run/crisp/pods/sb1/shm', options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'rw'] });
  assert.deepEqual(byDest['/etc/hosts'], { destination: '/etc/hosts', type: 'bind', source: '/run/crisp/pods/sb1/hosts', options: ['rbind', 'rprivate', 'rw'] });
  const privateShm = gen({ pod: { shmPath: undefined } }).spec.mounts.find((m) => m.destination === '/dev/shm');
  assert.equal(privateShm?.type, 'tmpfs');
  const ro = gen({ sc: { readonly_rootfs: true } }).spec;
  assert.equal(ro.root.readonly, true);
  assert.deepEqual(ro.mounts.find((m) => m.destination === '/etc/resolv.conf')?.options, ['rbind', 'rprivate', 'ro']);
  assert.equal(gen().spec.root.readonly, false);
});

test('CRI mounts: propagation, readonly, override defaults, parents first', () => {
  const mounts = [
    criMount({ container_path: '/data/sub', host_path: '/srv/sub', readonly: true }),
    criMount({ container_path: '/data', host_path: '/srv/data', propagation: 'PROPAGATION_HOST_TO_CONTAINER' }),
    criMount({ container_path: '/etc/hosts', host_path: '/srv/hosts' }),
    criMount({ container_path: '/shared/', host_path: '/srv/shared', propagation: 'PROPAGATION_BIDIRECTIONAL' }),
    criMount({ container_path: '/x', host_path: '/srv/x', selinux_relabel: true }),
  ];
  const { spec, hostPropagation } = gen({ container: { mounts } });
  const custom = spec.mounts.filter((m) => m.source.startsWith('/srv'));
  assert.deepEqual(custom.map((m) => [m.destination, m.options]), [
    ['/data', ['rbind', 'rslave', 'rw']],
    ['/shared', ['rbind', 'rshared', 'rw']],
    ['/x', ['rbind', 'rprivate', 'rw']],
    ['/data/sub', ['rbind', 'rprivate', 'ro']],
    ['/etc/hosts', ['rbind', 'rprivate', 'rw']],
  ]);
  assert.equal(spec.mounts.filter((m) => m.destination === '/etc/hosts').length, 1);
  const depths = spec.mounts.map((m) => m.destination.split('/').filter(Boolean).length);
  assert.deepEqual(depths, [...depths].sort((a, b) => a - b));
  assert.deepEqual(hostPropagation, [
    { hostPath: '/srv/data', need: 'slave' },
    { hostPath: '/srv/shared', need: 'shared' },
  ]);
  assert.equal(spec.linux.rootfsPropagation, 'rshared');
  assert.equal(gen({ container: { mounts: [mounts[1]!] } }).spec.linux.rootfsPropagation, 'rslave');
  assert.equal(gen().spec.linux.rootfsPropagation, undefined);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: 'rel', host_path: '/a' })] } }), 'InvalidArgument', /mounts\[0\]\.container_path/);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: '/a', host_path: 'rel' })] } }), 'InvalidArgument', /mounts\[0\]\.host_path/);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', recursive_read_only: true })] } }), 'InvalidArgument', /mounts\[0\]\.recursive_read_only: needs readonly/);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_BIDIRECTIONAL' })] } }), 'InvalidArgument', /needs propagation PROPAGATION_PRIVATE/);
  const rro = gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', readonly: true, recursive_read_only: true })] } }).spec;
  assert.deepEqual(rro.mounts.find((m) => m.destination === '/a')!.options, ['rbind', 'rprivate', 'ro', 'rro']);
  const flags = gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', mount_options: ['ro', 'noexec', 'noexec'] })] } }).spec;
  assert.deepEqual(flags.mounts.find((m) => m.destination === '/a')!.options, ['rbind', 'rprivate', 'ro', 'noexec']);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', mount_options: ['uid=0'] })] } }), 'InvalidArgument', /mounts\[0\]\.mount_options\[0\]: "uid=0" is not supported/);
  rejects(() => gen({ container: { mounts: [criMount({ container_path: '/a', host_path: '/b', readonly: true, mount_options: ['rw'] })] } }), 'InvalidArgument', /"rw" contradicts readonly/);
  const twice = [criMount({ container_path: '/a', host_path: '/b' }), criMount({ container_path: '/a/', host_path: '/c' })];
  rejects(() => gen({ container: { mounts: twice } }), 'InvalidArgument', /mounts\[1\]\.container_path.*twice/);
});

test('termination message file is bound unless a CRI mount covers it', () => {
  const tm = { hostPath: '/var/lib/crisp/c1/termination-log', containerPath: '/dev/termination-log' };
  const m = gen({ input: { terminationMessage: tm } }).spec.mounts.find((x) => x.destination === '/dev/termination-log');
  assert.deepEqual(m, { destination: '/dev/termination-log', type: 'bind', source: tm.hostPath, options: ['rbind', 'rprivate', 'rw'] });
  const covered = gen({ input: { terminationMessage: tm }, container: { mounts: [criMount({ container_path: '/dev/termination-log', host_path: '/k/t' })] } });
  assert.deepEqual(covered.spec.mounts.filter((x) => x.destination === '/dev/termination-log').map((x) => x.source), ['/k/t']);
});

test('capabilities: defaults, add/drop, ALL, prefixes, host bounding set', () => {
  const capsOf = (add: string[], drop: string[]) =>
    gen({ sc: { capabilities: { add_capabilities: add, drop_capabilities: drop, add_ambient_capabilities: [] } } }).spec.process.capabilities;
  assert.deepEqual(gen().spec.process.capabilities.bounding, KNOWN_CAPABILITIES.filter((c) => DEFAULT_CAPABILITIES.includes(c)));
  const cases: { add: string[]; drop: string[]; want: string[] }[] = [
    { add: ['NET_ADMIN'], drop: ['KILL'], want: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN'] },
    { add: ['cap_sys_time'], drop: ['ALL'], want: ['CAP_SYS_TIME'] },
    { add: [], drop: ['all'], want: [] },
    { add: ['ALL'], drop: ['CHOWN'], want: HOST.capabilities.filter((c) => c !== 'CAP_CHOWN') },
    { add: ['ALL'], drop: ['ALL'], want: [] },
  ];
  for (const c of cases) {
    const caps = capsOf(c.add, c.drop);
    assert.deepEqual(caps.bounding, c.want, JSON.stringify(c));
    assert.deepEqual(caps.effective, c.want);
    assert.deepEqual(caps.permitted, c.want);
    assert.deepEqual(caps.inheritable, []);
    assert.deepEqual(caps.ambient, []);
  }
  // CAP_SYS_RESOURCE is not in this host's bounding set: left out with a warning, no failure
  const r = gen({ sc: { capabilities: { add_capabilities: ['SYS_RESOURCE'], drop_capabilities: [], add_ambient_capabilities: [] } } });
  assert.ok(!r.spec.process.capabilities.bounding.includes('CAP_SYS_RESOURCE'));
  assert.match(r.warnings.join('\n'), /CAP_SYS_RESOURCE/);
  rejects(() => capsOf(['NOT_A_CAP'], []), 'InvalidArgument', /add_capabilities\[0\].*NOT_A_CAP/);
  rejects(() => capsOf([], ['BOGUS']), 'InvalidArgument', /drop_capabilities\[0\]/);
  const ambient = gen({ sc: { capabilities: { add_capabilities: [], drop_capabilities: ['ALL'], add_ambient_capabilities: ['NET_BIND_SERVICE'] } } }).spec.process.capabilities;
  assert.deepEqual(ambient, {
    bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'],
    inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'],
  });
});

test('privileged: host caps, all devices, no masks, no seccomp, rw /sys', () => {
  rejects(() => gen({ sc: { privileged: true } }), 'InvalidArgument', /privileged/);
  const { spec, warnings } = gen({ sc: { privileged: true, masked_paths: ['/proc/kcore'], seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } }, podPrivileged: true });
  assert.deepEqual(spec.process.capabilities.bounding, HOST.capabilities);
  assert.deepEqual(warnings, []);
  assert.deepEqual(spec.linux.devices?.map((d) => d.path), HOST.devices.map((d) => d.path));
  assert.deepEqual(spec.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(spec.linux.maskedPaths, []);
  assert.deepEqual(spec.linux.readonlyPaths, []);
  assert.equal(spec.linux.seccomp, undefined);
  assert.equal(spec.mounts.find((m) => m.destination === '/sys')?.options.at(-1), 'rw');
  assert.equal(spec.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options.at(-1), 'rw');
});

test('CRI devices are resolved against host devices with their permissions', () => {
  const { spec } = gen({
    container: {
      devices: [
        { host_path: '/dev/fuse', container_path: '/dev/fuse', permissions: 'rw' },
        { host_path: '/dev/net', container_path: '/dev/vnet', permissions: '' },
      ],
    },
  });
  assert.deepEqual(spec.linux.devices, [
    { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { type: 'c', path: '/dev/vnet/tun', major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 },
  ]);
  assert.deepEqual(spec.linux.resources.devices, [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
    { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
  ]);
  rejects(() => gen({ container: { devices: [{ host_path: '/dev/nope', container_path: '/dev/nope', permissions: 'r' }] } }), 'NotFound', /devices\[0\]\.host_path/);
  rejects(() => gen({ container: { devices: [{ host_path: '/dev/fuse', container_path: '/dev/fuse', permissions: 'rx' }] } }), 'InvalidArgument', /devices\[0\]\.permissions/);
  assert.equal(gen().spec.linux.devices, undefined);
  assert.deepEqual(gen().spec.linux.resources.devices, [{ allow: false, access: 'rwm' }]);
});

test('masked and read-only paths: CRI lists win, defaults when empty (proto3 reads unset as empty) or unset', () => {
  const given = gen({ sc: { masked_paths: ['/proc/kcore'], readonly_paths: ['/proc/sys'] } }).spec.linux;
  assert.deepEqual([given.maskedPaths, given.readonlyPaths], [['/proc/kcore'], ['/proc/sys']]);
  const empty = gen({ sc: { masked_paths: [], readonly_paths: [] } }).spec.linux;
  assert.deepEqual([empty.maskedPaths, empty.readonlyPaths], [[...DEFAULT_MASKED_PATHS], [...DEFAULT_READONLY_PATHS]]);
  const unset = gen({ sc: { masked_paths: undefined as never, readonly_paths: undefined as never } }).spec.linux;
  assert.deepEqual([unset.maskedPaths, unset.readonlyPaths], [[...DEFAULT_MASKED_PATHS], [...DEFAULT_READONLY_PATHS]]);
});

test('no_new_privs and seccomp choices', () => {
  assert.equal(gen({ sc: { no_new_privs: true } }).spec.process.noNewPrivileges, true);
  assert.equal(gen().spec.process.noNewPrivileges, false);
  const sec = (sc: Partial<LinuxContainerSecurityContext__Output>, extra: Partial<SpecInput> = {}) => gen({ sc, input: extra }).spec.linux.seccomp;
  assert.equal(sec({})?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(sec({}, { seccompDefaultWhenEmpty: false }), undefined);
  assert.equal(sec({ seccomp: { profile_type: 'Unconfined', localhost_ref: '' } }), undefined);
  assert.equal(sec({ seccomp_profile_path: 'unconfined' }), undefined);
  assert.equal(sec({ seccomp_profile_path: 'runtime/default' })?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(sec({ seccomp_profile_path: 'docker/default' })?.defaultAction, 'SCMP_ACT_ERRNO');
  // the typed field wins over the legacy path
  assert.equal(sec({ seccomp: { profile_type: 'Unconfined', localhost_ref: '' }, seccomp_profile_path: 'runtime/default' }), undefined);
  rejects(() => sec({ seccomp_profile_path: 'bogus' }), 'InvalidArgument', /seccomp_profile_path/);
  const local = { path: '/etc/p.json', profile: { defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO' }] } };
  assert.deepEqual(sec({ seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/p.json' } }, { localhostSeccomp: local }), {
    defaultAction: 'SCMP_ACT_LOG',
    syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO' }],
  });
  assert.equal(sec({ seccomp_profile_path: 'localhost//etc/p.json' }, { localhostSeccomp: local })?.defaultAction, 'SCMP_ACT_LOG');
  rejects(() => sec({ seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/p.json' } }), 'FailedPrecondition', /\/etc\/p\.json/);
  rejects(() => sec({}, { host: { ...HOST, defaultSeccompProfile: null } }), 'FailedPrecondition', /RuntimeDefault/);
});

test('seccomp RuntimeDefault follows the container capabilities', () => {
  const allowsSethostname = (add: string[]) => {
    const s = gen({ sc: { capabilities: { add_capabilities: add, drop_capabilities: [], add_ambient_capabilities: [] } } }).spec.linux.seccomp!;
    return s.syscalls!.filter((r) => r.names.includes('sethostname')).map((r) => r.action);
  };
  assert.deepEqual(allowsSethostname([]), ['SCMP_ACT_ERRNO']);
  assert.deepEqual(allowsSethostname(['SYS_ADMIN']), ['SCMP_ACT_ALLOW']);
});

test('apparmor and selinux are ignored with warnings on a host without them', () => {
  const r = gen({ sc: { apparmor: { profile_type: 'Localhost', localhost_ref: 'my-prof' }, selinux_options: { user: 'u', role: 'r', type: 't', level: 's0' } } });
  assert.equal(r.spec.process.apparmorProfile, undefined);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0]!, /apparmor.*my-prof/);
  assert.match(r.warnings[1]!, /selinux/);
  assert.deepEqual(gen({ sc: { apparmor: { profile_type: 'Unconfined', localhost_ref: '' } } }).warnings, []);
  const withAa = gen({ host: { apparmor: true }, sc: { apparmor_profile: 'localhost/my-prof' } });
  assert.equal(withAa.spec.process.apparmorProfile, 'my-prof');
});

test('resources map to linux.resources', () => {
  const { spec } = gen({
    resources: {
      cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000', cpuset_cpus: '0-1', cpuset_mems: '0',
      memory_limit_in_bytes: '268435456', memory_swap_limit_in_bytes: '536870912',
      hugepage_limits: [{ page_size: '2MB', limit: '4194304' }],
      oom_score_adj: '100',
    },
    input: { pidsLimit: 1024 },
  });
  assert.deepEqual(spec.linux.resources, {
    devices: [{ allow: false, access: 'rwm' }],
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1', mems: '0' },
    memory: { limit: 268435456, swap: 536870912 },
    hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
    pids: { limit: 1024 },
  });
  assert.equal(spec.process.oomScoreAdj, 100);
  assert.deepEqual(gen().spec.linux.resources, { devices: [{ allow: false, access: 'rwm' }] });
  // swap defaults to the memory limit (no swap) where swap is accounted, and is left out where not
  assert.deepEqual(gen({ resources: { memory_limit_in_bytes: '16777216' } }).spec.linux.resources.memory, { limit: 16777216, swap: 16777216 });
  assert.deepEqual(gen({ resources: { memory_limit_in_bytes: '16777216' }, host: { swapAccounting: false } }).spec.linux.resources.memory, { limit: 16777216 });
  rejects(() => gen({ resources: { memory_limit_in_bytes: '16777216', memory_swap_limit_in_bytes: '10' } }), 'InvalidArgument', /memory_swap_limit_in_bytes/);
  rejects(() => gen({ resources: { cpu_shares: 'abc' } }), 'InvalidArgument', /cpu_shares/);
  rejects(() => gen({ input: { pidsLimit: 0 } }), 'InvalidArgument', /pidsLimit/);
  const noHuge = gen({ resources: { hugepage_limits: [{ page_size: '2MB', limit: '1' }] }, host: { hugetlb: false } });
  assert.equal(noHuge.spec.linux.resources.hugepageLimits, undefined);
  assert.match(noHuge.warnings.join(), /hugepage/);
  // unified: v2 only
  const unified = { 'memory.high': '1000000' };
  assert.deepEqual(gen({ resources: { unified }, host: { cgroupVersion: 2 } }).spec.linux.resources.unified, unified);
  const v1 = gen({ resources: { unified } });
  assert.equal(v1.spec.linux.resources.unified, undefined);
  assert.match(v1.warnings.join(), /unified/);
});

test('oom_score_adj is clamped to the daemon floor', () => {
  const cases: { req: string; daemon: number; want: number; warn: boolean }[] = [
    { req: '-999', daemon: -500, want: -500, warn: true },
    { req: '-500', daemon: -500, want: -500, warn: false },
    { req: '0', daemon: -500, want: 0, warn: false },
    { req: '1000', daemon: 0, want: 1000, warn: false },
    { req: '-1000', daemon: 0, want: 0, warn: true },
  ];
  for (const c of cases) {
    const r = gen({ resources: { oom_score_adj: c.req }, host: { oomScoreAdj: c.daemon } });
    assert.equal(r.spec.process.oomScoreAdj, c.want, JSON.stringify(c));
    assert.equal(r.warnings.some((w) => w.includes('oom_score_adj')), c.warn);
  }
  rejects(() => gen({ resources: { oom_score_adj: '1001' } }), 'InvalidArgument', /oom_score_adj/);
});

test('cgroupsPath under the pod parent or crisp default', () => {
  assert.equal(gen().spec.linux.cgroupsPath, '/kubepods/pod1/crisp-c1');
  assert.equal(gen({ pod: { cgroupParent: '' } }).spec.linux.cgroupsPath, '/crisp/sb1/crisp-c1');
  assert.equal(gen({ pod: { cgroupParent: 'kubepods/burstable/' } }).spec.linux.cgroupsPath, '/kubepods/burstable/crisp-c1');
  rejects(() => gen({ pod: { cgroupParent: 'kubepods.slice' } }), 'InvalidArgument', /cgroup_parent/);
  rejects(() => gen({ pod: { cgroupParent: '/a/../b' } }), 'InvalidArgument', /cgroup_parent/);
  rejects(() => gen({ input: { containerId: '../x' } }), 'InvalidArgument', /containerId/);
});

test('annotations, sysctls, hostname', () => {
  const sandbox = criSandboxConfig();
  sandbox.linux!.sysctls = { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' };
  const { spec } = gen({ sandbox, container: { annotations: { a: 'b', [ANNOTATIONS.sandboxId]: 'spoof' } } });
  assert.deepEqual(spec.annotations, {
    a: 'b',
    'io.crisp.sandbox-id': 'sb1',
    'io.crisp.sandbox-name': 'pod',
    'io.crisp.sandbox-namespace': 'default',
    'io.crisp.sandbox-uid': 'pod-uid',
    'io.crisp.container-type': 'container',
    'io.crisp.container-name': 'ctr',
    'io.crisp.image-name': 'example.com/app:1',
    'io.crisp.image-id': 'sha256:abc',
  });
  assert.deepEqual(spec.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' });
  assert.equal(spec.hostname, 'web-0');
  assert.equal(spec.ociVersion, '1.0.2-dev');
  assert.equal(spec.root.path, '/var/lib/crisp/containers/c1/rootfs');

  const bad = criSandboxConfig();
  bad.linux!.sysctls = { 'vm.swappiness': '1' };
  rejects(() => gen({ sandbox: bad }), 'InvalidArgument', /vm\.swappiness/);
  const hostNet = criSandboxConfig();
  hostNet.linux!.sysctls = { 'net.core.somaxconn': '1024' };
  hostNet.linux!.security_context!.namespace_options = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null };
  rejects(() => gen({ sandbox: hostNet }), 'InvalidArgument', /net\.core\.somaxconn.*host network/);
});

test('generateSpec is pure: same input, same output, input untouched', () => {
  const i = input({ container: { mounts: [criMount({ container_path: '/d', host_path: '/s' })] } });
  const before = JSON.stringify(i);
  const a = generateSpec(i, ROOT_USER);
  const b = generateSpec(i, ROOT_USER);
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(i), before);
});

test('infra spec: new pid namespace, pod namespaces, no caps, read-only root', () => {
  const sandbox = criSandboxConfig({ annotations: { x: 'y' } });
  const { spec, warnings } = generateInfraSpec({
    sandboxId: 'sb1',
    sandbox,
    rootfs: '/var/lib/crisp/pause/rootfs',
    command: ['/pause'],
    pod: input().pod,
    host: HOST,
  });
  assert.deepEqual(spec.process.args, ['/pause']);
  assert.deepEqual(spec.linux.namespaces, [
    { type: 'network', path: '/run/crisp/netns/sb1' },
    { type: 'ipc', path: '/run/crisp/ipcns/sb1' },
    { type: 'uts', path: '/run/crisp/utsns/sb1' },
    { type: 'pid' },
    { type: 'mount' },
  ]);
  assert.deepEqual(spec.process.capabilities.bounding, []);
  assert.equal(spec.root.readonly, true);
  assert.equal(spec.process.oomScoreAdj, -500);
  assert.match(warnings.join(), /oom_score_adj -998/);
  assert.equal(spec.annotations['io.crisp.container-type'], 'sandbox');
  assert.equal(spec.annotations.x, 'y');
  assert.equal(spec.linux.cgroupsPath, '/kubepods/pod1/crisp-sb1');
  assert.equal(spec.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.ok(!spec.mounts.some((m) => m.destination.startsWith('/etc/')));
  assert.deepEqual(spec.process.user, { uid: 0, gid: 0, additionalGids: [0] });
  const fromImage = generateInfraSpec({
    sandboxId: 'sb1', sandbox, rootfs: '/r', pod: input().pod, host: HOST,
    image: { config: { Entrypoint: ['/pause'], User: '65535:65535' }, name: 'pause', id: 'sha256:p' },
  });
  assert.deepEqual(fromImage.spec.process.args, ['/pause']);
  rejects(() => generateInfraSpec({ sandboxId: 'sb1', sandbox, rootfs: '/r', pod: input().pod, host: HOST }), 'InvalidArgument', /command/);
});

test('image mounts: no host path, read-only and private, a sub path that stays inside the image', () => {
  const m = validateCriMount(criMount({ container_path: '/mnt/i', host_path: '', image: { image: 'busybox' } as never, image_sub_path: 'a/b/' }), 0);
  assert.deepEqual({ readonly: m.readonly, propagation: m.propagation, image: m.image }, { readonly: true, propagation: 'rprivate', image: { name: 'busybox', subPath: 'a/b' } });
  assert.equal(imageSubPath('a/../b', 'f'), 'b');
  assert.equal(imageSubPath('.', 'f'), '');
  assert.throws(() => imageSubPath('/etc', 'f'), /must be relative/);
  assert.throws(() => imageSubPath('a/../../b', 'f'), /leads out of the image/);
  assert.throws(() => validateCriMount(criMount({ container_path: '/mnt/i', host_path: '/x', image_sub_path: 'a' }), 3), /mounts\[3\]\.image_sub_path: only an image mount/);
});

test('the pause container and the containers take the same pod resources, hostname included', () => {
  const id = 'abcdef0123456789'.repeat(4);
  const context = {
    config: criSandboxConfig({ hostname: '', linux: { ...criSandboxConfig().linux!, cgroup_parent: '/kubepods/pod1' } }),
    namespaces: { net: '/run/ns/net', ipc: '/run/ns/ipc', uts: '/run/ns/uts' },
    filesDir: '/run/pod/files',
    shmPath: '/run/pod/shm',
  } as unknown as SandboxContext;
  assert.deepEqual(podResourcesOf(id, context, 'node1'), {
    netns: '/run/ns/net',
    ipcns: '/run/ns/ipc',
    utsns: '/run/ns/uts',
    hostnamePath: '/run/pod/files/hostname',
    hostsPath: '/run/pod/files/hosts',
    resolvConfPath: '/run/pod/files/resolv.conf',
    shmPath: '/run/pod/shm',
    cgroupParent: '/kubepods/pod1',
    // a pod without a hostname is named by its id, as the pod's UTS namespace is (a container's
    // HOSTNAME used to be empty there while the pause container's was the id)
    hostname: 'abcdef012345',
  });
  assert.throws(() => podResourcesOf(id, { ...context, filesDir: null }, 'node1'), /no hostname\/hosts\/resolv.conf files/);
});
