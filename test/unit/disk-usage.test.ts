import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskUsage } from '../../src/actors/storage/disk-usage.js';

test('disk usage counts allocated blocks and each inode once, across a tree larger than one turn of the walk', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'crisp-test-du-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (let d = 0; d < 6; d++) {
    mkdirSync(join(root, `d${d}`));
    for (let f = 0; f < 100; f++) writeFileSync(join(root, `d${d}`, `f${f}`), Buffer.alloc(f === 0 ? 20_000 : 10, 1));
  }
  linkSync(join(root, 'd0', 'f0'), join(root, 'd1', 'hardlink'));
  symlinkSync(join(root, 'd0', 'f0'), join(root, 'd2', 'symlink'));
  // what du counts: every inode once (the root, 6 dirs, 600 files, the symlink), by lstat
  const inodes = [root, join(root, 'd2', 'symlink')];
  for (let d = 0; d < 6; d++) {
    inodes.push(join(root, `d${d}`));
    for (let f = 0; f < 100; f++) inodes.push(join(root, `d${d}`, `f${f}`));
  }
  const expectedBytes = inodes.reduce((sum, path) => sum + lstatSync(path).blocks * 512, 0);
  assert.deepEqual(await diskUsage(root), { bytes: expectedBytes, inodes: inodes.length }, 'the hard link is neither a second inode nor counted twice');
});

test('disk usage of a missing tree is zero', async () => {
  assert.deepEqual(await diskUsage(join(tmpdir(), 'crisp-test-du-absent-never-made')), { bytes: 0, inodes: 0 });
});
