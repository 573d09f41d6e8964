// The container RPCs over the real daemon socket, with real runc, conmon, CNI plugins and an
// image pulled from a loopback registry: what `crictl create / start / ps / inspect / logs /
// exec -s / stop / rm / update` exercise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import { eventually, removeContainerReleased } from '../helpers/eventually.js';

const run = promisify(execFile);
let node: TestNode;
let image: string;
let logDir: string;
let podId: string;

const rt = () => node.daemon.clients.runtime;

before(async () => {
  node = await startTestNode();
  image = node.image;
  const pod = `ctrpod${node.tag}`;
  logDir = node.podConfig(pod).log_directory!;
  podId = await node.runPod(pod);
});

after(async () => {
  await node?.cleanup();
});

let counter = 0;
function config(command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig {
  const name = `c${counter++}`;
  return { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}/0.log`, labels: { test: 'ctr', name }, ...extra };
}

async function create(cfg: ContainerConfig): Promise<string> {
  const { container_id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config: cfg, sandbox_config: null }, 60_000);
  return container_id;
}
const start = (id: string) => call(rt(), rt().StartContainer, { container_id: id }, 30_000);
const stop = (id: string, timeout = 0) => call(rt(), rt().StopContainer, { container_id: id, timeout }, 60_000);
// RemoveContainer answers before the release; these tests look at the node after it.
const remove = (id: string) => removeContainerReleased(node.daemon, id);
const status = async (id: string, verbose = false) => call(rt(), rt().ContainerStatus, { container_id: id, verbose });
const exec = (id: string, cmd: string[], timeout = 10) => call(rt(), rt().ExecSync, { container_id: id, cmd, timeout }, 30_000);

async function waitExited(id: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = (await status(id)).status!;
    if (s.state === 'CONTAINER_EXITED') return s;
    if (Date.now() > deadline) throw new Error(`container ${id} did not exit: ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

test('an image a container uses cannot be removed; the error names the container', async () => {
  const id = await create(config(['sleep', '1000']));
  try {
    const img = node.daemon.clients.image;
    await assert.rejects(
      call(img, img.RemoveImage, { image: { image } }),
      (err: grpc.ServiceError) => err.code === grpc.status.FAILED_PRECONDITION && err.details.includes(id),
    );
    assert.ok((await call(img, img.ImageStatus, { image: { image } })).image, 'the image is still there');
  } finally {
    await remove(id);
  }
});

test('ImageFsInfo.container_filesystems: the writable layers grow with what containers write and shrink when they go', async () => {
  const img = node.daemon.clients.image;
  const containerFs = async () => {
    const fs = (await call(img, img.ImageFsInfo, {})).container_filesystems;
    assert.equal(fs.length, 1);
    assert.equal(fs[0]!.fs_id?.mountpoint, join(node.daemon.root, 'containers'));
    return Number(fs[0]!.used_bytes?.value ?? NaN);
  };
  const before = await containerFs();
  const MiB = 1024 * 1024;
  const id = await create(config(['/bin/sh', '-c', 'dd if=/dev/urandom of=/grown bs=1048576 count=4 2>/dev/null; sleep 1000']));
  try {
    await start(id);
    // Cached for 5 s, so a later answer sees the file.
    await eventually(async () => assert.ok((await containerFs()) >= before + 4 * MiB, 'the 4 MiB file is counted'), 20_000);
  } finally {
    await stop(id);
    await remove(id);
  }
  await eventually(async () => assert.ok((await containerFs()) < before + MiB, 'its writable layer is no longer counted'), 20_000);
});

test('lifecycle: create, start, list, inspect, exec, logs, stop, remove', async () => {
  const cfg = config(['/bin/sh', '-c', 'trap "echo bye; exit 0" TERM; echo hello; printf partial; echo; printf "no newline"; while true; do sleep 0.1; done']);
  // kubelet's retries: identical creates sent while the first is still creating share its id.
  const ids = await Promise.all(Array.from({ length: 6 }, () => create(cfg)));
  const id = ids[0]!;
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.deepEqual(ids, Array(6).fill(id), 'concurrent identical creates return one id');
  assert.equal(await create(cfg), id, 'a retried create returns the same id');
  const clash = await create({ ...cfg, command: ['/bin/true'] }).then(() => null, (e: grpc.ServiceError) => e);
  assert.equal(clash?.code, grpc.status.ALREADY_EXISTS);
  assert.match(clash!.details, /whose request differs at config\.command\[0\]/);

  let s = (await status(id)).status!;
  assert.equal(s.state, 'CONTAINER_CREATED');
  assert.equal(s.log_path, join(logDir, cfg.log_path!));
  await start(id);
  s = (await status(id.slice(0, 12))).status!;
  assert.equal(s.state, 'CONTAINER_RUNNING');
  assert.ok(BigInt(s.started_at!) >= BigInt(s.created_at!));
  assert.equal(s.image?.image, image);
  assert.match(s.image_ref!, /@sha256:/);

  const listed = await call(rt(), rt().ListContainers, { filter: { pod_sandbox_id: podId, state: { state: 'CONTAINER_RUNNING' }, label_selector: { name: cfg.labels!['name']! } } });
  assert.deepEqual(listed.containers.map((c) => c.id), [id]);
  assert.equal((await call(rt(), rt().ListContainers, { filter: { id: id.slice(0, 10), state: { state: 'CONTAINER_EXITED' } } })).containers.length, 0);

  const inspect = await status(id, true);
  const info = JSON.parse(inspect.info['info']!);
  assert.equal(info.sandboxID, podId);
  assert.ok(info.pid > 0);
  assert.equal(info.privileged, false);
  assert.equal(info.runtimeSpec.process.args[0], '/bin/sh');

  const out = await exec(id, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(Buffer.from(out.stdout).toString(), 'out\n');
  assert.equal(Buffer.from(out.stderr).toString(), 'err\n');
  assert.equal(out.exit_code, 7);

  await stop(id, 10);
  s = (await status(id)).status!;
  assert.equal(s.state, 'CONTAINER_EXITED');
  assert.equal(s.exit_code, 0);
  assert.equal(s.reason, 'Completed');
  await stop(id, 10); // idempotent

  const log = readFileSync(s.log_path!, 'utf8').trim().split('\n');
  const line = /^\S+ (stdout|stderr) ([FP]) (.*)$/;
  const parsed = log.map((l) => line.exec(l)!.slice(1));
  assert.deepEqual(parsed[0], ['stdout', 'F', 'hello']);
  assert.ok(parsed.some(([, tagged, text]) => tagged === 'P' && text === 'no newline') || parsed.some(([, , text]) => text === 'partial'), log.join('\n'));
  assert.deepEqual(parsed.at(-1), ['stdout', 'F', 'bye']);
  assert.match(log[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+/);

  await remove(id);
  await remove(id); // idempotent
  await assert.rejects(status(id), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  assert.equal(existsSync(join(node.daemon.root, 'containers', id)), false, 'the container directory is gone');
});

test('every value of every verbose info map is JSON, so any crictl version prints it (inspect, inspectp, inspecti, info)', async () => {
  const id = await create(config(['/bin/sleep', '60']));
  try {
    const img = node.daemon.clients.image;
    const maps: [string, Record<string, string>][] = [
      ['Status', (await call(rt(), rt().Status, { verbose: true })).info],
      ['PodSandboxStatus', (await call(rt(), rt().PodSandboxStatus, { pod_sandbox_id: podId, verbose: true })).info],
      ['ContainerStatus', (await status(id, true)).info],
      ['ImageStatus', (await call(img, img.ImageStatus, { image: { image }, verbose: true })).info],
    ];
    for (const [rpc, info] of maps) {
      assert.ok(Object.keys(info).length > 0, `${rpc} says something when verbose`);
      for (const [key, value] of Object.entries(info)) assert.doesNotThrow(() => JSON.parse(value), `${rpc} info.${key} is JSON`);
    }
  } finally {
    await remove(id);
  }
});

test('a command that exits 3 is EXITED with exit code 3 and reason Error', async () => {
  const id = await create(config(['/bin/sh', '-c', 'echo dying > /dev/termination-log; exit 3']));
  await start(id);
  const s = await waitExited(id);
  assert.equal(s.exit_code, 3);
  assert.equal(s.reason, 'Error');
  assert.equal(s.message, 'dying\n');
  assert.ok(BigInt(s.finished_at!) >= BigInt(s.started_at!) && BigInt(s.started_at!) > 0n);
  // An illegal command is answered, not ignored: an exited container cannot be started again.
  await assert.rejects(start(id), (err: grpc.ServiceError) =>
    err.code === grpc.status.FAILED_PRECONDITION && /exited/.test(err.details));
  await remove(id);
});

test('stop of a process that ignores SIGTERM falls back to SIGKILL after the timeout', async () => {
  const id = await create(config(['/bin/sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']));
  await start(id);
  const began = Date.now();
  await stop(id, 2);
  const took = Date.now() - began;
  assert.ok(took >= 1900 && took < 15_000, `stop took ${took} ms`);
  const s = (await status(id)).status!;
  assert.equal(s.exit_code, 137);
  assert.equal(s.reason, 'Error');
  await remove(id);
});

test('ExecSync honours its timeout: DeadlineExceeded, and the process is killed and reaped', async () => {
  const id = await create(config(['/bin/sleep', '600']));
  await start(id);
  const marker = String(700 + Math.floor(Math.random() * 200));
  const began = Date.now();
  const err = await exec(id, ['/bin/sleep', marker], 1).then(() => null, (e: grpc.ServiceError) => e);
  assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - began < 10_000);
  const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `/bin/sleep\0${marker}\0`;
    } catch {
      return false;
    }
  });
  assert.deepEqual(left, [], 'no exec process (or zombie) is left');
  await remove(id); // removes a running container: stops it first
  await assert.rejects(status(id), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
});

test('a container allocating past its memory limit is reported OOMKilled', async () => {
  const id = await create(config(['/bin/sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived'], {
    linux: { resources: { memory_limit_in_bytes: String(16 * 1024 * 1024) } },
  }));
  await start(id);
  const s = await waitExited(id, 30_000);
  assert.equal(s.reason, 'OOMKilled', JSON.stringify(s));
  await remove(id);
});

test('UpdateContainerResources is recorded as requested, applied to the live cgroup, then recorded as applied', async () => {
  const id = await create(config(['/bin/sleep', '600'], { linux: { resources: { memory_limit_in_bytes: String(64 * 1024 * 1024) } } }));
  await start(id);
  await call(rt(), rt().UpdateContainerResources, { container_id: id, linux: { memory_limit_in_bytes: String(96 * 1024 * 1024), cpu_shares: '512' } });
  const cgroup = join('/sys/fs/cgroup/memory', node.cgroupParent, `crisp-${id}`);
  assert.equal(readFileSync(join(cgroup, 'memory.limit_in_bytes'), 'utf8').trim(), String(96 * 1024 * 1024));
  const s = (await status(id)).status!;
  assert.equal(s.resources?.linux?.memory_limit_in_bytes, String(96 * 1024 * 1024));
  const { stdout } = await run(process.execPath, [join(process.cwd(), 'bin', 'crisp.js'), 'events', '--root', node.daemon.root, '--stream', id, '--json']);
  const types = stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: { type: string } }).event.type);
  const asked = types.indexOf('ContainerResourcesUpdateRequested');
  assert.ok(asked >= 0 && types.indexOf('ContainerResourcesUpdated') > asked, `requested, then applied: ${types.join(' ')}`);
  // A limit the kernel cannot enforce now (below what the container uses, with nothing to reclaim)
  // is refused by the runtime: the answer says why, and the limits applied before stay.
  const hog = await create(config(['/bin/sh', '-c', 'head -c 50331648 /dev/zero | tr "\\000" a | sort | sleep 600']));
  await start(hog);
  const hogCgroup = join('/sys/fs/cgroup/memory', node.cgroupParent, `crisp-${hog}`);
  const deadline = Date.now() + 20_000;
  while (Number(readFileSync(join(hogCgroup, 'memory.usage_in_bytes'), 'utf8')) < 40 * 1024 * 1024 && Date.now() < deadline) await sleep(100);
  const before = readFileSync(join(hogCgroup, 'memory.limit_in_bytes'), 'utf8').trim();
  const refused = await call(rt(), rt().UpdateContainerResources, { container_id: hog, linux: { memory_limit_in_bytes: String(16 * 1024 * 1024) } }, 30_000)
    .then(() => undefined, (e: grpc.ServiceError) => e);
  if (refused) {
    assert.equal(refused.code, grpc.status.FAILED_PRECONDITION);
    assert.match(refused.details, /updating the resources of container .* failed: .*memory limit/);
    assert.equal(readFileSync(join(hogCgroup, 'memory.limit_in_bytes'), 'utf8').trim(), before);
  } else {
    // The kernel may OOM-kill rather than refuse: then the limit took, and the container is gone.
    assert.equal(readFileSync(join(hogCgroup, "memory.limit_in_bytes"), "utf8").trim(), String(16 * 1024 * 1024));
  }
  await remove(hog);
  await remove(id);
});

