// The infra (pause) container of pods with a pod-wide PID namespace, against the real daemon
// over its socket, real runc, conmon and CNI plugins, and a pause-like image (busybox `sleep`
// alone in an image that, like the real pause image, has no /proc, /dev or /sys directories)
// served by a loopback registry and pulled on demand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { pauseLikeImage, pushImage } from '../helpers/oci-images.js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import { eventually } from '../helpers/eventually.js';

const run = promisify(execFile);
const PAUSE_ARGS = ['/bin/sleep', 'infinity'];
let node: TestNode;
let pauseImage: string;
let brokenPauseImage: string;
let busybox: string;
const podIds = new Set<string>();

const rt = () => node.daemon.clients.runtime;

const pauseLike = pauseLikeImage;

before(async () => {
  node = await startTestNode([], {
    async prepare(registry) {
      await pushImage(registry.url, 'crisp-test/pause', '3.9', pauseLike(PAUSE_ARGS));
      await pushImage(registry.url, 'crisp-test/pause-broken', '1', pauseLike(['/no/such/pause']));
      pauseImage = `${registry.host}/crisp-test/pause:3.9`;
      brokenPauseImage = `${registry.host}/crisp-test/pause-broken:1`;
      return ['--pause-image', pauseImage];
    },
  });
  busybox = node.image;
});

after(async () => {
  await node?.cleanup();
});

function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(path));
}

/** crisp's default pod cgroup (no cgroup_parent given) in every hierarchy that has it. */
function podCgroupDirs(id: string): string[] {
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h));
  return roots.map((r) => join(r, 'crisp', id)).filter((d) => existsSync(d));
}

