// Removing a tree with src/host/files.ts: what is there goes, a symlink goes without what it
// points to, an absent path is no error, and a large tree is removed with turns of the event loop
// between its entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeIfPresent, removePath } from '../../src/host/files.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A container's writable dir as overlayfs leaves it: upper with files, work/work (no permissions at all, as root), rootfs empty. */
function containerLike(root: string, outside: string): string {
  const dir = join(root, 'ctr');
  mkdirSync(join(dir, 'upper', 'etc', 'deep', 'er'), { recursive: true });
  writeFileSync(join(dir, 'upper', 'etc', 'hosts'), 'x');
  writeFileSync(join(dir, 'upper', 'etc', 'deep', 'er', 'f'), 'y');
  symlinkSync(outside, join(dir, 'upper', 'link-to-outside'));
  symlinkSync('/nonexistent', join(dir, 'upper', 'dangling'));
  mkdirSync(join(dir, 'work', 'work'), { recursive: true, mode: process.getuid?.() === 0 ? 0o000 : 0o700 });
  mkdirSync(join(dir, 'rootfs'));
  return dir;
}

for (const [name, remove] of [['removePath', removePath], ['removeIfPresent', async (p: string) => removeIfPresent(p)]] as const) {
  test(`${name} removes a tree, and a symlink in it without what it points to`, async (t) => {
    const root = scratch(t);
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'k');
    const dir = containerLike(root, outside);
    await remove(dir);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(readdirSync(outside), ['keep']);
  });

  test(`${name} removes a file or a symlink, and is no error for an absent path`, async (t) => {
    const root = scratch(t);
    writeFileSync(join(root, 'f'), 'x');
    mkdirSync(join(root, 'd'));
    symlinkSync(join(root, 'd'), join(root, 'l'));
    await remove(join(root, 'f'));
    await remove(join(root, 'l'));
    await remove(join(root, 'absent'));
    await remove(join(root, 'absent', 'below'));
    assert.deepEqual(readdirSync(root), ['d']);
  });
}

test('removePath lets the event loop run while it removes a large tree', async (t) => {
  const root = scratch(t);
  const dir = join(root, 'big');
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), '');
  }
  // a chain of immediates: each link runs on a turn of the event loop after the one before
  let turns = 0;
  const next = () => setImmediate(() => { turns++; if (turns < 1000) next(); });
  next();
  await removePath(dir);
  assert.equal(existsSync(dir), false);
  // 1010 entries, a turn every 256 of them
  assert.ok(turns >= 3, `the loop turned ${turns} times while 1010 entries were removed`);
});
