import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PodSandboxConfig__Output } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import { effectiveHostname, needsInfraContainer, podNamespaceKinds, sandboxNameKey, validateSandboxRequest } from '../../src/machines/sandbox-config.js';
import { bandwidthOf, portMappingsOf } from '../../src/machines/pod-rules.js';
import { isCrispError } from '../../src/errors.js';

function config(extra: Record<string, unknown> = {}): PodSandboxConfig__Output {
  return {
    metadata: { name: 'web', namespace: 'prod', uid: 'u-1', attempt: 2 },
    hostname: 'web',
    log_directory: '',
    dns_config: null,
    port_mappings: [],
    labels: {},
    annotations: {},
    linux: { cgroup_parent: '', sysctls: {}, overhead: null, resources: null,
      security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'CONTAINER', target_id: '', userns_options: null } } },
    windows: null,
    ...extra,
  } as unknown as PodSandboxConfig__Output;
}

const withNs = (network: string, ipc: string, pid = 'CONTAINER') => config({
  linux: { sysctls: {}, security_context: { namespace_options: { network, ipc, pid, target_id: '', userns_options: null } } },
});

const options = { runtimeHandlers: ['runc'] };

function refused(c: unknown, kind: string, pattern: RegExp, handler = '') {
  assert.throws(() => validateSandboxRequest(c as PodSandboxConfig__Output, handler, options), (err: unknown) => {
    assert.ok(isCrispError(err), String(err));
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a valid request yields its name key: name, namespace, uid and attempt', () => {
  const { nameKey } = validateSandboxRequest(config(), '', options);
  assert.equal(nameKey, 'web_prod_u-1_2');
  assert.equal(sandboxNameKey({ name: 'a', namespace: 'b', uid: 'c', attempt: 0 }), 'a_b_c_0');
  assert.doesNotThrow(() => validateSandboxRequest(config(), 'runc', options));
});

test('invalid requests are refused naming the field', () => {
  refused(null, 'InvalidArgument', /^config is required/);
  refused(config({ metadata: null }), 'InvalidArgument', /config\.metadata is required/);
  refused(config({ metadata: { name: '', namespace: 'n', uid: 'u', attempt: 0 } }), 'InvalidArgument', /config\.metadata\.name is required/);
  refused(config({ metadata: { name: 'a', namespace: '', uid: 'u', attempt: 0 } }), 'InvalidArgument', /config\.metadata\.namespace is required/);
  refused(config({ metadata: { name: 'a', namespace: 'n', uid: '', attempt: 0 } }), 'InvalidArgument', /config\.metadata\.uid is required/);
  refused(config({ metadata: { name: 'a/b', namespace: 'n', uid: 'u', attempt: 0 } }), 'InvalidArgument', /config\.metadata\.name: "a\/b" must be/);
  refused(config({ hostname: 'under_score' }), 'InvalidArgument', /config\.hostname/);
  refused(config(), 'InvalidArgument', /runtime_handler: "kata"/, 'kata');
  refused(config({ windows: {} }), 'InvalidArgument', /config\.windows/);
  refused(config({ dns_config: { servers: ['1.1.1.1', 'x'], searches: [], options: [] } }), 'InvalidArgument', /dns_config\.servers\[1\]/);
  refused(config({ port_mappings: [{ protocol: 'TCP', container_port: 70000, host_port: 80, host_ip: '' }] }), 'InvalidArgument', /config\.port_mappings\[0\]\.container_port/);
  refused(config({ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 80, host_ip: 'nope' }] }), 'InvalidArgument', /config\.port_mappings\[0\]\.host_ip/);
  refused(config({ annotations: { 'kubernetes.io/ingress-bandwidth': 'lots' } }), 'InvalidArgument', /annotations\[kubernetes\.io\/ingress-bandwidth\]/);
  refused(withNs('CONTAINER', 'POD'), 'InvalidArgument', /namespace_options\.network: CONTAINER/);
  refused(withNs('POD', 'TARGET'), 'InvalidArgument', /namespace_options\.ipc: TARGET/);
  refused(withNs('POD', 'POD', 'TARGET'), 'InvalidArgument', /namespace_options\.pid: TARGET/);
});

