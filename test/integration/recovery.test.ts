// Start-up reconcile against what really happened to the node while crisp was down (or behind
// its back): a conmon that died with its container still running, a container that died with
// its conmon already gone (no exit file), a rootfs someone unmounted, and one container whose
// recovery hangs, which must not keep the server from opening. Real daemon, runc, conmon, CNI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import { CRASH_ENV } from '../../src/crash-points.js';
import { eventually } from '../helpers/eventually.js';

const run = promisify(execFile);
let node: TestNode;

before(async () => {
  node = await startTestNode();
});

after(async () => {
  await node?.cleanup();
});

const rt = () => node.daemon.clients.runtime;

async function runContainer(podId: string, name: string, command: string[]): Promise<string> {
  const config = { metadata: { name, attempt: 0 }, image: { image: node.image }, command, log_path: `${name}/0.log` };
  const { container_id: id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: node.podConfig(`pod-${podId.slice(0, 6)}`) }, 60_000);
  await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
  return id;
}

const status = async (id: string) => (await call(rt(), rt().ContainerStatus, { container_id: id })).status!;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The pids runc and conmon wrote for a container. */
function record(id: string): { pid: number; conmonPid: number } {
  const pidIn = (file: string) => Number(readFileSync(join(node.daemon.runroot, 'containers', id, file), 'utf8').trim());
  return { pid: pidIn('pidfile'), conmonPid: pidIn('conmon.pid') };
}

const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
};

function eventTypes(id: string): string[] {
  const db = new Database(join(node.daemon.root, 'state.db'), { readonly: true });
  try {
    return (db.prepare('SELECT type FROM events WHERE stream_id = ? ORDER BY version').all(id) as { type: string }[]).map((r) => r.type);
  } finally {
    db.close();
  }
}

async function killDaemon(): Promise<void> {
  node.daemon.clients.close();
  await node.daemon.stop('SIGKILL');
}

async function removeContainer(id: string): Promise<void> {
  await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 60_000);
  await call(rt(), rt().RemoveContainer, { container_id: id }, 60_000);
}

/** A pod with a running container whose conmon is SIGKILLed while the daemon is down (SIGKILLed too). */
async function conmonKilledWhileDown(podName: string): Promise<{ id: string; pid: number }> {
  const pod = await node.runPod(podName);
  const id = await runContainer(pod, 'c', ['sleep', '3600']);
  const { pid, conmonPid } = record(id);
  await killDaemon();
  process.kill(conmonPid, 'SIGKILL');
  await until('conmon to go', async () => (alive(conmonPid) ? undefined : true));
  return { id, pid };
}

test('conmon gone while crisp was down, container alive: marked, still running, monitored again', async () => {
  const { id, pid } = await conmonKilledWhileDown('orphan');
  assert.ok(alive(pid), 'the container outlives its conmon');

  await node.restartDaemon();
  const st = await status(id);
  assert.equal(st.state, 'CONTAINER_RUNNING');
  assert.match(st.message, /conmon .*is gone; crisp watches process/);
  assert.ok(eventTypes(id).includes('ContainerMonitorLost'), 'the loss is a fact in the log');

  // Its later exit is seen, with the status nobody could collect reported as containerd does.
  process.kill(pid, 'SIGKILL');
  const exited = await until('the exit', async () => {
    const s = await status(id);
    return s.state === 'CONTAINER_EXITED' ? s : undefined;
  });
  assert.equal(exited.exit_code, 255);
  assert.equal(exited.reason, 'Unknown');
  await removeContainer(id);
});

test('conmon died, then the container, while crisp was down (runc: stopped, no exit file): exited 255, reason recorded', async () => {
  const { id, pid } = await conmonKilledWhileDown('lost');
  process.kill(pid, 'SIGKILL');
  await until('the container to go', async () => (alive(pid) ? undefined : true));
  assert.equal(existsSync(join(node.daemon.runroot, 'exits', id)), false, 'nobody wrote an exit file');

  await node.restartDaemon();
  const st = await status(id);
  assert.equal(st.state, 'CONTAINER_EXITED');
  assert.equal(st.exit_code, 255);
  assert.equal(st.reason, 'Unknown');
  assert.match(st.message, /no exit file/);
  assert.ok(eventTypes(id).includes('ContainerExitObserved'));
  await removeContainer(id);
});

