import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerLogPath, containerNameKey, validateCreateContainer } from '../../src/machines/container-config.js';
import { criContainerConfig, criMount, criSecurityContext } from '../helpers/cri-defaults.js';
import type { CreateContainerRequest__Output } from '../../src/cri/proto/gen/runtime/v1/CreateContainerRequest.js';
import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';

const request = (config: ContainerConfig__Output | null, sandbox = 'abc'): CreateContainerRequest__Output =>
  ({ pod_sandbox_id: sandbox, config, sandbox_config: null }) as CreateContainerRequest__Output;
const valid = (p: Partial<ContainerConfig__Output> = {}) =>
  criContainerConfig({ metadata: { name: 'app', attempt: 1 }, image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' }, log_path: 'app/1.log', ...p });

const refusal = (req: CreateContainerRequest__Output, field: RegExp) =>
  assert.throws(() => validateCreateContainer(req), (e: Error & { kind?: string }) => e.kind === 'InvalidArgument' && field.test(e.message));

test('a well-formed request passes and names its pod, config and image', () => {
  const v = validateCreateContainer(request(valid()));
  assert.deepEqual([v.sandboxId, v.imageName, v.config.metadata?.name], ['abc', 'busybox', 'app']);
});

test('missing or malformed fields are INVALID_ARGUMENT naming the field', () => {
  refusal(request(valid(), ''), /^pod_sandbox_id/);
  refusal(request(null), /^config:/);
  refusal(request(valid({ metadata: { name: '', attempt: 0 } })), /config\.metadata\.name/);
  refusal(request(valid({ metadata: { name: 'a/b', attempt: 0 } })), /config\.metadata\.name/);
  refusal(request(valid({ image: { image: ' ', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' } })), /config\.image\.image/);
  refusal(request(valid({ log_path: '/abs.log' })), /config\.log_path/);
  refusal(request(valid({ log_path: '../escape.log' })), /config\.log_path/);
  refusal(request(valid({ envs: [{ key: 'A=B', value: Buffer.from('') }] })), /config\.envs\[0\]\.key/);
  refusal(request(valid({ mounts: [criMount({ container_path: 'relative', host_path: '/tmp' })] })), /mounts\[0\]\.container_path/);
  refusal(request(valid({ stdin_once: true })), /stdin_once/);
});

test('run_as_group without a user is refused; with run_as_username it is fine', () => {
  const withGroup = (sc: Parameters<typeof criSecurityContext>[0]) =>
    request(valid({ linux: { resources: null, security_context: criSecurityContext(sc) } as ContainerConfig__Output['linux'] }));
  refusal(withGroup({ run_as_group: { value: '10' } }), /run_as_group/);
  assert.doesNotThrow(() => validateCreateContainer(withGroup({ run_as_group: { value: '10' }, run_as_username: 'app' })));
  assert.doesNotThrow(() => validateCreateContainer(withGroup({ run_as_group: { value: '10' }, run_as_user: { value: '1000' } })));
  refusal(withGroup({ run_as_user: { value: '1' }, run_as_username: 'app' }), /run_as_user and run_as_username/);
});

test('name keys separate pods, names and attempts; log paths join the pod directory', () => {
  const a = valid();
  assert.equal(containerNameKey('pod1', a), containerNameKey('pod1', valid()));
  assert.notEqual(containerNameKey('pod1', a), containerNameKey('pod2', a));
  assert.notEqual(containerNameKey('pod1', a), containerNameKey('pod1', valid({ metadata: { name: 'app', attempt: 2 } })));
  assert.equal(containerLogPath('/var/log/pods/x', a, '/fallback'), '/var/log/pods/x/app/1.log');
  assert.equal(containerLogPath('', a, '/fallback'), '/fallback');
});
