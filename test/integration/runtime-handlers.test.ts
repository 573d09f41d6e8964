// RuntimeClass handlers through the real daemon: Status advertises runc and crun with what each
// really supports, and a pod's runtime_handler picks the OCI runtime for the pod, its infra
// container and every container in it — create, start, exec (sync and streamed), resources,
// stop, remove — across a SIGKILL of the daemon.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { pauseLikeImage, pushImage } from '../helpers/oci-images.js';
import { call } from '../helpers/cri-client.js';
import { eventually, removeContainerReleased } from '../helpers/eventually.js';
import { SpdyClient, collect } from '../helpers/spdy-client.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';

const run = promisify(execFile);
let node: TestNode;
const rt = () => node.daemon.clients.runtime;

before(async () => {
  node = await startTestNode([], {
    async prepare(registry) {
      await pushImage(registry.url, 'crisp-test/pause', '3.9', pauseLikeImage(['/bin/sleep', 'infinity']));
      return ['--pause-image', `${registry.host}/crisp-test/pause:3.9`];
    },
  });
});

after(async () => {
  await node?.cleanup();
});

const isCode = (code: grpc.status, pattern: RegExp) => (err: grpc.ServiceError) => {
  assert.equal(err.code, code, err.details);
  assert.match(err.details, pattern);
  return true;
};

/** The ids the runtime itself lists in a root (`runc list` / `crun list`). */
async function listed(binary: string, root: string): Promise<string[]> {
  const { stdout } = await run(binary, ['--root', root, 'list', '-q']);
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

const rootOf = (handler: string) => (handler === 'crun' ? join(node.daemon.runroot, 'runtimes', 'crun') : join(node.daemon.runroot, 'runc'));
const binaryOf = (handler: string) => (handler === 'crun' ? 'crun' : 'runc');

let counter = 0;
function containerConfig(command: string[]): ContainerConfig {
  const name = `h${counter++}`;
  return { metadata: { name, attempt: 0 }, image: { image: node.image }, command, log_path: `${name}.log` };
}

async function runPod(handler: string, pid: 'POD' | 'CONTAINER' = 'CONTAINER'): Promise<string> {
  const base = node.podConfig(`hpod${counter++}${node.tag}`);
  const config: PodSandboxConfig = { ...base, linux: { ...base.linux, security_context: { namespace_options: { network: 'POD', pid, ipc: 'POD' } } } };
  const id = (await call(rt(), rt().RunPodSandbox, { config, runtime_handler: handler }, 60_000)).pod_sandbox_id;
  return id;
}

async function startIn(podId: string, command: string[], runAsUser?: number): Promise<string> {
  const config = containerConfig(command);
  if (runAsUser !== undefined) config.linux = { security_context: { run_as_user: { value: String(runAsUser) } } };
  const { container_id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: null }, 60_000);
  await call(rt(), rt().StartContainer, { container_id }, 30_000);
  return container_id;
}

async function removePod(podId: string): Promise<void> {
  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: podId }, 60_000);
  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: podId }, 60_000);
}

test('Status lists every handler with the features it really has, and the runtime-wide features', async () => {
  const r = await call(rt(), rt().Status, { verbose: true });
  const byName = new Map(r.runtime_handlers.map((h) => [h.name, h.features]));
  assert.deepEqual([...byName.keys()].sort(), ['', 'crun', 'runc']);
  // runc 1.1 lists the "rro" mount option and this kernel has mount_setattr; crun 1.8 has no
  // `features` command, so nothing optional is claimed for it. User namespaces are not offered.
  const { stdout: runcFeatures } = await run('runc', ['features']);
  const runcHasRro = (JSON.parse(runcFeatures) as { mountOptions?: string[] }).mountOptions?.includes('rro') ?? false;
  assert.deepEqual(byName.get('runc'), { recursive_read_only_mounts: runcHasRro, user_namespaces: false });
  assert.deepEqual(byName.get(''), byName.get('runc'), 'the default handler is runc');
  assert.deepEqual(byName.get('crun'), { recursive_read_only_mounts: false, user_namespaces: false });
  assert.ok(r.features, 'runtime-wide features are present');
  const info = JSON.parse(r.info['runtimeHandlers']!) as { name: string; runtimePath: string; notes: string[] }[];
  assert.match(info.find((h) => h.name === 'crun')!.runtimePath, /\/crun$/);
  assert.ok(info.find((h) => h.name === 'crun')!.notes.some((n) => /features/.test(n)), 'the verbose info says why crun claims nothing');
});

