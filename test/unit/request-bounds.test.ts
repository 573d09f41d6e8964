import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCpuList, rejectNul } from '../../src/machines/request-bounds.js';
import { planResources, MEMORY_FLOOR } from '../../src/actors/spec/resources.js';
import type { HostFacts } from '../../src/actors/spec/input.js';
import type { LinuxContainerResources__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerResources.js';

test('cpuset lists parse as the kernel writes them and refuse anything else, naming the field', () => {
  assert.deepEqual([...parseCpuList('0-3,6', 'f')], [0, 1, 2, 3, 6]);
  assert.deepEqual([...parseCpuList(' 1 , 3-4 ', 'f')], [1, 3, 4]);
  assert.equal(parseCpuList('', 'f').size, 0);
  assert.throws(() => parseCpuList('0-9999999,abc', 'cpuset_cpus'), /cpuset_cpus: 9999999 is above 8191/);
  assert.throws(() => parseCpuList('abc', 'cpuset_cpus'), /cpuset_cpus: "abc" is not a list like "0-3,6"/);
  assert.throws(() => parseCpuList('3-1', 'cpuset_cpus'), /cpuset_cpus: range 3-1 runs backwards/);
  assert.throws(() => parseCpuList('1,,2', 'cpuset_cpus'), /not a list/);
});

test('a NUL byte anywhere in a request is refused with the path of its field', () => {
  rejectNul({ a: ['x', { b: 'ok' }] }, 'config');
  assert.throws(() => rejectNul({ a: ['x', { b: 'o\0k' }] }, 'config'), /config\.a\[1\]\.b: contains a NUL byte/);
  assert.throws(() => rejectNul({ ['k\0']: 'v' }, 'config'), /config: a key contains a NUL byte/);
});

const host = { cgroupVersion: 1, swapAccounting: false, hugetlb: false, oomScoreAdj: 0, cpus: '0-1', mems: '0' } as HostFacts;
const res = (r: Partial<LinuxContainerResources__Output>) => ({
  cpu_period: '', cpu_quota: '', cpu_shares: '', memory_limit_in_bytes: '', oom_score_adj: '', cpuset_cpus: '', cpuset_mems: '',
  hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: '', ...r,
}) as LinuxContainerResources__Output;

test('limits the node cannot honour are INVALID_ARGUMENT: offline CPUs and memory nodes, a memory limit under the floor', () => {
  assert.equal(planResources(res({ cpuset_cpus: '0-1', cpuset_mems: '0' }), host).resources.cpu?.cpus, '0-1');
  assert.throws(() => planResources(res({ cpuset_cpus: '0-5' }), host), /linux\.resources\.cpuset_cpus: CPUs 2,3,4,5 are not online on this node \(online: 0-1\)/);
  assert.throws(() => planResources(res({ cpuset_mems: '1' }), host), /linux\.resources\.cpuset_mems: memory nodes 1 are not online/);
  assert.throws(() => planResources(res({ memory_limit_in_bytes: '100' }), host), /memory_limit_in_bytes: 100 is below the 12582912-byte/);
  assert.equal(planResources(res({ memory_limit_in_bytes: String(MEMORY_FLOOR) }), host).resources.memory?.limit, MEMORY_FLOOR);
  // A node whose online CPUs are unknown still checks the syntax.
  const { cpus: _cpus, ...unknown } = host;
  assert.throws(() => planResources(res({ cpuset_cpus: 'x' }), unknown as HostFacts), /not a list/);
});
