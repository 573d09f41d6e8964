// `systemctl restart crisp` must leave containers running (issue 14, section 2). systemd stops a
// service by killing every process of its cgroup (KillMode=control-group); this test starts the
// daemon in a cgroup of its own, as systemd would, kills every process in it, and checks that
// the conmons were not there: they and their containers live on and are adopted by the next
// daemon without a ContainerMonitorLost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestNode } from '../helpers/node-env.js';
import { makeServiceCgroup, pidsIn } from '../helpers/service-cgroup.js';
import { call } from '../helpers/cri-client.js';
import { CRISP_BIN } from '../helpers/daemon.js';

const run = promisify(execFile);

const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const alive = (pid: number) => existsSync(`/proc/${pid}`);

test('killing every process of the daemon\'s service cgroup leaves conmons and containers running, adopted on restart', async (t) => {
  const cgroup = await makeServiceCgroup(`crisp-test-svc-${process.pid}`);
  const dirs = cgroup.dirs;
  assert.ok(dirs.length > 0, 'a hierarchy that tracks services');
  t.after(() => cgroup.remove());
  const node = await startTestNode([], { daemon: { cgroupDirs: dirs } });
  t.after(() => node.cleanup());
  const rt = () => node.daemon.clients.runtime;
  const pod = await node.runPod(`svc${node.tag}`);
  const { container_id: id } = await call(rt(), rt().CreateContainer, {
    pod_sandbox_id: pod,
    config: { metadata: { name: 'survivor', attempt: 0 }, image: { image: node.image }, command: ['sleep', '600'] },
    sandbox_config: null,
  }, 60_000);
  await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
  const containerPid = Number(JSON.parse((await call(rt(), rt().ContainerStatus, { container_id: id, verbose: true })).info.info!).pid);
  assert.ok(containerPid > 0);

  const members = dirs.flatMap(pidsIn);
  assert.ok(members.includes(node.daemon.process.pid!), 'the daemon runs in its service cgroup');
  assert.deepEqual(members.filter((p) => comm(p) === 'conmon'), [], 'no conmon is in the daemon\'s cgroup');

  // systemctl stop with KillMode=control-group: SIGKILL to every process of the service.
  node.daemon.clients.close();
  for (const d of dirs) for (const pid of pidsIn(d)) process.kill(pid, 'SIGKILL');
  await sleep(300);
  assert.ok(alive(containerPid), 'the container runs on');
  const { stdout: ps } = await run('ps', ['-eo', 'pid,comm,args']);
  const conmons = ps.split('\n').filter((l) => / conmon /.test(l) && l.includes(id));
  assert.equal(conmons.length, 1, 'its conmon runs on');

  await node.restartDaemon([], { cgroupDirs: dirs });
  const status = await call(rt(), rt().ContainerStatus, { container_id: id });
  assert.equal(status.status?.state, 'CONTAINER_RUNNING');
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'events', '--root', node.daemon.root, '--stream', id, '--json']);
  const types = stdout.trim().split('\n').map((l) => JSON.parse(l).event.type as string);
  assert.ok(!types.includes('ContainerMonitorLost'), `conmon was re-adopted: ${types.join(', ')}`);

  // And it still goes the normal way: stop sees the exit through conmon.
  await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 30_000);
  assert.equal((await call(rt(), rt().ContainerStatus, { container_id: id })).status?.state, 'CONTAINER_EXITED');
  await call(rt(), rt().RemoveContainer, { container_id: id });
});
