import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupNumber, flatKeyedValue, readCgroupSample } from '../../src/actors/stats/cgroup-sample.js';
import type { CgroupPaths } from '../../src/actors/monitor/cgroups.js';
import { fileTree } from '../helpers/file-tree.js';

const PRESSURE = 'some avg10=1.50 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=99\n';

test('a key of a flat keyed file is found at the start of a line only, first line and last line included', () => {
  const stat = 'cache 1\nrss 2\ntotal_cache 4096\ntotal_rss 8192\ntotal_inactive_file 1048576';
  assert.equal(flatKeyedValue(stat, 'cache'), 1n);
  assert.equal(flatKeyedValue(stat, 'rss'), 2n, 'not total_rss');
  assert.equal(flatKeyedValue(stat, 'total_rss'), 8192n);
  assert.equal(flatKeyedValue(stat, 'total_inactive_file'), 1048576n, 'a last line without a newline');
  assert.equal(flatKeyedValue(stat, 'total'), undefined, 'a prefix of a key is not the key');
  assert.equal(flatKeyedValue(stat, 'swap'), undefined);
  assert.equal(flatKeyedValue(undefined, 'rss'), undefined);
  assert.equal(flatKeyedValue('rss junk\n', 'rss'), undefined);
  assert.equal(flatKeyedValue('rss\n', 'rss'), undefined);
  assert.equal(cgroupNumber('max\n'), undefined);
  assert.equal(cgroupNumber(' 42\n'), 42n);
  assert.equal(cgroupNumber(undefined), undefined);
});

test('v1: usage, limit, working set, page faults and swap from the controllers; PSI from the unified twin', async (t) => {
  const root = await fileTree('crisp-test-cgsample-', {
    'cpuacct/c/cpuacct.usage': '123456789\n',
    'memory/c/memory.usage_in_bytes': '10485760\n',
    'memory/c/memory.limit_in_bytes': '16777216\n',
    'memory/c/memory.memsw.limit_in_bytes': '33554432\n',
    'memory/c/memory.stat': 'cache 1\nrss 2\ntotal_cache 4096\ntotal_rss 8192\ntotal_swap 512\ntotal_pgfault 77\ntotal_pgmajfault 3\ntotal_inactive_file 1048576\n',
    'pids/c/pids.current': '3\n',
    'unified/c/cpu.pressure': PRESSURE,
    'unified/c/memory.pressure': PRESSURE,
  });
  t.after(() => rm(root, { recursive: true, force: true }));
  const paths: CgroupPaths = {
    version: 1,
    cgroupsPath: '/c',
    unified: join(root, 'unified/c'),
    controllers: { cpuacct: join(root, 'cpuacct/c'), memory: join(root, 'memory/c'), pids: join(root, 'pids/c') },
  };
  const s = readCgroupSample(paths);
  assert.equal(s.cpuNs, 123456789n);
  assert.deepEqual(s.memory, {
    usageBytes: 10485760n,
    limitBytes: 16777216n,
    workingSetBytes: 10485760n - 1048576n,
    rssBytes: 8192n,
    pageFaults: 77n,
    majorPageFaults: 3n,
  });
  assert.deepEqual(s.swap, { usageBytes: 512n, limitBytes: 33554432n - 16777216n });
  assert.equal(s.processes, 3n);
  assert.equal(s.pressure.cpu?.Some?.Total, 1234);
  assert.equal(s.pressure.memory?.Full?.Total, 99);
  assert.equal(s.pressure.io, undefined, 'no io.pressure file');
});

test('v1: an unlimited cgroup has no limit, no swap limit, and swap only when memsw is accounted', async (t) => {
  const root = await fileTree('crisp-test-cgsample-', {
    'memory/c/memory.usage_in_bytes': '4096\n',
    'memory/c/memory.limit_in_bytes': '9223372036854771712\n',
    'memory/c/memory.memsw.limit_in_bytes': '9223372036854771712\n',
    'memory/c/memory.stat': 'total_rss 4096\n',
    'memory/d/memory.usage_in_bytes': '8192\n',
    'memory/d/memory.stat': 'total_inactive_file 10000\n',
  });
  t.after(() => rm(root, { recursive: true, force: true }));
  const c = readCgroupSample({ version: 1, cgroupsPath: '/c', controllers: { memory: join(root, 'memory/c') } });
  assert.equal(c.memory?.limitBytes, undefined);
  assert.equal(c.memory?.workingSetBytes, 4096n);
  assert.deepEqual(c.swap, { usageBytes: 0n, limitBytes: undefined });
  assert.equal(c.cpuNs, undefined, 'no cpuacct hierarchy');
  const d = readCgroupSample({ version: 1, cgroupsPath: '/d', controllers: { memory: join(root, 'memory/d') } });
  assert.equal(d.memory?.workingSetBytes, 0n, 'inactive file above usage floors at zero');
  assert.equal(d.swap, undefined, 'no memsw file: swap unknown');
});

test('v2: the unified directory; a missing cgroup reads as nothing', async (t) => {
  const root = await fileTree('crisp-test-cgsample-', {
    'c/cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
    'c/memory.current': '4096000\n',
    'c/memory.max': '8192000\n',
    'c/memory.stat': 'anon 1000\nfile 2000\ninactive_file 96000\npgfault 5\npgmajfault 1\n',
    'c/memory.swap.current': '100\n',
    'c/memory.swap.max': 'max\n',
    'c/pids.current': '1\n',
    'c/io.pressure': PRESSURE,
  });
  t.after(() => rm(root, { recursive: true, force: true }));
  const s = readCgroupSample({ version: 2, cgroupsPath: '/c', unified: join(root, 'c'), controllers: {} });
  assert.equal(s.cpuNs, 1_500_000n);
  assert.deepEqual(s.memory, {
    usageBytes: 4096000n,
    limitBytes: 8192000n,
    workingSetBytes: 4096000n - 96000n,
    rssBytes: 1000n,
    pageFaults: 5n,
    majorPageFaults: 1n,
  });
  assert.deepEqual(s.swap, { usageBytes: 100n, limitBytes: undefined });
  assert.equal(s.processes, 1n);
  assert.equal(s.pressure.io?.Some?.Total, 1234);
  assert.deepEqual(readCgroupSample({ version: 2, cgroupsPath: '/gone', unified: join(root, 'gone'), controllers: {} }), { pressure: {} });
});