test('a pod-wide PID namespace is accepted and calls for the infra container; other modes do not', () => {
  assert.doesNotThrow(() => validateSandboxRequest(withNs('POD', 'POD', 'POD'), '', options));
  assert.equal(needsInfraContainer(withNs('POD', 'POD', 'POD')), true);
  assert.equal(needsInfraContainer(withNs('NODE', 'NODE', 'POD')), true);
  assert.equal(needsInfraContainer(config({ linux: { sysctls: {}, security_context: null } })), true, 'POD is the proto3 default');
  assert.equal(needsInfraContainer(withNs('POD', 'POD', 'CONTAINER')), false);
  assert.equal(needsInfraContainer(withNs('POD', 'POD', 'NODE')), false);
});

test('sysctls must live in a namespace the pod owns', () => {
  const sysctls = (s: Record<string, string>, network = 'POD', ipc = 'POD') => config({
    linux: { sysctls: s, security_context: { namespace_options: { network, ipc, pid: 'CONTAINER', target_id: '', userns_options: null } } },
  });
  assert.doesNotThrow(() => validateSandboxRequest(sysctls({ 'net.core.somaxconn': '1024', 'kernel.shmmax': '1000' }), '', options));
  refused(sysctls({ 'vm.swappiness': '1' }), 'InvalidArgument', /config\.linux\.sysctls: vm\.swappiness is not namespaced/);
  refused(sysctls({ 'net.core.somaxconn': '1' }, 'NODE'), 'InvalidArgument', /config\.linux\.sysctls: net\.core\.somaxconn needs the pod's own network/);
  refused(sysctls({ 'kernel.msgmax': '1' }, 'POD', 'NODE'), 'InvalidArgument', /config\.linux\.sysctls: kernel\.msgmax needs the pod's own IPC/);
});

test('namespace kinds follow the options: host network keeps the node UTS too', () => {
  assert.deepEqual(podNamespaceKinds(withNs('POD', 'POD')), ['net', 'uts', 'ipc']);
  assert.deepEqual(podNamespaceKinds(withNs('NODE', 'POD')), ['ipc']);
  assert.deepEqual(podNamespaceKinds(withNs('POD', 'NODE')), ['net', 'uts']);
  assert.deepEqual(podNamespaceKinds(withNs('NODE', 'NODE')), []);
});

test('hostname, port mappings and bandwidth derive from the config', () => {
  const id = 'abcdef0123456789'.repeat(4);
  assert.equal(effectiveHostname(config(), id, 'node1'), 'web');
  assert.equal(effectiveHostname(config({ hostname: '' }), id, 'node1'), 'abcdef012345');
  assert.equal(effectiveHostname({ ...withNs('NODE', 'POD'), hostname: '' }, id, 'node1'), 'node1');
  assert.deepEqual(portMappingsOf(config({ port_mappings: [
    { protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '127.0.0.1' },
    { protocol: 'TCP', container_port: 80, host_port: 0, host_ip: '' },
  ] })), [{ hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }], 'mappings without a host port need no forwarding');
  assert.equal(bandwidthOf(config()), undefined);
  assert.deepEqual(bandwidthOf(config({ annotations: { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '1Mi' } })), {
    ingressRate: 10_000_000, ingressBurst: 2 ** 31 - 1, egressRate: 1_048_576, egressBurst: 2 ** 31 - 1,
  });
});

test('names, paths and maps a Kubernetes object could not have are refused before anything is made', () => {
  const meta = (m: Record<string, unknown>) => config({ metadata: { name: 'web', namespace: 'prod', uid: 'u-1', attempt: 0, ...m } });
  refused(meta({ name: '..' }), 'InvalidArgument', /config\.metadata\.name: "\.\." must be/);
  refused(meta({ name: '.hidden' }), 'InvalidArgument', /config\.metadata\.name/);
  refused(meta({ namespace: 'a/b' }), 'InvalidArgument', /config\.metadata\.namespace/);
  refused(meta({ uid: 'x'.repeat(254) }), 'InvalidArgument', /config\.metadata\.uid/);
  // A huge value is quoted by a short prefix only.
  assert.throws(() => validateSandboxRequest(meta({ name: 'n'.repeat(1 << 20) }), '', options), (err: Error) => err.message.length < 400);
  refused(config({ log_directory: '../../tmp/x' }), 'InvalidArgument', /config\.log_directory: "\.\.\/\.\.\/tmp\/x" must be an absolute path/);
  refused(config({ log_directory: '/var/log/pods/../../etc' }), 'InvalidArgument', /config\.log_directory: .* must not contain/);
  refused(config({ linux: { cgroup_parent: '/kubepods/../../etc', sysctls: {} } }), 'InvalidArgument', /config\.linux\.cgroup_parent: .* must not contain/);
  refused(config({ linux: { cgroup_parent: 'kubepods.slice', sysctls: {} } }), 'InvalidArgument', /config\.linux\.cgroup_parent: .*systemd slice/);
  refused(config({ hostname: 'web', labels: { ['k'.repeat(400)]: 'v' } }), 'InvalidArgument', /config\.labels: key "k+… \(\d+ more characters\)" is longer than 317/);
  refused(config({ annotations: { a: 'x'.repeat(200 * 1024), b: 'y'.repeat(100 * 1024) } }), 'InvalidArgument', /config\.annotations: keys and values together exceed 262144 bytes/);
  refused(config({ annotations: { a: 'x\0y' } }), 'InvalidArgument', /config\.annotations\.a: contains a NUL byte/);
  refused(config({ log_directory: '/var/log/pods/a\0b' }), 'InvalidArgument', /config\.log_directory: contains a NUL byte/);
  // What kubelet and critest send passes: capitals in critest's names, a hex static-pod uid.
  validateSandboxRequest(meta({ name: 'PodSandbox-for-test-1', uid: 'd41d8cd98f00b204e9800998ecf8427e' }), '', options);
  validateSandboxRequest(config({ log_directory: '/var/log/pods/prod_web_u-1', linux: { cgroup_parent: '/kubepods/besteffort/podu-1', sysctls: {} } }), '', options);
});

test('user namespaces: what the CRI forbids is INVALID_ARGUMENT with its reason; a valid POD request is UNIMPLEMENTED', () => {
  const one = [{ host_id: 100000, container_id: 0, length: 65536 }];
  const withUserns = (userns: unknown) => config({
    linux: { sysctls: {}, security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'CONTAINER', target_id: '', userns_options: userns } } },
  } as Partial<PodSandboxConfig__Output>);
  assert.doesNotThrow(() => validateSandboxRequest(withUserns({ mode: 'NODE', uids: [], gids: [] }), '', options));
  refused(withUserns({ mode: 'CONTAINER', uids: one, gids: one }), 'InvalidArgument', /userns_options\.mode: CONTAINER is not supported/);
  refused(withUserns({ mode: 'TARGET', uids: one, gids: one }), 'InvalidArgument', /userns_options\.mode: TARGET/);
  refused(withUserns({ mode: 'POD', uids: [...one, { host_id: 1, container_id: 70000, length: 1 }], gids: one }), 'InvalidArgument', /userns_options\.uids: exactly one mapping/);
  refused(withUserns({ mode: 'POD', uids: one, gids: [] }), 'InvalidArgument', /userns_options\.gids: exactly one mapping/);
  refused(withUserns({ mode: 'POD', uids: [{ host_id: 100000, container_id: 1, length: 65536 }], gids: one }), 'InvalidArgument', /uids\[0\]: container ID 0 must be mapped/);
  refused(withUserns({ mode: 'POD', uids: one, gids: one }), 'Unimplemented', /id-mapped mounts/);
});
