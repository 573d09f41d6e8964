import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conmonCgroupPath, hierarchiesBelowRoot, parseConmonCgroup } from '../../src/actors/monitor/conmon-cgroup.js';
import type { CgroupLayout } from '../../src/actors/monitor/cgroups.js';

const hybrid: CgroupLayout = {
  version: 1,
  unifiedMount: '/sys/fs/cgroup/unified',
  v1Mounts: {
    cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', cpuset: '/sys/fs/cgroup/cpuset',
    pids: '/sys/fs/cgroup/pids', 'name=systemd': '/sys/fs/cgroup/systemd',
  },
};

test('conmons move only in hierarchies where the daemon sits below the root, never in cpuset', () => {
  const service = '12:name=systemd:/system.slice/crisp.service\n5:cpuset:/system.slice\n4:memory:/system.slice/crisp.service\n3:cpu,cpuacct:/\n2:pids:/system.slice/crisp.service\n0::/system.slice/crisp.service\n';
  assert.deepEqual(hierarchiesBelowRoot(hybrid, service).sort(), ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']);
  assert.deepEqual(hierarchiesBelowRoot(hybrid, '12:name=systemd:/\n4:memory:/\n0::/\n'), [], 'a daemon run by hand at the roots moves nothing');
  const v2: CgroupLayout = { version: 2, unifiedMount: '/sys/fs/cgroup', v1Mounts: {} };
  assert.deepEqual(hierarchiesBelowRoot(v2, '0::/system.slice/crisp.service\n'), ['/sys/fs/cgroup']);
});

test('the conmon cgroup: beside the pod\'s containers, one the operator names, or none', () => {
  assert.equal(conmonCgroupPath('pod', '/kubepods/besteffort/pod1/crisp-abc', 'abc'), '/kubepods/besteffort/pod1/crisp-conmon-abc');
  assert.equal(conmonCgroupPath('pod', undefined, 'abc'), '/crisp/crisp-conmon-abc');
  assert.equal(conmonCgroupPath('/system.slice/crisp-conmon.scope', '/kubepods/x', 'abc'), '/system.slice/crisp-conmon.scope');
  assert.equal(conmonCgroupPath('daemon', '/kubepods/x', 'abc'), null);
  assert.equal(parseConmonCgroup('/a/b/'), '/a/b');
  assert.throws(() => parseConmonCgroup('relative'), /conmon_cgroup = "relative": expected "pod", "daemon" or an absolute cgroupfs path/);
  assert.throws(() => parseConmonCgroup('/a/../b'), /expected/);
});