test('ReopenContainerLog makes conmon write a new file; a stopped container refuses', async () => {
  const id = await create(config(['/bin/sh', '-c', 'while true; do echo tick; sleep 0.2; done']));
  await start(id);
  const logPath = (await status(id)).status!.log_path!;
  await sleep(300);
  renameSync(logPath, `${logPath}.1`);
  await call(rt(), rt().ReopenContainerLog, { container_id: id });
  assert.ok(existsSync(logPath));
  await sleep(500);
  assert.match(readFileSync(logPath, 'utf8'), /stdout F tick/);
  await stop(id);
  await assert.rejects(call(rt(), rt().ReopenContainerLog, { container_id: id }), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION);
  await remove(id);
});

test('a failure at create names the step and leaves no mount, directory or runtime state', async () => {
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(node.daemon.root)).length;
  // A working dir that is a file: runc refuses it, after the rootfs and spec are made.
  const err = await create(config(['/bin/true'], { working_dir: '/bin/busybox' })).then(() => null, (e: grpc.ServiceError) => e);
  assert.ok(err, 'create failed');
  assert.match(err.details, /runtime-create/);
  const err2 = await create(config(['/bin/true'], {
    linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: '/nonexistent/profile.json' } } },
  })).then(() => null, (e: grpc.ServiceError) => e);
  assert.ok(err2, 'create failed');
  assert.match(err2.details, /spec-write/);
  const mountsAfter = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(node.daemon.root)).length;
  assert.equal(mountsAfter, mountsBefore);
  const left = existsSync(join(node.daemon.root, 'containers')) ? readdirSync(join(node.daemon.root, 'containers')) : [];
  const live = (await call(rt(), rt().ListContainers, { filter: null })).containers.map((c) => c.id);
  assert.deepEqual(left.filter((d) => !live.includes(d)), []);
  const runcState = existsSync(join(node.daemon.runroot, 'runc')) ? readdirSync(join(node.daemon.runroot, 'runc')) : [];
  assert.deepEqual(runcState.filter((d) => !live.includes(d)), []);
});

