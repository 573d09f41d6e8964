import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseCgroupLayout,
  resolveCgroupPaths,
  readOomKillCount,
  removeCgroupTree,
  cgroupDirs,
  parseFlatKeyed,
  type CgroupPaths,
} from '../../src/actors/monitor/cgroups.js';
import { isCrispError } from '../../src/errors.js';
import { fileTree } from '../helpers/file-tree.js';

// Trimmed from this project's CI host (hybrid) and a systemd-era pure v2 host.
const HYBRID = `
25 1 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
32 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const PURE_V2 = `
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

test('hybrid mountinfo is v1, with co-mounted controllers and the unified twin', () => {
  const layout = parseCgroupLayout(HYBRID);
  assert.equal(layout.version, 1);
  assert.equal(layout.unifiedMount, '/sys/fs/cgroup/unified');
  assert.equal(layout.v1Mounts['memory'], '/sys/fs/cgroup/memory');
  assert.equal(layout.v1Mounts['net_cls'], '/sys/fs/cgroup/net_cls,net_prio');
  assert.equal(layout.v1Mounts['net_prio'], '/sys/fs/cgroup/net_cls,net_prio');
  assert.equal(layout.v1Mounts['name=systemd'], '/sys/fs/cgroup/systemd');
  assert.equal(layout.v1Mounts['xattr'], undefined, 'mount options are not controllers');
  const paths = resolveCgroupPaths(layout, '/kubepods/pod1/ctr');
  assert.equal(paths.controllers['memory'], '/sys/fs/cgroup/memory/kubepods/pod1/ctr');
  assert.equal(paths.unified, '/sys/fs/cgroup/unified/kubepods/pod1/ctr');
  // co-mounted controllers share a directory, which is listed once
  assert.equal(cgroupDirs(paths).filter((d) => d.includes('net_cls')).length, 1);
});

test('pure v2 mountinfo', () => {
  const layout = parseCgroupLayout(PURE_V2);
  assert.equal(layout.version, 2);
  const paths = resolveCgroupPaths(layout, '/a/b/');
  assert.deepEqual(paths, { version: 2, cgroupsPath: '/a/b', unified: '/sys/fs/cgroup/a/b', controllers: {} });
});

test('bad cgroupsPath values are rejected, naming the field', () => {
  const layout = parseCgroupLayout(PURE_V2);
  for (const bad of ['', 'relative/path', 'system.slice:crio:abc', '/', '/a/../../etc']) {
    assert.throws(() => resolveCgroupPaths(layout, bad), (e) => isCrispError(e, 'InvalidArgument') && /cgroupsPath/.test((e as Error).message), bad);
  }
  assert.throws(() => parseCgroupLayout('1 2 3:4 / / rw - ext4 /dev/sda rw\n'), (e) => isCrispError(e, 'FailedPrecondition'));
});

test('flat keyed files parse into bigints', () => {
  const m = parseFlatKeyed('oom_kill_disable 0\nunder_oom 1\noom_kill 3\n');
  assert.equal(m.get('oom_kill'), 3n);
  assert.equal(m.get('under_oom'), 1n);
});

test('OOM kill count: v1 memory.oom_control, v2 memory.events; a missing cgroup reads as null', async (t) => {
  const root = await fileTree('crisp-test-cg-', {
    'memory/c/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    'c/memory.events': 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n',
  });
  t.after(() => rm(root, { recursive: true, force: true }));
  assert.equal(await readOomKillCount({ version: 1, cgroupsPath: '/c', controllers: { memory: join(root, 'memory/c') } }), 2);
  assert.equal(await readOomKillCount({ version: 2, cgroupsPath: '/c', unified: join(root, 'c'), controllers: {} }), 1);
  assert.equal(await readOomKillCount({ version: 2, cgroupsPath: '/gone', unified: join(root, 'gone'), controllers: {} }), null);
  assert.equal(await readOomKillCount({ version: 1, cgroupsPath: '/c', controllers: {} }), null);
});

test('removeCgroupTree removes nested directories depth-first and is idempotent', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'crisp-test-cg-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'memory/p/c1/x'), { recursive: true });
  await mkdir(join(root, 'memory/p/c2'), { recursive: true });
  await mkdir(join(root, 'unified/p'), { recursive: true });
  const paths: CgroupPaths = { version: 1, cgroupsPath: '/p', unified: join(root, 'unified/p'), controllers: { memory: join(root, 'memory/p') } };
  await removeCgroupTree(paths);
  await assert.rejects(access(join(root, 'memory/p')));
  await assert.rejects(access(join(root, 'unified/p')));
  await removeCgroupTree(paths);
});
