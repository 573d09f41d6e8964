import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, rmdirSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { call, criClients, type CriClients } from './cri-client.js';

export interface TestDaemon {
  dir: string;
  root: string;
  runroot: string;
  socket: string;
  process: ChildProcess;
  clients: CriClients;
  stderr(): string;
  /** Milliseconds from spawn until Version answered. */
  readyMs: number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  cleanup(): Promise<void>;
}

export const CRISP_BIN = join(PACKAGE_ROOT, 'bin', 'crisp.js');

/** A test-only state dir and socket, never /var/lib/crisp or /run/crisp. */
export function testDirs(prefix = 'crisp-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // An empty config of its own, so a host's /etc/crisp/crisp.conf never leaks into a test.
  writeFileSync(join(dir, 'crisp.conf'), '');
  return { dir, root: join(dir, 'root'), runroot: join(dir, 'run'), socket: join(dir, 'crisp.sock') };
}

export interface DaemonOptions {
  /** Extra environment for the daemon (e.g. CRISP_TEST_CRASH_AT), on top of this process's. */
  env?: Record<string, string>;
  /** Options for node itself, before the entry point (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /**
   * cgroup directories (one per hierarchy) the daemon starts in, as a service manager would
   * start it in its service's cgroup. A shell joins them, then execs the daemon (same pid).
   */
  cgroupDirs?: string[];
}

/**
 * crisp's default cgroup parent (/crisp) in each hierarchy where this test process found none.
 * Pods run without a cgroup_parent make it, and crisp keeps a shared parent by design; a test
 * that made it removes it again (releaseDefaultCgroupParent).
 */
const defaultParentsAbsent = (existsSync('/sys/fs/cgroup/cgroup.controllers') ? [''] : readdirSync('/sys/fs/cgroup'))
  .map((hierarchy) => join('/sys/fs/cgroup', hierarchy, 'crisp'))
  .filter((dir) => !existsSync(dir));

/** Removes the /crisp parents this process made, where empty: a crisp running beside the tests keeps what it uses. */
export function releaseDefaultCgroupParent(): void {
  for (const dir of defaultParentsAbsent) {
    try {
      rmdirSync(dir);
    } catch {
      // still in use (another daemon of this run, or a crisp beside it), or never made
    }
  }
}

export async function startDaemon(extraArgs: string[] = [], dirs = testDirs(), options: DaemonOptions = {}): Promise<TestDaemon> {
  const started = Date.now();
  // CRISP_TEST_DAEMON_ENTRY runs another entry point (the benches run the compiled dist/ daemon).
  const args = [
    ...(options.nodeArgs ?? []),
    process.env['CRISP_TEST_DAEMON_ENTRY'] ?? CRISP_BIN, 'daemon',
    '--root', dirs.root, '--runroot', dirs.runroot, '--socket', dirs.socket,
    '--config', join(dirs.dir, 'crisp.conf'),
    '--cni-config-dir', join(dirs.dir, 'cni'),
    '--enable-metrics=false', '--log-level', 'debug',
    ...extraArgs,
  ];
  let stderr = '';
  const spawnOptions = { stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'], ...(options.env && { env: { ...process.env, ...options.env } }) };
  const child = options.cgroupDirs?.length
    ? spawn('sh', ['-c', 'for d in $CRISP_TEST_CGROUPS; do echo $$ > "$d/cgroup.procs"; done; exec "$@"', 'sh', process.execPath, ...args],
      { ...spawnOptions, env: { ...(spawnOptions.env ?? process.env), CRISP_TEST_CGROUPS: options.cgroupDirs.join(' ') } })
    : spawn(process.execPath, args, spawnOptions);
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const clients = criClients(dirs.socket);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`crisp daemon exited with ${child.exitCode}: ${stderr}`);
    if (existsSync(dirs.socket)) {
      try {
        await call(clients.runtime, clients.runtime.Version, {}, 1000);
        break;
      } catch {
        // not ready yet
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`crisp daemon did not become ready: ${stderr}`);
    }
    await sleep(20);
  }
  const readyMs = Date.now() - started;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    ...dirs,
    process: child,
    clients,
    readyMs,
    stderr: () => stderr,
    stop,
    async cleanup() {
      clients.close();
      await stop('SIGKILL');
      rmSync(dirs.dir, { recursive: true, force: true });
      releaseDefaultCgroupParent();
    },
  };
}

/** The pid of daemon `daemonPid`'s spawn helper (its child named crisp-spawn…), if one runs. */
export function spawnHelperOf(daemonPid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm.startsWith('crisp-spawn') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === daemonPid) return Number(entry);
    } catch {
      // exited while we looked
    }
  }
  return undefined;
}
