// One lifecycle under fault injection, for crash-points.test.ts and the soak: each CRI call is
// made against the current daemon; when the daemon dies under it (an armed crash point, or a
// SIGKILL at a random moment), a fresh daemon is started on the same dirs, the answers are
// checked for consistency (an entity is fully there or absent), and the same call is retried.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestDaemon } from '../helpers/daemon.js';
import type { TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { startDaemon } from '../helpers/daemon.js';
import { CRASH_ENV } from '../../src/crash-points.js';
import { buildImage, buildLayer, pushImage } from '../helpers/oci-images.js';
import { BUSYBOX_BINARY } from '../helpers/busybox-rootfs.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import { eventually } from '../helpers/eventually.js';

const run = promisify(execFile);

export interface CrashEnv {
  node: TestNode;
  /** The pod-wide PID namespace's pause image (pulled by the infra step itself). */
  pauseImage: string;
  /** Starts a daemon on the node's dirs, armed at `crashAt` if given; it becomes current(). */
  start(crashAt?: string): Promise<TestDaemon>;
  current(): TestDaemon | undefined;
}

export interface Lifecycle {
  flow: 'pod' | 'infra-pod' | 'pull';
  name: string;
  crashAt?: string;
  /** SIGKILL the daemon after this many milliseconds (the soak). */
  killAfterMs?: number;
}

const dead = (d: TestDaemon) => d.process.exitCode !== null || d.process.signalCode !== null;

async function diedSoon(d: TestDaemon, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!dead(d) && Date.now() < deadline) await sleep(20);
  return dead(d);
}

