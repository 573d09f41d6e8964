// Image volumes (KEP-4639) through the real daemon: an image's root filesystem, or a directory of
// it, mounted read-only into a container; the image stays in use while mounted, and nothing of
// the mount outlives the container, whether the create fails, the container is removed, or the
// daemon is killed in between.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { buildImage, buildLayer, pushImage } from '../helpers/oci-images.js';
import { call } from '../helpers/cri-client.js';
import { eventually, removeContainerReleased } from '../helpers/eventually.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { Mount } from '../../src/cri/proto/gen/runtime/v1/Mount.js';

let node: TestNode;
let podId: string;
let dataImage: string;
const rt = () => node.daemon.clients.runtime;
const img = () => node.daemon.clients.image;

before(async () => {
  node = await startTestNode([], {
    async prepare(registry) {
      const entry = { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 };
      const layer = buildLayer([
        { path: 'data', type: 'dir', ...entry },
        { path: 'data/hello.txt', type: 'file', ...entry, mode: 0o644, content: Buffer.from('from the image\n') },
        { path: 'data/out', type: 'symlink', linkname: '/etc', ...entry, mode: 0o777 },
      ]);
      await pushImage(registry.url, 'crisp-test/data', '1', buildImage({ layers: [layer], config: { Entrypoint: null, Cmd: null, User: '' } }));
      dataImage = `${registry.host}/crisp-test/data:1`;
    },
  });
  podId = await node.runPod(`volpod${node.tag}`);
  await call(img(), img().PullImage, { image: { image: dataImage } }, 60_000);
});

after(async () => {
  await node?.cleanup();
});

let counter = 0;
function config(mounts: Mount[], command = ['/bin/sleep', '1000']): ContainerConfig {
  const name = `v${counter++}`;
  return { metadata: { name, attempt: 0 }, image: { image: node.image }, command, log_path: `${name}.log`, mounts };
}
const create = async (cfg: ContainerConfig) =>
  (await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config: cfg, sandbox_config: null }, 60_000)).container_id;
const createError = (cfg: ContainerConfig) => create(cfg).then(() => null, (e: grpc.ServiceError) => e);
const exec = async (id: string, script: string) => {
  const r = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/sh', '-c', script], timeout: 10 }, 30_000);
  return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exit_code };
};
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
const volumesOf = (id: string) => join(node.daemon.root, 'containers', id, 'image-volumes');

test('an image volume is the image read-only, whole or by sub path, and holds the image until the container is gone', async () => {
  const id = await create(config([
    { container_path: '/mnt/image', image: { image: dataImage } },
    { container_path: '/mnt/sub', image: { image: dataImage }, image_sub_path: 'data' },
  ]));
  try {
    await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
    assert.equal((await exec(id, 'cat /mnt/image/data/hello.txt')).out, 'from the image\n');
    assert.equal((await exec(id, 'cat /mnt/sub/hello.txt')).out, 'from the image\n');
    assert.match((await exec(id, 'touch /mnt/sub/new')).err, /Read-only file system/);
    assert.equal(mountsUnder(volumesOf(id)).length, 2, 'one overlay per image mount');
    await assert.rejects(call(img(), img().RemoveImage, { image: { image: dataImage } }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
      assert.match(err.details, new RegExp(`in use by container ${id}`));
      return true;
    });
  } finally {
    await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 60_000);
    await removeContainerReleased(node.daemon, id);
  }
  assert.deepEqual(mountsUnder(volumesOf(id)), []);
  await call(img(), img().RemoveImage, { image: { image: dataImage } });
  assert.equal((await call(img(), img().ImageStatus, { image: { image: dataImage } })).image, null);
  await call(img(), img().PullImage, { image: { image: dataImage } }, 60_000);
});

test('crun: an image volume works the same under the crun handler', async () => {
  const crunPod = (await call(rt(), rt().RunPodSandbox, { config: node.podConfig(`volcrun${node.tag}`), runtime_handler: 'crun' }, 60_000)).pod_sandbox_id;
  try {
    const cfg = config([{ container_path: '/mnt/sub', image: { image: dataImage }, image_sub_path: 'data' }]);
    const { container_id: id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: crunPod, config: cfg, sandbox_config: null }, 60_000);
    await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
    assert.equal((await exec(id, 'cat /mnt/sub/hello.txt')).out, 'from the image\n');
    assert.match((await exec(id, 'touch /mnt/sub/new')).err, /Read-only file system/);
    await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 60_000);
    await removeContainerReleased(node.daemon, id);
    assert.deepEqual(mountsUnder(volumesOf(id)), []);
  } finally {
    await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: crunPod }, 60_000);
    await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: crunPod }, 60_000);
  }
});

test('bad image mounts are refused naming the field, and leave nothing behind', async () => {
  const missing = await createError(config([{ container_path: '/mnt/x', image: { image: `${node.registry.host}/crisp-test/nosuch:1` } }]));
  assert.equal(missing?.code, grpc.status.NOT_FOUND);
  assert.match(missing.details, /mounts\[0\]\.image\.image: image .*nosuch:1.* is not present/);
  const climbing = await createError(config([{ container_path: '/mnt/x', image: { image: dataImage }, image_sub_path: '../etc' }]));
  assert.equal(climbing?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(climbing.details, /mounts\[0\]\.image_sub_path: "\.\.\/etc" leads out of the image/);
  const withHostPath = await createError(config([{ container_path: '/mnt/x', host_path: '/tmp', image: { image: dataImage } }]));
  assert.equal(withHostPath?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(withHostPath.details, /mounts\[0\]\.host_path: an image mount takes no host path/);
  // Found only once the image is mounted: the create fails at spec-write and is unwound.
  for (const [subPath, pattern] of [['nosuch', /"nosuch" does not exist in the image/], ['data/out', /"data\/out" leads out of the image/]] as const) {
    const err = await createError(config([{ container_path: '/mnt/x', image: { image: dataImage }, image_sub_path: subPath }]));
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT, err?.details);
    assert.match(err.details, pattern);
  }
  await eventually(() => assert.deepEqual(mountsUnder(join(node.daemon.root, 'containers')).filter((m) => m.includes('image-volumes')), []));
});

test('a daemon killed while a container mounts an image comes back to remove it and its volume', async () => {
  const id = await create(config([{ container_path: '/mnt/image', image: { image: dataImage } }]));
  await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
  await node.daemon.stop('SIGKILL');
  await node.restartDaemon();
  assert.equal((await exec(id, 'cat /mnt/image/data/hello.txt')).out, 'from the image\n');
  await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 60_000);
  await removeContainerReleased(node.daemon, id);
  assert.deepEqual(mountsUnder(volumesOf(id)), []);
  assert.equal(existsSync(volumesOf(id)), false);
});
