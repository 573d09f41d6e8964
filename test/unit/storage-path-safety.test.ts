// Crafted layers that try to write outside their directory. Each must be refused with an error
// naming the entry, leave no layer and no temp files, and touch nothing outside.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LayerStore } from '../../src/actors/storage/layer-store.js';
import { createTar, type TarEntry } from '../helpers/tar.js';

const me = { uid: process.getuid!(), gid: process.getgid!() };
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const root = mkdtempSync('/tmp/crisp-test-safety-');
const outside = join(root, 'outside');
const store = new LayerStore(join(root, 'store'));
test.after(async () => {
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

async function assertRejected(name: string, entries: TarEntry[], message: RegExp) {
  mkdirSync(outside, { recursive: true });
  const tar = createTar(entries.map((e) => ({ ...me, ...e })));
  const blobPath = join(root, `${name}.tar`);
  writeFileSync(blobPath, tar);
  const chainId = sha(name);
  await assert.rejects(store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar', chainId }), message);
  assert.equal(await store.has(chainId), false, `${name}: no layer`);
  assert.deepEqual(readdirSync(join(root, 'store', 'layers', 'tmp')), [], `${name}: no temp files`);
  assert.deepEqual(readdirSync(outside), [], `${name}: nothing written outside`);
}

const ok: TarEntry = { path: 'innocent', type: 'file', content: 'fine' };

/** Unpacks a layer that must be accepted; returns its directory. Nothing outside may change. */
async function accepted(name: string, entries: TarEntry[]): Promise<string> {
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(root, 'victim'), 'secret');
  const blobPath = join(root, `${name}.tar`);
  writeFileSync(blobPath, createTar(entries.map((e) => ({ ...me, ...e }))));
  const chainId = sha(name);
  await store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar', chainId });
  assert.deepEqual(readdirSync(outside), [], `${name}: nothing written outside`);
  assert.equal(readFileSync(join(root, 'victim'), 'utf8'), 'secret', `${name}: the file outside is unchanged`);
  return store.path(chainId);
}

test('absolute entry names are taken relative to the layer root', async () => {
  const dir = await accepted('absolute', [ok, { path: '/etc/x', type: 'file', content: 'x' }, { path: `${outside}/owned`, type: 'file', content: 'y' }]);
  assert.equal(readFileSync(join(dir, 'etc/x'), 'utf8'), 'x');
  assert.equal(readFileSync(join(dir, outside.slice(1), 'owned'), 'utf8'), 'y', 'an absolute name naming a host path lands inside the layer');
});

test('a .. that stays inside the root is cleaned away; one that climbs out is refused', async () => {
  const dir = await accepted('dotdot-inner', [{ path: 'etc/x/../y', type: 'file', content: 'y' }, { path: 'a/../b', type: 'file', content: 'b' }]);
  assert.equal(readFileSync(join(dir, 'etc/y'), 'utf8'), 'y');
  assert.equal(readFileSync(join(dir, 'b'), 'utf8'), 'b');
  assert.ok(!existsSync(join(dir, 'etc/x')), 'etc/x is only a step of the path, never made');
  await assertRejected('dotdot', [ok, { path: '../../outside/owned', type: 'file', content: 'x' }], /layer entry "\.\.\/\.\.\/outside\/owned": path .* climbs out of the layer root/);
  await assertRejected('dotdot-late', [ok, { path: 'a/../../outside/owned', type: 'file', content: 'x' }], /layer entry "a\/\.\.\/\.\.\/outside\/owned": path .* climbs out/);
});

test('absolute hard-link targets are taken relative to the layer root', async () => {
  const dir = await accepted('hardlink-absolute-ok', [{ path: 'etc/x', type: 'file', content: 'x' }, { path: 'h', type: 'hardlink', linkname: '/etc/x' }]);
  assert.equal(statSync(join(dir, 'h')).ino, statSync(join(dir, 'etc/x')).ino);
});

test('writing through a symlink planted by an earlier entry is refused', async () => {
  await assertRejected(
    'through-symlink',
    [ok, { path: 'escape', type: 'symlink', linkname: outside }, { path: 'escape/owned', type: 'file', content: 'x' }],
    /layer entry "escape\/owned" would be written through the symlink "escape"/,
  );
  await assertRejected(
    'through-relative-symlink',
    [
      { path: 'a', type: 'dir' },
      { path: 'a/up', type: 'symlink', linkname: '../../../outside' },
      { path: 'a/up/sub/owned', type: 'file', content: 'x' },
    ],
    /layer entry "a\/up\/sub\/owned" would be written through the symlink "a\/up"/,
  );
});

test('a symlink dir replaced by a dir entry is made a real directory', async () => {
  // Not an attack when the dir entry replaces the link: later entries land in the new dir.
  const tar = createTar([{ path: 'd', type: 'symlink', linkname: outside }, { path: 'd', type: 'dir' }, { path: 'd/x', type: 'file', content: 'x' }].map((e) => ({ ...me, ...e })) as TarEntry[]);
  const blobPath = join(root, 'replace.tar');
  writeFileSync(blobPath, tar);
  mkdirSync(outside, { recursive: true });
  const chainId = sha('replace');
  await store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar', chainId });
  assert.deepEqual(readdirSync(join(store.path(chainId), 'd')), ['x']);
  assert.deepEqual(readdirSync(outside), []);
});

test('hard links must point at an earlier entry inside the layer', async () => {
  writeFileSync(join(root, 'victim'), 'secret');
  // An absolute target naming a host file means that path inside the layer, which is not there.
  await assertRejected('hardlink-absolute', [ok, { path: 'h', type: 'hardlink', linkname: join(root, 'victim') }], /layer entry "h": hard link target ".*victim" is not an earlier entry of this layer/);
  await assertRejected('hardlink-dotdot', [ok, { path: 'h', type: 'hardlink', linkname: '../../victim' }], /layer entry "h": hard link target "\.\.\/\.\.\/victim" climbs out of the layer root/);
  await assertRejected('hardlink-missing', [ok, { path: 'h', type: 'hardlink', linkname: 'etc/shadow' }], /layer entry "h": hard link target "etc\/shadow" is not an earlier entry of this layer/);
  await assertRejected(
    'hardlink-via-symlink',
    [ok, { path: 'l', type: 'symlink', linkname: root }, { path: 'h', type: 'hardlink', linkname: 'l/victim' }],
    /layer entry "h": hard link target "l\/victim" is not an earlier entry/,
  );
  await assertRejected('hardlink-dir', [{ path: 'd', type: 'dir' }, { path: 'h', type: 'hardlink', linkname: 'd' }], /hard link target "d" is a dir/);
});

test('a file cannot be a parent directory', () =>
  assertRejected('file-parent', [ok, { path: 'innocent/child', type: 'file', content: 'x' }], /layer entry "innocent\/child": parent "innocent" is a file/));