export async function runLifecycle(env: CrashEnv, lc: Lifecycle): Promise<{ crashed: boolean; kills: number }> {
  let d = await env.start(lc.crashAt);
  let crashed = false;
  let kills = 0;
  const timer = lc.killAfterMs !== undefined ? setTimeout(() => d.process.kill('SIGKILL'), lc.killAfterMs) : undefined;
  const rt = () => d.clients.runtime;
  const img = () => d.clients.image;

  /** Runs one call; if the daemon died under it, restarts, checks, and retries it. */
  async function step<T>(what: string, fn: () => Promise<T>, afterRestart?: () => Promise<void>): Promise<T> {
    for (;;) {
      try {
        if (dead(d)) throw new Error('daemon is gone');
        return await fn();
      } catch (err) {
        if (!(await diedSoon(d, 3000))) throw new Error(`${lc.name} ${what}: failed with the daemon alive: ${(err as Error).message}\n${d.stderr().slice(-3000)}`);
        assert.equal(d.process.signalCode, 'SIGKILL', `${lc.name} ${what}: the daemon died of ${d.process.signalCode ?? d.process.exitCode}, not a crash point`);
        crashed = true;
        kills++;
        d = await env.start();
        await afterRestart?.();
      }
    }
  }

  const podConfig = (): PodSandboxConfig => {
    const base = env.node.podConfig(lc.name);
    if (lc.flow !== 'infra-pod') return base;
    return { ...base, linux: { ...base.linux!, security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } } };
  };

  try {
    if (lc.flow === 'pull') {
      const image = env.node.image;
      for (const name of [image, env.pauseImage]) await step('remove image', () => call(img(), img().RemoveImage, { image: { image: name } }, 30_000));
      await step('pull', () => call(img(), img().PullImage, { image: { image } }, 60_000), async () => {
        // Fully there or absent: a listed image has its layers on disk and can run.
        const st = await call(img(), img().ImageStatus, { image: { image } });
        if (st.image) assert.ok(st.image.repo_tags.includes(image), `${lc.crashAt}: a half-recorded image ${JSON.stringify(st.image)}`);
      });
      const st = await step('image status', () => call(img(), img().ImageStatus, { image: { image } }));
      assert.ok(st.image, `${lc.name}: the image is missing after its pull succeeded`);
      await step('remove image', () => call(img(), img().RemoveImage, { image: { image } }, 30_000));
    } else {
      const config = podConfig();
      let seenPod: string | undefined;
      const podId = await step('run pod', async () => (await call(rt(), rt().RunPodSandbox, { config }, 60_000)).pod_sandbox_id, async () => {
        const pods = (await call(rt(), rt().ListPodSandbox, {})).items.filter((p) => p.metadata?.name === lc.name);
        assert.ok(pods.length <= 1, `${lc.crashAt}: ${pods.length} pods named ${lc.name}`);
        if (pods[0]) assert.equal(pods[0].state, 'SANDBOX_READY', `${lc.crashAt}: pod listed but ${pods[0].state}`);
        seenPod = pods[0]?.id;
      });
      if (seenPod) assert.equal(podId, seenPod, `${lc.crashAt}: the retried RunPodSandbox made another pod`);
      const ctrConfig = { metadata: { name: 'c', attempt: 0 }, image: { image: env.node.image }, command: ['sleep', '3600'], log_path: 'c/0.log' };
      let seenCtr: string | undefined;
      const ctrId = await step('create container', async () => (await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config: ctrConfig, sandbox_config: config }, 60_000)).container_id, async () => {
        const ctrs = (await call(rt(), rt().ListContainers, { filter: { pod_sandbox_id: podId } })).containers;
        assert.ok(ctrs.length <= 1, `${lc.crashAt}: ${ctrs.length} containers`);
        if (ctrs[0]) assert.equal(ctrs[0].state, 'CONTAINER_CREATED', `${lc.crashAt}: container listed but ${ctrs[0].state}`);
        seenCtr = ctrs[0]?.id;
      });
      if (seenCtr) assert.equal(ctrId, seenCtr, `${lc.crashAt}: the retried CreateContainer made another container`);
      await step('start container', () => call(rt(), rt().StartContainer, { container_id: ctrId }, 30_000));
      // Recorded as requested, applied by the planner: a crash on either side of the runtime's
      // update is finished at start-up, and the retried call applies it again.
      await step('update resources', () => call(rt(), rt().UpdateContainerResources, { container_id: ctrId, linux: { cpu_shares: '512' } }, 30_000));
      // A container that ran across a restart is still running, and its exit is still seen.
      await step('monitored', async () => {
        const st = (await call(rt(), rt().ContainerStatus, { container_id: ctrId })).status!;
        if (!crashed) return;
        if (st.state !== 'CONTAINER_RUNNING') return;
        const { stdout } = await run('runc', ['--root', join(env.node.daemon.runroot, 'runc'), 'state', ctrId]);
        const pid = (JSON.parse(stdout) as { pid: number }).pid;
        process.kill(pid, 'SIGKILL');
        const deadline = Date.now() + 15_000;
        for (;;) {
          const now = (await call(rt(), rt().ContainerStatus, { container_id: ctrId })).status!;
          if (now.state === 'CONTAINER_EXITED') {
            // A kill at a random moment can land while conmon is being launched: conmon then dies
            // with its sync pipe, the container runs on, and crisp watches the process itself.
            // Nobody can collect that exit status, and crisp must say so rather than guess.
            if (now.reason === 'Unknown') {
              assert.equal(lc.crashAt, undefined, `${lc.name}: conmon lost at a crash point, where it should survive`);
              assert.equal(now.exit_code, 255, `${lc.name}: an exit nobody could collect`);
              assert.match(now.message, /conmon was gone|nobody could collect/, `${lc.name}: the unknown exit says why`);
              return;
            }
            assert.equal(now.exit_code, 137, `${lc.crashAt ?? lc.name}: exit code of a killed container`);
            return;
          }
          assert.ok(Date.now() < deadline, `${lc.crashAt}: the exit of a container running across a restart was not seen`);
          await sleep(50);
        }
      });
      await step('stop container', () => call(rt(), rt().StopContainer, { container_id: ctrId, timeout: 0 }, 60_000));
      await step('remove container', () => call(rt(), rt().RemoveContainer, { container_id: ctrId }, 60_000));
      await step('stop pod', () => call(rt(), rt().StopPodSandbox, { pod_sandbox_id: podId }, 60_000));
      await step('remove pod', () => call(rt(), rt().RemovePodSandbox, { pod_sandbox_id: podId }, 60_000));
    }
    // A point reached after the last answer (a step finishing in the background) still fires.
    if (!crashed && lc.crashAt !== undefined && (await diedSoon(d, 1000))) {
      crashed = true;
      kills++;
      d = await env.start();
    }
    if (dead(d)) {
      kills++;
      crashed = true;
      d = await env.start();
    }
    return { crashed, kills };
  } finally {
    clearTimeout(timer);
  }
}

export function environment(node: TestNode, pauseImage: string, daemons: TestDaemon[]): CrashEnv {
  const { dir } = node.daemon;
  const dirs = { dir, root: node.daemon.root, runroot: node.daemon.runroot, socket: node.daemon.socket };
  const args = ['--registries-conf', join(dir, 'registries.conf'), '--cni-config-dir', join(dir, 'cni'), '--pause-image', pauseImage];
  let current: TestDaemon | undefined;
  return {
    node,
    pauseImage,
    current: () => current,
    async start(crashAt) {
      current?.clients.close();
      if (current && current.process.exitCode === null && current.process.signalCode === null) await current.stop('SIGKILL');
      current = await startDaemon(args, dirs, crashAt ? { env: { [CRASH_ENV]: crashAt } } : {});
      daemons.push(current);
      return current;
    },
  };
}