function alive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); only a process that runs counts.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitDead(pid: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is still alive`);
    await sleep(25);
  }
}

/** pids of conmon processes monitoring `id`. */
function conmonsFor(id: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv[0]?.endsWith('conmon') && argv.includes(id);
    } catch {
      return false;
    }
  }).map(Number);
}

async function runcIds(): Promise<string[]> {
  const { stdout } = await run('runc', ['--root', join(node.daemon.runroot, 'runc'), 'list', '-q']);
  return stdout.split('\n').filter(Boolean);
}

const nsId = (path: string) => {
  const s = statSync(path);
  return `${s.dev}:${s.ino}`;
};

let podCounter = 0;
function podConfig(extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  const name = `infra${node.tag}-${++podCounter}`;
  return {
    metadata: { name, namespace: 'crisp-test', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: join(node.daemon.dir, 'logs', name),
    linux: { security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'POD' } } },
    ...extra,
  };
}

async function runPod(config: PodSandboxConfig): Promise<string> {
  const id = await node.runPod(config);
  podIds.add(id);
  return id;
}

async function podStatus(id: string) {
  const res = await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: id, verbose: true });
  return { status: res.status!, info: JSON.parse(res.info['info']!) as Record<string, any> };
}

let ctrCounter = 0;
async function runContainer(podId: string, pod: PodSandboxConfig, command: string[]): Promise<string> {
  const name = `c${++ctrCounter}`;
  const config: ContainerConfig = {
    metadata: { name, attempt: 0 },
    image: { image: busybox },
    command,
    log_path: `${name}/0.log`,
    // What kubelet sends for a pod with shareProcessNamespace.
    linux: { security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'POD' } } },
  };
  const { container_id: id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: pod }, 60_000);
  await call(rt(), rt().StartContainer, { container_id: id }, 30_000);
  return id;
}

async function execText(id: string, cmd: string[]): Promise<string> {
  const out = await call(rt(), rt().ExecSync, { container_id: id, cmd, timeout: 10 }, 30_000);
  assert.equal(out.exit_code, 0, Buffer.from(out.stderr).toString());
  return Buffer.from(out.stdout).toString();
}

/** Asserts that nothing of the pod is left on the node. */
async function assertGone(id: string, infraPid: number): Promise<void> {
  await eventually(() => gone(id, infraPid));
}

async function gone(id: string, infraPid: number): Promise<void> {
  assert.equal(alive(infraPid), false, 'the infra process is gone');
  assert.ok(!(await runcIds()).includes(id), 'runc no longer knows the infra container');
  assert.deepEqual(conmonsFor(id), [], 'no conmon monitors the infra container');
  assert.deepEqual(mountsUnder(join(node.daemon.runroot, 'sandboxes', id)), [], 'no mount of the pod is left');
  assert.equal(existsSync(join(node.daemon.runroot, 'sandboxes', id)), false, 'the sandbox directory is gone');
  assert.equal(existsSync(join(node.daemon.runroot, 'containers', id)), false, "conmon's records of the infra are gone");
  assert.equal(existsSync(join(node.daemon.runroot, 'exits', id)), false, 'the exit file is gone');
  assert.deepEqual(podCgroupDirs(id), [], "the pod's cgroup is gone");
}

test('a pod with a pod-wide PID namespace runs pause (pulled on demand) and its containers share its PID namespace', async () => {
  const images = () => call(node.daemon.clients.image, node.daemon.clients.image.ListImages, {});
  assert.ok(!(await images()).images.some((i) => i.repo_tags.includes(pauseImage)), 'the pause image is not present yet');

  const config = podConfig();
  const id = await runPod(config);
  let { status, info } = await podStatus(id);
  assert.equal(status.state, 'SANDBOX_READY');
  assert.equal(status.linux?.namespaces?.options?.pid, 'POD');
  const pid = info['pid'] as number;
  assert.ok(pid > 0, `verbose info has the infra pid: ${JSON.stringify(info)}`);
  assert.equal(info['infraContainerId'], id);
  assert.ok(alive(pid), 'the infra process runs');
  assert.deepEqual(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean), PAUSE_ARGS);
  assert.notEqual(readlinkSync(`/proc/${pid}/ns/pid`), readlinkSync('/proc/self/ns/pid'), 'pause has a PID namespace of its own');
  assert.equal(nsId(`/proc/${pid}/ns/net`), nsId(info['namespaces'].net), "pause is in the pod's pinned network namespace");
  assert.equal(nsId(`/proc/${pid}/ns/ipc`), nsId(info['namespaces'].ipc), "pause is in the pod's pinned IPC namespace");
  assert.equal(nsId(`/proc/${pid}/ns/uts`), nsId(info['namespaces'].uts), "pause is in the pod's pinned UTS namespace");
  assert.ok((await runcIds()).includes(id));
  assert.equal(conmonsFor(id).length, 1, 'one conmon monitors the infra container');
  assert.ok((await images()).images.some((i) => i.repo_tags.includes(pauseImage)), 'the pause image was pulled and recorded');
  assert.equal(await runPod(config), id, 'a retried RunPodSandbox returns the same pod');

  const a = await runContainer(id, config, ['/bin/sleep', '600']);
  const b = await runContainer(id, config, ['/bin/sleep', '601']);
  const psA = await execText(a, ['ps', '-o', 'pid,args']);
  assert.match(psA, /^\s*1\s+\/bin\/sleep infinity\s*$/m, `pause is pid 1 in the container:\n${psA}`);
  assert.match(psA, /sleep 601/, `container a sees container b's process:\n${psA}`);
  assert.match(await execText(b, ['ps', '-o', 'pid,args']), /sleep 600/, "container b sees container a's process");
  assert.equal(readlinkSync(`/proc/${pid}/ns/pid`), readlinkSync(`/proc/${(await containerPid(a))}/ns/pid`));

  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000);
  await waitDead(pid);
  ({ status, info } = await podStatus(id));
  assert.equal(status.state, 'SANDBOX_NOTREADY');
  assert.equal(info['pid'], 0, 'a stopped pod has no infra pid');
  for (const c of [a, b]) {
    const s = await call(rt(), rt().ContainerStatus, { container_id: c });
    assert.equal(s.status?.state, 'CONTAINER_EXITED');
  }
  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000); // idempotent

  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000);
  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000); // idempotent
  await assert.rejects(podStatus(id), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  await assertGone(id, pid);
  podIds.delete(id);
});

