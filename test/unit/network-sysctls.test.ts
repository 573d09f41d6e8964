import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sysctlNamespace, validateSysctls } from '../../src/machines/pod-rules.js';
import { isCrispError } from '../../src/errors.js';

test('keys map to the namespace they live in', () => {
  assert.equal(sysctlNamespace('net.ipv4.ip_forward'), 'net');
  assert.equal(sysctlNamespace('net/ipv4/conf/eth0.100/forwarding'), 'net');
  assert.equal(sysctlNamespace('kernel.shmmax'), 'ipc');
  assert.equal(sysctlNamespace('kernel.shm_rmid_forced'), 'ipc');
  assert.equal(sysctlNamespace('kernel.msgmnb'), 'ipc');
  assert.equal(sysctlNamespace('kernel.sem'), 'ipc');
  assert.equal(sysctlNamespace('fs.mqueue.msg_max'), 'ipc');
  assert.equal(sysctlNamespace('kernel/shmmni'), 'ipc');
  assert.equal(sysctlNamespace('kernel.hostname'), 'uts');
  assert.equal(sysctlNamespace('kernel.domainname'), 'uts');
  assert.equal(sysctlNamespace('kernel.panic'), undefined);
  assert.equal(sysctlNamespace('vm.overcommit_memory'), undefined);
  assert.equal(sysctlNamespace('fs.file-max'), undefined);
  assert.equal(sysctlNamespace('kernel.semaphore'), undefined, 'kernel.sem is exact, not a prefix');
});

test('validation names the offending key', () => {
  const rejects = (sysctls: Record<string, string>, pod: object, pattern: RegExp) =>
    assert.throws(() => validateSysctls(sysctls, pod), (e: unknown) => isCrispError(e, 'InvalidArgument') && pattern.test(e.message));
  rejects({ 'net.core.somaxconn': '1024', 'kernel.panic': '1' }, {}, /kernel\.panic is not namespaced/);
  rejects({ 'net.core.somaxconn': '1024' }, { hostNetwork: true }, /net\.core\.somaxconn .*host network/);
  rejects({ 'kernel.shmmax': '1' }, { hostIpc: true }, /kernel\.shmmax .*host IPC/);
  rejects({ 'kernel.hostname': 'x' }, { hostUts: true }, /kernel\.hostname/);
  rejects({ 'net.ipv4../../etc': '1' }, {}, /not a sysctl name/);
  rejects({ '-w': '1' }, {}, /"-w" is not a sysctl name/);
  rejects({ 'net.ipv4.ip_forward': '1\nkernel.panic=1' }, {}, /single line/);
});

test('valid sysctls come back with their namespace', () => {
  assert.deepEqual(validateSysctls({ 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.sem': '250 32000 32 128' }), [
    { key: 'net.ipv4.ip_unprivileged_port_start', value: '0', namespace: 'net' },
    { key: 'kernel.sem', value: '250 32000 32 128', namespace: 'ipc' },
  ]);
});
