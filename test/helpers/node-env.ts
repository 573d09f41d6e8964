// A whole test node: a loopback registry holding the busybox fixture, a CNI network of the
// test's own (bridge crt<tag>, a 10.199.x.0/24 subnet), a daemon on test-only dirs, and a
// cleanup that removes whatever a failed run left (containers, mounts, bridge, cgroups).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { startRegistry, type TestRegistry } from './registry.js';
import { pushFixtures } from './oci-images.js';
import { releaseDefaultCgroupParent, startDaemon, testDirs, type DaemonOptions, type TestDaemon } from './daemon.js';
import { call } from './cri-client.js';
import { mountTmpfs, unmountAllUnder } from './mounts.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';

const run = promisify(execFile);

export interface TestNode {
  tag: string;
  /** The daemon now running (restartDaemon replaces it). */
  daemon: TestDaemon;
  registry: TestRegistry;
  /** The busybox fixture, pulled. */
  image: string;
  cgroupParent: string;
  logDir: string;
  podConfig(name: string): PodSandboxConfig;
  /** Runs podConfig(name), or a config of the test's own; cleanup stops and removes the pod. */
  runPod(nameOrConfig: string | PodSandboxConfig): Promise<string>;
  /**
   * Stops the daemon if it still runs (SIGTERM) and starts a new one on the same dirs, with
   * `extraArgs` in place of the node's first ones (startTestNode's and prepare's).
   */
  restartDaemon(extraArgs?: string[], options?: DaemonOptions): Promise<TestDaemon>;
  cleanup(): Promise<void>;
}

export interface TestNodeOptions {
  /**
   * Runs once the registry holds busybox and before the daemon starts (to push more images);
   * what it returns is added to the daemon's arguments.
   */
  prepare?(registry: TestRegistry): Promise<string[] | void>;
  /** Options for the first daemon (restartDaemon takes its own). */
  daemon?: DaemonOptions;
  /** The runroot on a tmpfs of its own, as /run is on a node (the benches model one). */
  runrootTmpfs?: boolean;
}

const subnetsInUse = new Set<string>();
const subnetOf = (tag: string) => `10.199.${(parseInt(tag, 16) % 200) + 20}.0/24`;

// A test run ended by a signal (a timeout's SIGTERM, ^C) runs no after() hooks: the nodes still
// up are cleaned here first, so no daemon, mount, bridge or cgroup outlives the run.
const liveCleanups = new Set<() => Promise<void>>();
let signalHooked = false;
function cleanOnSignal(cleanup: () => Promise<void>): void {
  liveCleanups.add(cleanup);
  if (signalHooked) return;
  signalHooked = true;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...liveCleanups].map((c) => c())).then(() => process.exit(128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1)));
    });
  }
}

