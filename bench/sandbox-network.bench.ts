// The floor of RunPodSandbox/StopPodSandbox's network work: pin namespaces + CNI ADD + CNI DEL
// + unpin, through the library, against a baseline doing the same system work in the same
// process with bare spawns (no validation, no cache, no mount checks). The ratio is the
// library's overhead whatever the machine's speed. Iterations alternate between the two so
// machine load hits both alike. Needs root; uses its own bridge, subnet and temp dirs.
//
//   node --import tsx bench/sandbox-network.bench.ts [iterations=50]

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CniRunner } from '../src/actors/network/cni.js';
import { loadNetworkConfig, writeDefaultConfig, type CniNetworkConfig } from '../src/actors/network/cni-config.js';
import { run } from '../src/host/run.js';
import { pinNamespaces, unpinNamespaces } from '../src/actors/network/namespaces.js';

const ITERATIONS = Math.max(50, Number(process.argv[2] ?? process.env.BENCH_ITERATIONS ?? 50));
const PLUGIN_DIR = '/usr/lib/cni';
const PHASES = ['pin', 'add', 'del', 'unpin', 'total'] as const;
type Phase = (typeof PHASES)[number];
type Samples = Record<Phase, number[]>;

const suffix = randomBytes(3).toString('hex');
const NET = `crbench${suffix}`;
const BRIDGE = `crbench${suffix}`.slice(0, 15);
const SUBNET = `10.197.${1 + (parseInt(suffix.slice(0, 2), 16) % 250)}.0/24`;

function exec(file: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${out}`))));
    child.stdin.on('error', () => {}); // a program that ignores stdin may exit before reading it
    child.stdin.end(input ?? '');
  });
}

/** Times consecutive phases of one iteration into `t`; `start` is when the iteration began. */
function lapTimer(t: Samples): { start: number; lap(phase: Phase): void } {
  const start = performance.now();
  let mark = start;
  return {
    start,
    lap(phase) {
      const now = performance.now();
      t[phase].push(now - mark);
      mark = now;
    },
  };
}

/** The same steps as the library, by hand. */
async function directIteration(network: CniNetworkConfig, dir: string, id: string, t: Samples): Promise<void> {
  const files = ['net', 'ipc', 'uts'].map((k) => join(dir, k));
  const netns = files[0]!;
  const { start, lap } = lapTimer(t);
  await mkdir(dir, { recursive: true });
  for (const f of files) await (await open(f, 'a')).close();
  await exec('unshare', [`--net=${files[0]}`, `--ipc=${files[1]}`, `--uts=${files[2]}`, '--', 'hostname', id]);
  lap('pin');
  const env = (command: string) => ({
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${id};K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${id}`,
    CNI_PATH: PLUGIN_DIR,
  });
  await exec('nsenter', [`--net=${netns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
  let result: unknown;
  for (const p of network.plugins) {
    const conf = { ...p, name: network.name, cniVersion: network.cniVersion, ...(result ? { prevResult: result } : {}) };
    result = JSON.parse(await exec(join(PLUGIN_DIR, p.type), [], env('ADD'), JSON.stringify(conf)));
  }
  lap('add');
  for (const p of [...network.plugins].reverse()) {
    const conf = { ...p, name: network.name, cniVersion: network.cniVersion, prevResult: result };
    await exec(join(PLUGIN_DIR, p.type), [], env('DEL'), JSON.stringify(conf));
  }
  lap('del');
  await exec('umount', files);
  for (const f of files) await rm(f, { force: true });
  lap('unpin');
  t.total.push(performance.now() - start);
}

async function libraryIteration(runner: CniRunner, dir: string, id: string, t: Samples): Promise<void> {
  const { start, lap } = lapTimer(t);
  const ns = await pinNamespaces({ dir, hostname: id });
  lap('pin');
  await runner.add({ containerId: id, netnsPath: ns.net!, pod: { namespace: 'bench', name: id, uid: id } });
  lap('add');
  await runner.del({ containerId: id });
  lap('del');
  await unpinNamespaces(ns);
  lap('unpin');
  t.total.push(performance.now() - start);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const emptySamples = (): Samples => ({ pin: [], add: [], del: [], unpin: [], total: [] });

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('this benchmark needs root (namespaces, bridges, iptables)');
  const base = await mkdtemp('/tmp/crisp-test-bench-net-');
  const confDir = join(base, 'net.d');
  const lib = emptySamples();
  const direct = emptySamples();
  try {
    await writeDefaultConfig(confDir, { name: NET, bridge: BRIDGE, subnet: SUBNET, ipamDataDir: join(base, 'ipam') });
    const network = await loadNetworkConfig(confDir);
    const runner = new CniRunner({ confDir, cacheDir: join(base, 'cache'), pluginDirs: [PLUGIN_DIR] });
    // Warm-up: the first ADD creates the bridge and the shared iptables chains.
    await libraryIteration(runner, join(base, 'warm'), `warm-${suffix}`, emptySamples());
    for (let i = 0; i < ITERATIONS; i++) {
      await libraryIteration(runner, join(base, 'lib', String(i)), `lib-${suffix}-${i}`, lib);
      await directIteration(network, join(base, 'direct', String(i)), `direct-${suffix}-${i}`, direct);
    }
  } finally {
    await run('ip', ['link', 'del', BRIDGE]);
    await rm(base, { recursive: true, force: true });
  }

  console.log(`sandbox network: ${ITERATIONS} iterations each, plugins ${'bridge+host-local, portmap, firewall'} from ${PLUGIN_DIR}, no host ports`);
  console.log('phase    library p50 / p95 (ms)    direct p50 / p95 (ms)    ratio p50');
  for (const phase of PHASES) {
    const l50 = percentile(lib[phase], 50);
    const d50 = percentile(direct[phase], 50);
    console.log(
      `${phase.padEnd(8)} ${l50.toFixed(1).padStart(8)} / ${percentile(lib[phase], 95).toFixed(1).padStart(7)}` +
        `        ${d50.toFixed(1).padStart(8)} / ${percentile(direct[phase], 95).toFixed(1).padStart(7)}` +
        `        ${(l50 / d50).toFixed(2)}x`,
    );
  }
}

await main();