async function containerPid(id: string): Promise<number> {
  const res = await call(rt(), rt().ContainerStatus, { container_id: id, verbose: true });
  return JSON.parse(res.info['info']!).pid as number;
}

test('a pod without namespace_options (crictl and critest defaults: pid POD) gets its infra container too', async () => {
  const config = podConfig();
  delete config.linux;
  const id = await runPod(config);
  const { status, info } = await podStatus(id);
  assert.equal(status.state, 'SANDBOX_READY');
  assert.ok(alive(info['pid']), 'the infra process runs');
  // The pause image is in use while the pod's infra container holds its layers.
  const img = node.daemon.clients.image;
  await assert.rejects(call(img, img.RemoveImage, { image: { image: pauseImage } }), (err: grpc.ServiceError) =>
    err.code === grpc.status.FAILED_PRECONDITION && err.details.includes(id));
  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000);
  await assertGone(id, info['pid']);
  podIds.delete(id);
});

test('a daemon restart keeps the pod ready with the same infra, and new containers still join it', async () => {
  const config = podConfig();
  const id = await runPod(config);
  const before = (await podStatus(id)).info['pid'] as number;
  await node.restartDaemon();

  const { status, info } = await podStatus(id);
  assert.equal(status.state, 'SANDBOX_READY', 'the pod is still ready after the restart');
  assert.equal(info['pid'], before, 'the same infra process holds the PID namespace');
  assert.ok(alive(before));
  const c = await runContainer(id, config, ['/bin/sleep', '602']);
  assert.match(await execText(c, ['ps', '-o', 'pid,args']), /^\s*1\s+\/bin\/sleep infinity\s*$/m);

  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000);
  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000);
  await assertGone(id, before);
  podIds.delete(id);
});

test('an infra container that dies makes its pod not ready; stop and remove still clean up', async () => {
  const id = await runPod(podConfig());
  const pid = (await podStatus(id)).info['pid'] as number;
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  let status = (await podStatus(id)).status;
  while (status.state !== 'SANDBOX_NOTREADY' && Date.now() < deadline) {
    await sleep(50);
    status = (await podStatus(id)).status;
  }
  assert.equal(status.state, 'SANDBOX_NOTREADY');
  await call(rt(), rt().StopPodSandbox, { pod_sandbox_id: id }, 60_000);
  await call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: id }, 60_000);
  await assertGone(id, pid);
  podIds.delete(id);
});

test('an infra container that cannot start fails RunPodSandbox naming the step, and everything is released', async () => {
  await node.restartDaemon(['--pause-image', brokenPauseImage]);
  const config = podConfig();
  const err = await call(rt(), rt().RunPodSandbox, { config }, 120_000).then(() => null, (e: grpc.ServiceError) => e);
  assert.ok(err, 'RunPodSandbox failed');
  assert.match(err.details, /infra-start/, err.details);
  assert.match(err.details, /released/, err.details);
  const listed = await call(rt(), rt().ListPodSandbox, { filter: { label_selector: {} } });
  assert.deepEqual(listed.items.filter((p) => p.metadata?.name === config.metadata!.name), []);
  const left = readdirSync(join(node.daemon.runroot, 'sandboxes')).filter((d) => !podIds.has(d));
  assert.deepEqual(left, [], 'no sandbox directory is left');
  assert.deepEqual(mountsUnder(join(node.daemon.runroot, 'sandboxes')), [], 'no infra rootfs, shm or namespace mount is left');
  const running = (await runcIds()).filter((r) => !podIds.has(r));
  assert.deepEqual(running, [], 'runc holds no half-made infra container');
});
