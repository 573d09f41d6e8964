// 200 layers: more than 64-hex-digit paths could ever fit into overlay's one page of mount
// options, so this only mounts thanks to the short links.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LayerStore, chainIds } from '../../src/actors/storage/layer-store.js';
import { mountsAt } from '../../src/host/mountinfo.js';
import { mountOverlay } from '../../src/actors/storage/overlay.js';
import { unmountOwn as unmount } from '../../src/host/mounts.js';
import { createTar } from '../helpers/tar.js';

const LAYERS = 200;

test(`a ${LAYERS}-layer image mounts as one overlay`, async (t) => {
  const root = mkdtempSync('/tmp/crisp-test-many-');
  const store = new LayerStore(join(root, 'store'));
  const merged = join(root, 'merged');
  t.after(async () => {
    await unmount(merged);
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  const tars = Array.from({ length: LAYERS }, (_, i) =>
    createTar([
      { path: `layers/${i}`, type: 'file', content: String(i) },
      { path: 'top', type: 'file', content: `layer ${i}` },
    ]),
  );
  const diffIds = tars.map((tar) => `sha256:${createHash('sha256').update(tar).digest('hex')}`);
  const chains = chainIds(diffIds);
  await Promise.all(
    tars.map((tar, i) => {
      const blobPath = join(root, `blob${i}`);
      writeFileSync(blobPath, tar);
      return store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar', chainId: chains[i]!, expectedDiffId: diffIds[i] });
    }),
  );
  assert.equal((await store.list()).length, LAYERS);

  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(root, d));
  const lowerDirs = chains.map((c) => store.path(c));
  assert.ok(lowerDirs.join(':').length > 4096, 'full paths would not fit in a page');
  await mountOverlay({ lowerDirs, upperDir: join(root, 'upper'), workDir: join(root, 'work'), target: merged, linkDir: store.linkDir });
  assert.equal((await mountsAt(merged)).at(-1)?.fsType, 'overlay');
  assert.equal(readdirSync(join(merged, 'layers')).length, LAYERS);
  assert.equal(readFileSync(join(merged, 'top'), 'utf8'), `layer ${LAYERS - 1}`, 'the last layer is on top');
  assert.equal(readFileSync(join(merged, 'layers', '0'), 'utf8'), '0');
  await unmount(merged);
  assert.equal((await mountsAt(merged)).at(-1)?.fsType, undefined);

  // Removing the layers also removes their short links.
  for (const c of chains) await store.remove(c);
  assert.deepEqual(readdirSync(store.linkDir), []);
});