test('a daemon restart keeps a running container running, and its later exit is seen', async () => {
  const id = await create(config(['/bin/sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 4']));
  await start(id);
  const exitedWhileDown = await create(config(['/bin/sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 5']));
  await start(exitedWhileDown);
  await node.daemon.stop('SIGTERM');
  node.daemon.clients.close();
  await run('runc', ['--root', join(node.daemon.runroot, 'runc'), 'exec', exitedWhileDown, 'touch', '/tmp/go']);
  await sleep(500);
  await node.restartDaemon();
  assert.equal((await status(id)).status!.state, 'CONTAINER_RUNNING');
  const observed = await waitExited(exitedWhileDown);
  assert.equal(observed.exit_code, 5);
  await exec(id, ['/bin/touch', '/tmp/go']);
  const s = await waitExited(id);
  assert.equal(s.exit_code, 4);
  const { stdout } = await run(process.execPath, [join(process.cwd(), 'bin', 'crisp.js'), 'events', '--root', node.daemon.root, '--kind', 'container', '--json']);
  const types = stdout.trim().split('\n').map((l) => JSON.parse(l) as { streamId?: string; stream_id?: string; type: string; event?: { type: string } });
  const typeOf = (e: (typeof types)[number]) => e.type ?? e.event?.type;
  assert.ok(types.some((e) => typeOf(e) === 'ContainerExitObserved'), 'the exit while down is an observation');
  await remove(id);
  await remove(exitedWhileDown);
});

test('RemoveContainer answers once the removal is recorded: gone for every read, its name free, released right after', async () => {
  const cfg = config(['sleep', '600']);
  const id = await create(cfg);
  await start(id);
  await stop(id);
  await call(rt(), rt().RemoveContainer, { container_id: id }, 60_000);
  await assert.rejects(status(id), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  const listed = (await call(rt(), rt().ListContainers, { filter: null })).containers.map((c) => c.id);
  assert.ok(!listed.includes(id), 'a removed container is not listed while it is released');
  const again = await create(cfg);
  assert.notEqual(again, id, 'the same name and attempt make a new container at once');
  await call(rt(), rt().RemoveContainer, { container_id: id }, 60_000); // again: still fine
  await eventually(() => {
    assert.equal(existsSync(join(node.daemon.root, 'containers', id)), false, 'the rootfs and directory are released');
    assert.equal(existsSync(join(node.daemon.runroot, 'runc', id)), false, 'runc no longer knows it');
  });
  await remove(again);
});