/** A pause stand-in: busybox's sleep alone. */
export async function pushPause(node: TestNode): Promise<string> {
  const entry = { mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 };
  const layer = buildLayer([
    { path: 'bin', type: 'dir', ...entry },
    { path: 'bin/busybox', type: 'file', ...entry, content: readFileSync(BUSYBOX_BINARY) },
    { path: 'bin/sleep', type: 'symlink', linkname: 'busybox', ...entry, mode: 0o777 },
  ]);
  await pushImage(node.registry.url, 'crisp-test/pause', '3.9', buildImage({ layers: [layer], config: { Entrypoint: ['/bin/sleep', 'infinity'], Cmd: null, User: '' } }));
  return `${node.registry.host}/crisp-test/pause:3.9`;
}

/** The leak audit: after everything was removed, no trace of it may be left on the node. */
/** What a lifecycle left, once the releases that finish after the Remove* replies are done. */
export async function assertNothingLeft(env: CrashEnv, label: string, images: 'image' | 'no-image'): Promise<void> {
  await eventually(() => nothingLeft(env, label, images));
}

async function nothingLeft(env: CrashEnv, label: string, images: 'image' | 'no-image'): Promise<void> {
  const { node } = env;
  const { dir, root, runroot } = node.daemon;
  const d = env.current()!;
  const rt = d.clients.runtime;
  const found: string[] = [];
  const pods = await call(rt, rt.ListPodSandbox, {});
  if (pods.items.length) found.push(`pods listed: ${pods.items.map((p) => `${p.metadata?.name}=${p.state}`).join(', ')}`);
  const ctrs = await call(rt, rt.ListContainers, {});
  if (ctrs.containers.length) found.push(`containers listed: ${ctrs.containers.map((c) => c.id).join(', ')}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
  if (mounts.length) found.push(`mounts: ${mounts.join(', ')}`);
  for (const sub of [join(runroot, 'sandboxes'), join(root, 'containers'), join(root, 'cni-cache', 'results')]) {
    const left = existsSync(sub) ? readdirSync(sub) : [];
    if (left.length) found.push(`${sub}: ${left.join(', ')}`);
  }
  const { stdout: runc } = await run('runc', ['--root', join(runroot, 'runc'), 'list', '-q']).catch(() => ({ stdout: '' }));
  if (runc.trim()) found.push(`runc containers: ${runc.trim()}`);
  const bridge = `crt${node.tag}`;
  const { stdout: veths } = await run('ip', ['-o', 'link', 'show', 'master', bridge]).catch(() => ({ stdout: '' }));
  if (veths.trim()) found.push(`veths on ${bridge}: ${veths.trim()}`);
  const leases = join('/var/lib/cni/networks', `test${node.tag}`);
  const ips = existsSync(leases) ? readdirSync(leases).filter((f) => /^[0-9.]+$/.test(f)) : [];
  if (ips.length) found.push(`IP leases: ${ips.join(', ')}`);
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const parent = join('/sys/fs/cgroup', h, node.cgroupParent);
    const children = existsSync(parent) ? readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
    if (children.length) found.push(`cgroups under ${parent}: ${children.map((c) => c.name).join(', ')}`);
  }
  const strays = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== d.process.pid).filter((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes(dir) && !cmd.includes('registry');
    } catch {
      return false;
    }
  });
  if (strays.length) found.push(`processes: ${strays.map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 80)).join('; ')}`);
  if (images === 'no-image') {
    const layers = existsSync(join(root, 'layers')) ? readdirSync(join(root, 'layers')).filter((f) => /^[0-9a-f]{64}$/.test(f)) : [];
    if (layers.length) found.push(`layer dirs: ${layers.length}`);
    const blobs = existsSync(join(root, 'blobs', 'sha256')) ? readdirSync(join(root, 'blobs', 'sha256')) : [];
    if (blobs.length) found.push(`blobs: ${blobs.length}`);
  }
  for (const tmp of [join(root, 'layers', 'tmp'), join(root, 'blobs', 'tmp')]) {
    if (existsSync(tmp) && statSync(tmp).isDirectory() && readdirSync(tmp).length) found.push(`partial files in ${tmp}`);
  }
  assert.deepEqual(found, [], `${label}: left behind after removing everything:\n${found.join('\n')}`);
}

