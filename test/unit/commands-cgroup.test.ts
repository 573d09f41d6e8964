// The commands' cgroup, decided against cgroup trees laid out in a temporary directory: plain
// files stand for the kernel's (the v1 path runs for real in
// test/integration/commands-cgroup.test.ts; this host has no cgroup v2 cpu controller).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandsCgroup, placeInCommandsCgroup, prepareCommandsCgroup } from '../../src/actors/monitor/commands-cgroup.js';
import type { CgroupLayout } from '../../src/actors/monitor/cgroups.js';

function tree(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-commands-cgroup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('commands_cgroup: "daemon" or one cgroup name, nothing that leaves the daemon\'s cgroup', () => {
  assert.equal(parseCommandsCgroup('daemon'), 'daemon');
  assert.deepEqual(parseCommandsCgroup('crisp-commands'), { name: 'crisp-commands' });
  for (const bad of ['a/b', '..', '.', '/abs', 'crisp-daemon', 'sp ace']) {
    assert.throws(() => parseCommandsCgroup(bad), (err: Error) => err.message.startsWith(`commands_cgroup = ${JSON.stringify(bad)}: expected "daemon" or the name of one cgroup`));
  }
});

test('v1: a child of the daemon\'s cpu cgroup; nothing at the root or when asked to stay', (t) => {
  const root = tree(t);
  const cpu = join(root, 'cpu,cpuacct');
  const layout: CgroupLayout = { version: 1, unifiedMount: join(root, 'unified'), v1Mounts: { cpu, cpuacct: cpu, memory: join(root, 'memory') } };
  const service = '4:memory:/system.slice/crisp.service\n3:cpu,cpuacct:/system.slice/crisp.service\n0::/system.slice/crisp.service\n';
  const placement = prepareCommandsCgroup({ name: 'crisp-commands' }, layout, service);
  const dir = join(cpu, 'system.slice/crisp.service/crisp-commands');
  assert.deepEqual(placement, { dir });
  assert.ok(existsSync(dir));
  placeInCommandsCgroup(placement, 4242);
  assert.equal(readFileSync(join(dir, 'cgroup.procs'), 'utf8'), '4242');
  assert.match((prepareCommandsCgroup({ name: 'x' }, layout, '4:memory:/system.slice/crisp.service\n3:cpu,cpuacct:/\n') as { stays: string }).stays, /root of the cpu hierarchy/);
  assert.deepEqual(prepareCommandsCgroup('daemon', layout, service), { stays: 'commands_cgroup = "daemon"' });
  assert.ok(!existsSync(join(root, 'memory')), 'no other hierarchy is touched');
});

test('v2: the daemon moves into its leaf, cpu is enabled for the children, then the commands\' cgroup is made', (t) => {
  const root = tree(t);
  const service = join(root, 'system.slice/crisp.service');
  mkdirSync(service, { recursive: true });
  writeFileSync(join(service, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  writeFileSync(join(service, 'cgroup.subtree_control'), '\n');
  writeFileSync(join(service, 'cgroup.procs'), '777\n');
  const layout: CgroupLayout = { version: 2, unifiedMount: root, v1Mounts: {} };
  const placement = prepareCommandsCgroup({ name: 'crisp-commands' }, layout, '0::/system.slice/crisp.service\n', 777);
  assert.deepEqual(placement, { dir: join(service, 'crisp-commands') });
  assert.equal(readFileSync(join(service, 'crisp-daemon/cgroup.procs'), 'utf8'), '777', 'the daemon left the parent for its leaf');
  assert.equal(readFileSync(join(service, 'cgroup.subtree_control'), 'utf8'), '+cpu');

  // A daemon started again in its leaf, cpu already on: nothing moves, the cgroup is reused.
  writeFileSync(join(service, 'cgroup.subtree_control'), 'cpu\n');
  writeFileSync(join(service, 'crisp-daemon/cgroup.procs'), '');
  assert.deepEqual(prepareCommandsCgroup({ name: 'crisp-commands' }, layout, '0::/system.slice/crisp.service/crisp-daemon\n', 778), placement);
  assert.equal(readFileSync(join(service, 'crisp-daemon/cgroup.procs'), 'utf8'), '');
});

test('v2: without a delegated cpu controller, or at the root, the commands stay', (t) => {
  const root = tree(t);
  const service = join(root, 'crisp.service');
  mkdirSync(service);
  writeFileSync(join(service, 'cgroup.controllers'), 'memory pids\n');
  const layout: CgroupLayout = { version: 2, unifiedMount: root, v1Mounts: {} };
  assert.match((prepareCommandsCgroup({ name: 'c' }, layout, '0::/crisp.service\n') as { stays: string }).stays, /cpu controller is not delegated to .*crisp\.service \(Delegate=yes/);
  assert.ok(!existsSync(join(service, 'crisp-daemon')), 'the daemon did not move');
  assert.match((prepareCommandsCgroup({ name: 'c' }, layout, '0::/\n') as { stays: string }).stays, /root of the cgroup v2 hierarchy/);

  // A login session's cgroup, cpu delegated, with the shell in it: not the daemon's to divide.
  const session = join(root, 'user.slice/session-1.scope');
  mkdirSync(session, { recursive: true });
  writeFileSync(join(session, 'cgroup.controllers'), 'cpu memory pids\n');
  writeFileSync(join(session, 'cgroup.subtree_control'), '\n');
  writeFileSync(join(session, 'cgroup.procs'), '500\n777\n');
  assert.match((prepareCommandsCgroup({ name: 'c' }, layout, '0::/user.slice/session-1.scope\n', 777) as { stays: string }).stays, /session-1\.scope is not the daemon's own: it holds other processes \(500\)/);
  assert.ok(!existsSync(join(session, 'crisp-daemon')) && !existsSync(join(session, 'c')), 'nothing was made or moved');
});
