// Image content is collected while the daemon runs (issue 15, section 3): a pull that fails after
// storing some layers leaves nothing behind, without a restart; RemoveImage deletes every blob a
// pull stored (the index too), so the next start-up finds no leak. Each collection is recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { startRegistry, startRegistryProxy, corruptBlob, type RegistryProxy, type TestRegistry } from '../helpers/registry.js';
import { buildImage, buildLayer, fixtures, pushFixtures, pushImage } from '../helpers/oci-images.js';
import { CRISP_BIN, startDaemon, testDirs, type TestDaemon } from '../helpers/daemon.js';
import { call } from '../helpers/cri-client.js';
import { eventually } from '../helpers/eventually.js';

const run = promisify(execFile);
let registry: TestRegistry;
let proxy: RegistryProxy;
let daemon: TestDaemon;
const dirs = testDirs();
// Two layers of their own: the first stores fine, the second is served corrupted.
const good = buildLayer([{ path: 'gc', type: 'dir' }, { path: 'gc/first.txt', type: 'file', content: 'stored before the failure\n' }]);
const bad = buildLayer([{ path: 'gc/second.txt', type: 'file', content: 'served corrupted\n' }]);
const twoLayers = buildImage({ layers: [good, bad] });

before(async () => {
  registry = await startRegistry();
  await pushFixtures(registry.url, ['ociIndex']);
  await pushImage(registry.url, 'crisp-test/gc-two-layers', 'latest', twoLayers);
  proxy = await startRegistryProxy({ upstream: registry.host, auth: 'none', intercept: corruptBlob(bad.digest) });
  writeFileSync(join(dirs.dir, 'registries.conf'), [registry.host, proxy.host].map((h) => `[[registry]]\nprefix = "${h}"\ninsecure = true\n`).join('\n'));
  daemon = await startDaemon(['--registries-conf', join(dirs.dir, 'registries.conf')], dirs);
});
after(async () => {
  await daemon?.cleanup();
  await proxy?.stop();
  await registry?.stop();
});

const img = () => daemon.clients.image;
const listDir = (sub: string) => readdirSync(join(daemon.root, sub)).filter((n) => /^[0-9a-f]{64}$/.test(n));
const events = async (kind: string) =>
  (await run(process.execPath, [CRISP_BIN, 'events', '--root', daemon.root, '--kind', kind, '--json'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('a pull that fails after storing a layer leaves no layer or blob behind, and says so in the log', async () => {
  await assert.rejects(call(img(), img().PullImage, { image: { image: `${proxy.host}/crisp-test/gc-two-layers:latest` } }, 60_000),
    (err: grpc.ServiceError) => err.code === grpc.status.FAILED_PRECONDITION && /digest mismatch/.test(err.details));
  const stored = (await events('pull')).filter((e) => e.event.type === 'ImageLayerStored');
  assert.equal(stored.length, 1, 'the first layer was stored before the failure');
  const chainHex = stored[0].event.chainId.slice(7);
  await eventually(() => {
    assert.ok(!listDir('layers').includes(chainHex), 'the stored layer is collected');
    assert.deepEqual(listDir('blobs/sha256'), [], 'no blob is left');
  });
  const collected = (await events('runtime')).filter((e) => e.event.type === 'ContentCollected');
  assert.equal(collected.length, 1);
  assert.match(collected[0].event.reason, /pull of .*gc-two-layers:latest failed/);
  assert.deepEqual(collected[0].event.layers, [stored[0].event.chainId]);
  assert.ok(collected[0].event.blobs.includes(good.digest));
});

test('RemoveImage deletes every blob its pull stored, the index too; the next start-up finds no leak', async () => {
  const ref = `${registry.host}/${fixtures().ociIndex.repo}:latest`;
  const { image_ref } = await call(img(), img().PullImage, { image: { image: ref } }, 60_000);
  const before = listDir('blobs/sha256');
  assert.ok(before.length >= 4, `index, manifest, config and layers are stored (${before.length})`);
  await call(img(), img().RemoveImage, { image: { image: image_ref } });
  assert.deepEqual(listDir('blobs/sha256'), [], 'the index blob went with the rest');
  assert.deepEqual(listDir('layers'), []);
  daemon.clients.close();
  await daemon.stop();
  daemon = await startDaemon(['--registries-conf', join(dirs.dir, 'registries.conf')], dirs);
  const leaks = (await events('runtime')).filter((e) => e.event.type === 'LeakReclaimed');
  assert.deepEqual(leaks, [], 'start-up found nothing to reclaim');
});