export async function startTestNode(extraArgs: string[] = [], options: TestNodeOptions = {}): Promise<TestNode> {
  // Nodes running at once in one process (the crash-point shards) must not share a subnet.
  let tag = randomBytes(2).toString('hex');
  while (subnetsInUse.has(subnetOf(tag))) tag = randomBytes(2).toString('hex');
  const subnet = subnetOf(tag);
  subnetsInUse.add(subnet);
  const bridge = `crt${tag}`;
  const cgroupParent = `/crisp-test-${tag}`;
  const dirs = testDirs('crisp-test-node-');
  const logDir = join(dirs.dir, 'pod-logs');
  const registry = await startRegistry();
  let daemon: TestDaemon | undefined;
  const pods = new Set<string>();
  const running = (d: TestDaemon) => d.process.exitCode === null && d.process.signalCode === null;
  const cleanup = async () => {
    liveCleanups.delete(cleanup);
    if (daemon && running(daemon)) {
      const rt = daemon.clients.runtime;
      for (const id of pods) {
        await call(rt, rt.StopPodSandbox, { pod_sandbox_id: id }, 60_000).catch(() => undefined);
        await call(rt, rt.RemovePodSandbox, { pod_sandbox_id: id }, 60_000).catch(() => undefined);
      }
    }
    if (process.env['CRISP_TEST_DAEMON_LOG']) writeFileSync(process.env['CRISP_TEST_DAEMON_LOG'], daemon?.stderr() ?? '');
    // Not daemon.cleanup(): that removes the directory, which must wait until the mounts are gone.
    daemon?.clients.close();
    await daemon?.stop('SIGKILL');
    await registry.stop();
    // Each handler's runtime, in its own root.
    for (const [runtime, root] of [['runc', join(dirs.runroot, 'runc')], ['crun', join(dirs.runroot, 'runtimes', 'crun')]] as const) {
      if (!existsSync(root)) continue;
      const { stdout } = await run(runtime, ['--root', root, 'list', '-q']).catch(() => ({ stdout: '' }));
      for (const id of stdout.split('\n').filter(Boolean)) await run(runtime, ['--root', root, 'delete', '--force', id]).catch(() => undefined);
    }
    await unmountAllUnder(dirs.dir);
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    rmSync(join('/var/lib/cni/networks', `test${tag}`), { recursive: true, force: true });
    // '' stands for a cgroup v2 unified root; under v1 each hierarchy is a directory of its own
    for (const hierarchy of ['', ...readdirSync('/sys/fs/cgroup')]) {
      removeCgroupTree(join('/sys/fs/cgroup', hierarchy, cgroupParent));
      // crisp's default cgroup of pods run without a cgroup_parent
      for (const id of pods) removeCgroupTree(join('/sys/fs/cgroup', hierarchy, 'crisp', id));
    }
    releaseDefaultCgroupParent();
    rmSync(dirs.dir, { recursive: true, force: true });
    subnetsInUse.delete(subnet);
  };
  cleanOnSignal(cleanup);
  try {
    await pushFixtures(registry.url, ['busybox']);
    writeFileSync(join(dirs.dir, 'registries.conf'), `[[registry]]\nprefix = "${registry.host}"\ninsecure = true\n`);
    mkdirSync(join(dirs.dir, 'cni'), { recursive: true });
    writeFileSync(join(dirs.dir, 'cni', '10-test.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: `test${tag}`,
      plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet } }],
    }));
    if (options.runrootTmpfs) await mountTmpfs(dirs.runroot);
    const firstArgs = [...extraArgs, ...((await options.prepare?.(registry)) ?? [])];
    const baseArgs = ['--registries-conf', join(dirs.dir, 'registries.conf'), '--cni-config-dir', join(dirs.dir, 'cni')];
    daemon = await startDaemon([...baseArgs, ...firstArgs], dirs, options.daemon);
    const image = `${registry.host}/crisp-test/busybox:latest`;
    await call(daemon.clients.image, daemon.clients.image.PullImage, { image: { image } }, 60_000);
    const podConfig = (name: string): PodSandboxConfig => ({
      metadata: { name, namespace: 'default', uid: `uid-${name}-${tag}`, attempt: 0 },
      hostname: name,
      log_directory: join(logDir, name),
      linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    });
    const node: TestNode = {
      tag, daemon, registry, image, cgroupParent, logDir, podConfig, cleanup,
      async runPod(nameOrConfig) {
        const rt = node.daemon.clients.runtime;
        const config = typeof nameOrConfig === 'string' ? podConfig(nameOrConfig) : nameOrConfig;
        const id = (await call(rt, rt.RunPodSandbox, { config }, 60_000)).pod_sandbox_id;
        pods.add(id);
        return id;
      },
      async restartDaemon(args = firstArgs, daemonOptions = {}) {
        if (running(node.daemon)) {
          node.daemon.clients.close();
          await node.daemon.stop('SIGTERM');
        }
        daemon = undefined; // a start that fails leaves nothing for cleanup to talk to
        daemon = node.daemon = await startDaemon([...baseArgs, ...args], dirs, daemonOptions);
        return daemon;
      },
    };
    return node;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) removeCgroupTree(join(dir, child.name));
  try {
    rmdirSync(dir);
  } catch {
    // still busy, or gone already
  }
}