test('an unknown runtime_handler is INVALID_ARGUMENT naming it, and makes nothing', async () => {
  const config = node.podConfig(`hbad${node.tag}`);
  await assert.rejects(call(rt(), rt().RunPodSandbox, { config, runtime_handler: 'kata' }), isCode(grpc.status.INVALID_ARGUMENT, /runtime_handler: "kata"/));
  const pods = await call(rt(), rt().ListPodSandbox, {});
  assert.ok(!pods.items.some((p) => p.metadata?.name === config.metadata!.name));
});

for (const handler of ['', 'crun']) {
  const label = handler || 'the default handler (runc)';
  test(`${label}: a pod's containers run, exec, update, stop and are removed with its runtime`, async () => {
    const podId = await runPod(handler);
    const status = await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: podId });
    assert.equal(status.status!.runtime_handler, handler);
    const id = await startIn(podId, ['/bin/sh', '-c', 'trap "exit 3" TERM; while true; do sleep 0.1; done'], 1001);
    const running = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!;
    assert.deepEqual([running.user?.linux?.uid, running.user?.linux?.gid], ['1001', '1001'], 'ContainerStatus.user');
    assert.equal(running.stop_signal, 'SIGNAL_SIGTERM');
    assert.ok((await listed(binaryOf(handler), rootOf(handler))).includes(id), `${binaryOf(handler)} lists the container in its own root`);
    const other = handler === 'crun' ? 'runc' : 'crun';
    const otherIds: string[] = await listed(binaryOf(other), rootOf(other)).catch(() => []);
    assert.ok(!otherIds.includes(id), `${other} does not know it`);

    const out = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/sh', '-c', 'echo in-$((40+2)) as $(id -u)'], timeout: 10 }, 30_000);
    assert.equal(out.stdout.toString(), 'in-42 as 1001\n');

    const { url } = await call(rt(), rt().Exec, { container_id: id, cmd: ['/bin/echo', 'streamed'], tty: false, stdin: false, stdout: true, stderr: false });
    const client = await SpdyClient.connect(url, ['v4.channel.k8s.io']);
    const error = await client.open({ streamType: 'error' });
    const stdout = await client.open({ streamType: 'stdout' });
    const [text, exitStatus] = await Promise.all([collect(stdout), collect(error)]);
    assert.equal(text.toString(), 'streamed\n');
    assert.equal(JSON.parse(exitStatus.toString()).status, 'Success');
    client.close();

    await call(rt(), rt().UpdateContainerResources, { container_id: id, linux: { cpu_shares: '256' } }, 30_000);

    await call(rt(), rt().StopContainer, { container_id: id, timeout: 10 }, 60_000);
    const stopped = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!;
    assert.equal(stopped.state, 'CONTAINER_EXITED');
    assert.equal(stopped.exit_code, 3, 'the stop signal reached the process through the handler');
    await removeContainerReleased(node.daemon, id);
    assert.ok(!(await listed(binaryOf(handler), rootOf(handler))).includes(id), 'removed from the runtime too');
    await removePod(podId);
  });
}

test('crun: a pod with a shared PID namespace runs its infra container with crun, and containers join it', async () => {
  const podId = await runPod('crun', 'POD');
  const id = await startIn(podId, ['/bin/sleep', '1000']);
  const inCrun = await listed('crun', rootOf('crun'));
  assert.ok(inCrun.includes(podId), 'the infra container runs under crun');
  assert.ok(inCrun.includes(id));
  const ps = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/ps', '-o', 'pid,args'], timeout: 10 }, 30_000);
  assert.match(ps.stdout.toString(), /sleep infinity/, 'the container sees the pause process: one PID namespace');
  await removePod(podId);
  await eventually(async () => assert.ok(!(await listed('crun', rootOf('crun'))).includes(podId)));
});

test('crun containers survive a SIGKILL of the daemon and are stopped and removed by the next one', async () => {
  const podId = await runPod('crun');
  const id = await startIn(podId, ['/bin/sleep', '1000']);
  await node.daemon.stop('SIGKILL');
  await node.restartDaemon();
  const st = (await call(rt(), rt().ContainerStatus, { container_id: id })).status!;
  assert.equal(st.state, 'CONTAINER_RUNNING', 'recovered as running');
  const out = await call(rt(), rt().ExecSync, { container_id: id, cmd: ['/bin/echo', 'still here'], timeout: 10 }, 30_000);
  assert.equal(out.stdout.toString(), 'still here\n');
  await call(rt(), rt().StopContainer, { container_id: id, timeout: 0 }, 60_000);
  await removeContainerReleased(node.daemon, id);
  await removePod(podId);
  assert.equal(existsSync(join(rootOf('crun'), id)), false, 'crun keeps no state for it');
});
