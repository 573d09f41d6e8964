// Layer unpack throughput against GNU tar, plus the cost of each native (spawned tool) call.
// Run as root: node --import tsx bench/unpack.bench.ts [runs]
//
// One gzip layer of >100 MB (many files of mixed sizes, some compressible, some not) is
// unpacked alternately by LayerStore.unpack and by `tar -xzf` into fresh directories; the
// page cache is flushed (sync) before each timed run, trees are removed only at the end, and
// the order alternates, so neither side pays for the other's disk work.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LayerStore } from '../src/actors/storage/layer-store.js';
import { getXattrs, mknodSync, setXattrsSync } from '../src/actors/storage/native.js';
import { mountsAt } from '../src/host/mountinfo.js';
import { mountOverlay } from '../src/actors/storage/overlay.js';
import { unmountOwn as unmount } from '../src/host/mounts.js';
import { createTar, type TarEntry } from '../test/helpers/tar.js';

const RUNS = Number(process.argv[2] ?? 5);
const root = mkdtempSync('/tmp/crisp-test-bench-');

function layerEntries(): TarEntry[] {
  const entries: TarEntry[] = [];
  const words = Buffer.from('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n');
  const text = (n: number) => Buffer.concat(Array.from({ length: Math.ceil(n / words.length) }, () => words)).subarray(0, n);
  let total = 0;
  let i = 0;
  // Roughly an OS image: lots of small files, fewer medium ones, a few big binaries.
  const sizes = [
    ...Array<number>(20_000).fill(2_000),
    ...Array<number>(4_000).fill(16_000),
    ...Array<number>(400).fill(120_000),
    ...Array<number>(8).fill(4_000_000),
  ];
  for (const size of sizes) {
    const dir = `usr/share/d${i % 300}`;
    if (i < 300) entries.push({ path: dir, type: 'dir', mode: 0o755 });
    const content = i % 2 === 0 ? text(size) : randomBytes(size);
    entries.push({ path: `${dir}/f${i}`, type: 'file', content, mode: i % 7 === 0 ? 0o755 : 0o644, mtime: 1_700_000_000 });
    if (i % 50 === 0) entries.push({ path: `${dir}/l${i}`, type: 'symlink', linkname: `f${i}` });
    total += size;
    i++;
  }
  console.log(`layer: ${entries.length} entries, ${(total / 1e6).toFixed(0)} MB of file content`);
  return entries;
}

/** Flushes dirty pages and lets the disk go idle, so no run pays for an earlier one's writes. */
function settle() {
  spawnSync('sync');
  spawnSync('sleep', ['2']);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function benchUnpack() {
  const tar = createTar(layerEntries());
  const blobPath = join(root, 'layer.tar.gz');
  writeFileSync(blobPath, gzipSync(tar, { level: 6 }));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  console.log(`tar ${(tar.length / 1e6).toFixed(0)} MB, gzip ${(gzipSync(tar, { level: 1 }).length / 1e6).toFixed(0)}+ MB`);

  const store = new LayerStore(join(root, 'store'));
  const ours: number[] = [];
  const gnu: number[] = [];
  // Warm-up: start the unpack thread and fill the page cache with the blob.
  const warm = await store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', chainId: `sha256:${'0'.repeat(64)}` });
  if (warm.diffId !== diffId) throw new Error('diff id mismatch');
  await store.remove(`sha256:${'0'.repeat(64)}`);

  for (let run = 0; run < RUNS; run++) {
    const chainId = `sha256:${(run + 1).toString(16).padStart(64, '0')}`;
    const dest = join(root, `gnu-${run}`);
    mkdirSync(dest);
    const crisp = async () => {
      settle();
      const t = performance.now();
      await store.unpack({ blobPath, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', chainId, expectedDiffId: diffId });
      ours.push(performance.now() - t);
    };
    const gnuTar = () => {
      settle();
      const t = performance.now();
      execFileSync('tar', ['-xzf', blobPath, '-C', dest]);
      gnu.push(performance.now() - t);
    };
    // Who goes first alternates, so neither always inherits the other's writeback.
    if (run % 2 === 0) {
      await crisp();
      gnuTar();
    } else {
      gnuTar();
      await crisp();
    }
    console.log(`run ${run + 1}: crisp ${ours[run]!.toFixed(0)} ms, GNU tar ${gnu[run]!.toFixed(0)} ms`);
  }
  // Trees are removed only now: freeing blocks (discards on this kind of disk) mid-series would
  // slow whichever run follows.
  for (let run = 0; run < RUNS; run++) await store.remove(`sha256:${(run + 1).toString(16).padStart(64, '0')}`);
  await store.close();
  const [a, b] = [median(ours), median(gnu)];
  const pairRatio = median(ours.map((x, i) => x / gnu[i]!));
  console.log(`median: crisp ${a.toFixed(0)} ms, GNU tar -xzf ${b.toFixed(0)} ms, ratio ${(a / b).toFixed(2)} (goal <= 1.2)`);
  console.log(`median of per-run ratios: ${pairRatio.toFixed(2)}`);
}

async function time(label: string, n: number, fn: (i: number) => unknown | Promise<unknown>) {
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  console.log(`${label}: ${((performance.now() - t) / n).toFixed(2)} ms per call`);
}

async function benchNative() {
  const dir = join(root, 'native');
  mkdirSync(dir);
  for (let i = 0; i < 100; i++) writeFileSync(join(dir, `f${i}`), '');
  await time('mknod (spawnSync mknod)', 50, (i) => mknodSync(join(dir, `dev${i}`), 'char', 1, 3, 0o666));
  await time('setxattr, 1 attr (spawnSync setfattr)', 50, (i) =>
    setXattrsSync(dir, [{ path: `f${i}`, name: 'user.one', value: Buffer.from('v') }]),
  );
  const hundred = Array.from({ length: 100 }, (_, i) => ({ path: `f${i}`, name: 'user.batch', value: Buffer.from(String(i)) }));
  await time('setxattr, batch of 100 attrs (one setfattr)', 20, () => setXattrsSync(dir, hundred));
  await time('getxattrs (getfattr)', 50, (i) => getXattrs(join(dir, `f${i}`)));
  const lower = join(dir, 'lower');
  const target = join(dir, 'mnt');
  mkdirSync(lower);
  mkdirSync(target);
  await time('overlay mount + unmount (mount, umount, 2 mountinfo reads)', 20, async () => {
    await mountOverlay({ lowerDirs: [lower], target, readOnly: true, linkDir: join(dir, 'l') });
    await unmount(target);
  });
  if ((await mountsAt(target)).length > 0) throw new Error('still mounted');
}

try {
  await benchNative();
  await benchUnpack();
} finally {
  await unmount(join(root, 'native', 'mnt'));
  rmSync(root, { recursive: true, force: true });
}
