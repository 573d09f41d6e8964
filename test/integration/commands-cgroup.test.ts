// The commands crisp runs get their CPU in a cgroup of their own below the daemon's
// (commands_cgroup, see src/actors/monitor/commands-cgroup.ts). The daemon starts in a cgroup of
// its own, cpu hierarchy included, as under a service manager; a CNI plugin wrapped by a script
// that records its own cgroup shows where the commands of a real pod start ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { makeTempDir } from '../helpers/bundle.js';
import { makeServiceCgroup, pidsIn } from '../helpers/service-cgroup.js';
import { spawnHelperOf } from '../helpers/daemon.js';
import { parseProcCgroup } from '../../src/actors/monitor/cgroups.js';

/** A process's cgroup in the cpu hierarchy, from /proc/PID/cgroup text. */
function cpuCgroupOf(text: string): string {
  const memberships = parseProcCgroup(text);
  return (memberships.find((m) => m.controllers.includes('cpu')) ?? memberships.find((m) => m.controllers.length === 0))!.path;
}

test('the spawn helper and the commands it starts (a CNI plugin here) run in the commands\' cgroup below the daemon\'s; "daemon" keeps them there', async (t) => {
  const service = `crisp-test-cmd-${process.pid}`;
  const cgroup = await makeServiceCgroup(service, { cpu: true });
  const serviceDir = cgroup.cpuDir!;
  const commandsDir = join(serviceDir, 'crisp-commands');
  const work = await makeTempDir('commands-cgroup');
  let node: TestNode | undefined;
  t.after(async () => {
    await node?.cleanup();
    await cgroup.remove();
    await rm(work, { recursive: true, force: true });
  });

  // The bridge plugin, wrapped: it notes its own cgroup, then runs the real one.
  const plugins = join(work, 'plugins');
  mkdirSync(plugins);
  const records = join(work, 'records');
  mkdirSync(records);
  writeFileSync(join(plugins, 'bridge'), `#!/bin/sh\ncat /proc/self/cgroup > ${records}/$CNI_COMMAND.$$\nexec /usr/lib/cni/bridge "$@"\n`);
  chmodSync(join(plugins, 'bridge'), 0o755);
  const pluginArgs = ['--cni-plugin-dir', `${plugins},/usr/lib/cni`];
  const recorded = () => readdirSync(records).map((f) => cpuCgroupOf(readFileSync(join(records, f), 'utf8')));

  node = await startTestNode(pluginArgs, { daemon: { cgroupDirs: cgroup.dirs } });
  const daemonPid = node.daemon.process.pid!;
  assert.equal(cpuCgroupOf(readFileSync(`/proc/${daemonPid}/cgroup`, 'utf8')), `/${service}`, 'the daemon stays in its own cgroup');
  const helper = spawnHelperOf(daemonPid);
  assert.ok(helper, 'the spawn helper runs');
  assert.deepEqual(pidsIn(commandsDir), [helper], 'the spawn helper is in the commands\' cgroup');

  await node.runPod(`cmd${node.tag}`);
  assert.deepEqual(recorded(), [`/${service}/crisp-commands`], 'the CNI ADD of a pod ran in the commands\' cgroup');

  // A helper that dies is replaced on the next command, and the new one is placed too.
  process.kill(helper, 'SIGKILL');
  for (let i = 0; i < 50 && spawnHelperOf(daemonPid) === helper; i++) await sleep(20);
  await node.runPod(`cmd2${node.tag}`);
  const second = spawnHelperOf(daemonPid);
  assert.ok(second !== undefined && second !== helper, 'a new helper runs');
  assert.deepEqual(pidsIn(commandsDir), [second], 'the new helper is in the commands\' cgroup');
  assert.deepEqual(recorded(), [`/${service}/crisp-commands`, `/${service}/crisp-commands`]);

  // commands_cgroup = "daemon": the next daemon's helper stays beside it.
  await node.restartDaemon([...pluginArgs, '--commands-cgroup', 'daemon'], { cgroupDirs: cgroup.dirs });
  const third = spawnHelperOf(node.daemon.process.pid!);
  assert.ok(third, 'the spawn helper runs');
  assert.ok(pidsIn(serviceDir).includes(third), 'the helper is in the daemon\'s cgroup');
  assert.ok(!pidsIn(commandsDir).includes(third));
});