test('conmon killed while crisp runs: the loss is recorded at once and the exit still seen', async () => {
  const pod = await node.runPod('orphan-live');
  const id = await runContainer(pod, 'c', ['sleep', '3600']);
  const { pid, conmonPid } = record(id);
  process.kill(conmonPid, 'SIGKILL');
  await until('the loss to be recorded', async () => ((await status(id)).message.includes('conmon') ? true : undefined));
  assert.equal((await status(id)).state, 'CONTAINER_RUNNING');
  process.kill(pid, 'SIGKILL');
  const exited = await until('the exit', async () => {
    const s = await status(id);
    return s.state === 'CONTAINER_EXITED' ? s : undefined;
  });
  assert.equal(exited.exit_code, 255);
  await removeContainer(id);
});

test('a rootfs the log holds as mounted but that is not is recorded, and removal still leaves nothing', async () => {
  const pod = await node.runPod('unmounted');
  const id = await runContainer(pod, 'c', ['true']);
  await until('the exit', async () => ((await status(id)).state === 'CONTAINER_EXITED' ? true : undefined));
  node.daemon.clients.close();
  await node.daemon.stop('SIGTERM');
  const rootfs = join(node.daemon.root, 'containers', id, 'rootfs');
  await run('umount', [rootfs]);

  await node.restartDaemon();
  assert.ok(eventTypes(id).includes('ContainerRootfsMountMissingObserved'), 'the missing mount is a fact in the log');
  await call(rt(), rt().RemoveContainer, { container_id: id }, 60_000);
  await eventually(() => assert.equal(existsSync(join(node.daemon.root, 'containers', id)), false));
});

test('one container whose recovery hangs does not hold the node: the server opens within the bound', async () => {
  const pod = await node.runPod('stuck');
  // Ignores SIGTERM, and will be stopped with a 300 s grace period: re-driving that stop at
  // start-up waits 300 s, unless the per-item bound lets the server open without it.
  const stuck = await runContainer(pod, 'stuck', ['sh', '-c', 'trap "" TERM; while true; do sleep 1; done']);
  const other = await runContainer(pod, 'other', ['sleep', '3600']);
  const stuckPid = record(stuck).pid;
  const otherPid = record(other).pid;

  // Die as the stop step begins: the log holds "stopping" with a 300 s grace period.
  await node.restartDaemon([], { env: { [CRASH_ENV]: 'container:stop:before' } });
  await assert.rejects(call(rt(), rt().StopContainer, { container_id: stuck, timeout: 300 }, 30_000));
  await until('the crash', async () => (node.daemon.process.signalCode === 'SIGKILL' ? true : undefined));
  // Meanwhile another container of the node exits.
  process.kill(otherPid, 'SIGKILL');
  await until('the other container to go', async () => (alive(otherPid) ? undefined : true));

  const began = Date.now();
  await node.restartDaemon(['--recovery-item-timeout', '2s']);
  const readyMs = Date.now() - began;
  assert.ok(readyMs < 15_000, `ready after ${readyMs} ms`);
  assert.match(node.daemon.stderr(), /still recovering in the background/);
  assert.equal((await status(other)).state, 'CONTAINER_EXITED', 'the other container recovered in parallel');
  assert.equal((await status(other)).exit_code, 137);
  assert.equal((await status(stuck)).state, 'CONTAINER_RUNNING', 'the stuck one is still stopping');

  // The background stop goes on and finishes when the process ends.
  process.kill(stuckPid, 'SIGKILL');
  await until('the stuck container to exit', async () => ((await status(stuck)).state === 'CONTAINER_EXITED' ? true : undefined));
  await call(rt(), rt().RemoveContainer, { container_id: stuck }, 60_000);
  await call(rt(), rt().RemoveContainer, { container_id: other }, 60_000);
});
