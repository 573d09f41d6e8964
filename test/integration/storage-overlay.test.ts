// Real unpack (as root: owners, devices, whiteouts, xattrs) of a three-layer image, mounted as
// a real overlay; the merged tree must be exactly what the layers say.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LayerStore, chainIds } from '../../src/actors/storage/layer-store.js';
import { getXattrs } from '../../src/actors/storage/native.js';
import { mountsAt } from '../../src/host/mountinfo.js';
import { mountOverlay } from '../../src/actors/storage/overlay.js';
import { unmountOwn as unmount } from '../../src/host/mounts.js';
import { createTar, type TarEntry } from '../helpers/tar.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

const layers: TarEntry[][] = [
  [
    { path: 'etc', type: 'dir' },
    { path: 'etc/passwd', type: 'file', content: 'root:x:0:0\n', mtime: 1_650_000_000 },
    { path: 'etc/keep', type: 'file', content: 'keep', mode: 0o600 },
    { path: 'a', type: 'dir' },
    { path: 'a/f1', type: 'file', content: 'v1' },
    { path: 'a/sub', type: 'dir' },
    { path: 'a/sub/deep', type: 'file', content: 'deep' },
    { path: 'opq', type: 'dir' },
    { path: 'opq/old1', type: 'file', content: 'o1' },
    { path: 'opq/old2', type: 'file', content: 'o2' },
    { path: 'replaced', type: 'dir' },
    { path: 'replaced/inner', type: 'file', content: 'in' },
    { path: 'will-vanish', type: 'file', content: 'bye' },
    { path: 'gone-dir', type: 'dir' },
    { path: 'gone-dir/x', type: 'file', content: 'x' },
  ],
  [
    { path: '.wh.will-vanish', type: 'file' },
    { path: '.wh.gone-dir', type: 'file' },
    { path: 'opq', type: 'dir', mode: 0o700 },
    { path: 'opq/.wh..wh..opq', type: 'file' },
    { path: 'opq/new', type: 'file', content: 'new' },
    { path: 'replaced', type: 'file', content: 'now a file' },
    { path: 'link', type: 'symlink', linkname: 'etc/passwd' },
    { path: 'etc', type: 'dir' },
    { path: 'etc/owned', type: 'file', content: 'owned', uid: 1234, gid: 5678, mode: 0o640, mtime: 1_700_000_000 },
    { path: 'etc/hard', type: 'hardlink', linkname: 'etc/owned' },
    { path: 'bin', type: 'dir' },
    { path: 'bin/suid', type: 'file', content: 's', uid: 1000, gid: 1000, mode: 0o4755 },
    { path: 'dev', type: 'dir' },
    { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { path: 'dev/fifo', type: 'fifo', mode: 0o600 },
    { path: 'attrs', type: 'file', content: 'xa', xattrs: { 'user.crisp': 'hello', 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') } },
  ],
  [
    { path: 'a', type: 'dir' },
    { path: 'a/f1', type: 'file', content: 'v2' },
    { path: 'dev/.wh.fifo', type: 'file' },
    { path: 'gone-dir', type: 'dir' },
    { path: 'gone-dir/new', type: 'file', content: 'new' },
  ],
];

const expectedTree = [
  'a d 755 0:0',
  'a/f1 f 644 0:0 "v2"',
  'a/sub d 755 0:0',
  'a/sub/deep f 644 0:0 "deep"',
  'attrs f 644 0:0 "xa"',
  'bin d 755 0:0',
  'bin/suid f 4755 1000:1000 "s"',
  'dev d 755 0:0',
  'dev/null c 666 0:0 1,3',
  'etc d 755 0:0',
  'etc/hard f 640 1234:5678 "owned"',
  'etc/keep f 600 0:0 "keep"',
  'etc/owned f 640 1234:5678 "owned"',
  'etc/passwd f 644 0:0 "root:x:0:0\\n"',
  'gone-dir d 755 0:0',
  'gone-dir/new f 644 0:0 "new"',
  'link l 777 0:0 -> etc/passwd',
  'opq d 700 0:0',
  'opq/new f 644 0:0 "new"',
  'replaced f 644 0:0 "now a file"',
];

function snapshot(dir: string, prefix = ''): string[] {
  const lines: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const head = `${rel} %t ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isDirectory()) {
      lines.push(head.replace('%t', 'd'), ...snapshot(dir, rel));
    } else if (st.isFile()) lines.push(`${head.replace('%t', 'f')} ${JSON.stringify(readFileSync(abs, 'utf8'))}`);
    else if (st.isSymbolicLink()) lines.push(`${head.replace('%t', 'l')} -> ${readlinkSync(abs)}`);
    else if (st.isCharacterDevice()) lines.push(`${head.replace('%t', 'c')} ${st.rdev >> 8},${st.rdev & 0xff}`);
    else if (st.isFIFO()) lines.push(head.replace('%t', 'p'));
    else lines.push(head.replace('%t', '?'));
  }
  return lines;
}

test('a three-layer image unpacks and mounts as exactly the merged tree', async (t) => {
  const root = mkdtempSync('/tmp/crisp-test-overlay-');
  const store = new LayerStore(join(root, 'store'));
  const merged = join(root, 'merged');
  const readOnly = join(root, 'ro');
  t.after(async () => {
    await unmount(merged);
    await unmount(readOnly);
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  const tars = layers.map((entries) => createTar(entries));
  const diffIds = tars.map(sha);
  const chains = chainIds(diffIds);
  for (const [i, tar] of tars.entries()) {
    const blobPath = join(root, `layer${i}.tar.gz`);
    writeFileSync(blobPath, gzipSync(tar));
    const r = await store.unpack({ blobPath, mediaType: GZIP, chainId: chains[i]!, expectedDiffId: diffIds[i] });
    assert.equal(r.diffId, diffIds[i]);
  }

  // The layer itself holds overlay's representation of the OCI whiteouts.
  const l2 = store.path(chains[1]!);
  const whiteout = lstatSync(join(l2, 'gone-dir'));
  assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'dir whiteout is a 0/0 char device');
  assert.ok(lstatSync(join(l2, 'will-vanish')).isCharacterDevice());
  assert.equal((await getXattrs(join(l2, 'opq'))).get('trusted.overlay.opaque')?.toString(), 'y');
  assert.ok(lstatSync(join(l2, 'dev/fifo')).isFIFO());
  assert.equal(lstatSync(join(l2, 'etc/owned')).mtimeMs, 1_700_000_000_000);
  assert.deepEqual(readdirSync(join(l2, '..')).sort(), ['diff', 'meta.json']);

  const upper = join(root, 'upper');
  const work = join(root, 'work');
  for (const d of [upper, work, merged, readOnly]) mkdirSync(d);
  const lowerDirs = chains.map((c) => store.path(c));
  await mountOverlay({ lowerDirs, upperDir: upper, workDir: work, target: merged, linkDir: store.linkDir });
  assert.equal((await mountsAt(merged)).at(-1)?.fsType, 'overlay');
  await mountOverlay({ lowerDirs, upperDir: upper, workDir: work, target: merged, linkDir: store.linkDir }); // re-driven: no second mount

  assert.deepEqual(snapshot(merged), expectedTree);
  const etcOwned = lstatSync(join(merged, 'etc/owned'));
  assert.equal(etcOwned.nlink, 2);
  assert.equal(etcOwned.ino, lstatSync(join(merged, 'etc/hard')).ino);
  assert.equal(lstatSync(join(merged, 'etc/passwd')).mtimeMs, 1_650_000_000_000);
  const attrs = await getXattrs(join(merged, 'attrs'));
  assert.equal(attrs.get('user.crisp')?.toString(), 'hello');
  assert.equal(attrs.get('security.capability')?.toString('hex'), '0100000200200000000000000000000000000000');

  // Writes go to the upper dir; the layers stay untouched.
  writeFileSync(join(merged, 'etc/passwd'), 'changed');
  assert.equal(readFileSync(join(upper, 'etc/passwd'), 'utf8'), 'changed');
  assert.equal(readFileSync(join(store.path(chains[0]!), 'etc/passwd'), 'utf8'), 'root:x:0:0\n');

  await unmount(merged);
  assert.equal((await mountsAt(merged)).at(-1)?.fsType, undefined);
  await unmount(merged);

  // Read-only, lowers only.
  await mountOverlay({ lowerDirs, target: readOnly, readOnly: true, linkDir: store.linkDir });
  assert.deepEqual(snapshot(readOnly), expectedTree);
  assert.throws(() => writeFileSync(join(readOnly, 'new'), 'x'), /EROFS/);
  await unmount(readOnly);
});

test('bad mount requests name the field', async () => {
  const base = { lowerDirs: ['/tmp/crisp-test-none/a'], target: '/tmp/crisp-test-none/t', linkDir: '/tmp/crisp-test-none/l' };
  await assert.rejects(mountOverlay({ ...base, lowerDirs: [] }), /lowerDirs: an overlay needs at least one/);
  await assert.rejects(mountOverlay({ ...base, lowerDirs: ['rel/dir'] }), /lowerDirs\[0\] "rel\/dir" is not an absolute path/);
  await assert.rejects(mountOverlay({ ...base, upperDir: '/tmp/u' }), /upperDir and workDir/);
  await assert.rejects(mountOverlay({ ...base, upperDir: '/tmp/u:x', workDir: '/tmp/w' }), /upperDir \/tmp\/u:x contains/);
});
