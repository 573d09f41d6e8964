// Real CNI plugins from /usr/lib/cni against namespaces pinned by the library. Every test
// uses a bridge, subnet, network name, config dir, IPAM dir and cache dir of its own, and
// cleans up bridges, iptables rules, namespaces and processes even when it fails.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { CniRunner } from '../../src/actors/network/cni.js';
import { defaultNetworkConfig, writeDefaultConfig } from '../../src/actors/network/cni-config.js';
import { cacheFilePath } from '../../src/actors/network/cni-cache.js';
import { run } from '../../src/host/run.js';
import { isMountPoint } from '../helpers/mounts.js';
import {
  pinNamespaces,
  runInNetns,
  unpinNamespaces,
  type PinnedNamespaces,
} from '../../src/actors/network/namespaces.js';
import { isCrispError } from '../../src/errors.js';

const suffix = randomBytes(3).toString('hex');
const NET = `crtest${suffix}`;
const BRIDGE = `crtest${suffix}`;
const third = 1 + (parseInt(suffix.slice(0, 2), 16) % 250);
const SUBNET = `10.199.${third}.0/24`;
const FAIL_NET = `crtestf${suffix}`;
const FAIL_BRIDGE = `crtestf${suffix}`;
const FAIL_SUBNET = `10.198.${third}.0/24`;

const base = await mkdtemp('/tmp/crisp-test-net-');
const confDir = join(base, 'net.d');
const ipamDir = join(base, 'ipam');
const cacheDir = join(base, 'cache');

const containerIds = new Set<string>();
const pinnedAll: PinnedNamespaces[] = [];
const children: ChildProcess[] = [];
const pod = (name: string) => ({ namespace: 'crisp-test', name, uid: `uid-${name}-${suffix}` });

// Names the plugins derive from network name + container id (sha512, as their utils do).
function chainName(prefix: string, network: string, id: string): string {
  return `CNI-${prefix}${createHash('sha512').update(network + id).digest('hex')}`.slice(0, 28);
}

async function iptablesRules(table: string): Promise<string[]> {
  const r = await run('iptables', ['-w', '-t', table, '-S']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

/** Every rule/chain that mentions one of our container ids, IPs or per-container chains. */
async function leftovers(ids: Iterable<string>, ips: Iterable<string>): Promise<string[]> {
  const needles: string[] = [];
  for (const id of ids) for (const net of [NET, FAIL_NET]) needles.push(`id: "${id}"`, chainName('DN-', net, id), chainName('', net, id));
  for (const ip of ips) needles.push(`${ip}/32`, `${ip}:`);
  const found: string[] = [];
  for (const table of ['nat', 'filter']) {
    for (const rule of await iptablesRules(table)) if (needles.some((n) => rule.includes(n))) found.push(`${table}: ${rule}`);
  }
  return found;
}

async function removeIptablesLeftovers(): Promise<void> {
  for (const table of ['nat', 'filter']) {
    const rules = await iptablesRules(table);
    const ours = (rule: string) =>
      rule.includes(`"${NET}"`) || rule.includes(`"${FAIL_NET}"`) || rule.includes(`10.199.${third}.`) || rule.includes(`10.198.${third}.`);
    for (const rule of rules.filter((r) => r.startsWith('-A ') && ours(r))) {
      await run('sh', ['-c', `iptables -w -t ${table} ${rule.replace(/^-A /, '-D ')}`]);
    }
    const chains = new Set<string>();
    for (const id of containerIds) for (const net of [NET, FAIL_NET]) chains.add(chainName('DN-', net, id)).add(chainName('', net, id));
    for (const rule of rules) {
      const chain = rule.match(/^-N (\S+)/)?.[1];
      if (chain && chains.has(chain)) {
        await run('iptables', ['-w', '-t', table, '-F', chain]);
        await run('iptables', ['-w', '-t', table, '-X', chain]);
      }
    }
  }
}

after(async () => {
  for (const c of children) stopServer(c);
  const runner = new CniRunner({ confDir, cacheDir, loopback: false });
  for (const id of containerIds) await runner.del({ containerId: id }).catch(() => {});
  for (const p of pinnedAll) await unpinNamespaces(p).catch(() => {});
  for (const br of [BRIDGE, FAIL_BRIDGE]) await run('ip', ['link', 'del', br]);
  for (const cid of containerIds) await run('ip', ['link', 'del', `bwp${createHash('sha512').update(NET + cid).digest('hex')}`.slice(0, 15)]);
  await removeIptablesLeftovers();
  await rm(base, { recursive: true, force: true });
});

async function newPod(name: string): Promise<PinnedNamespaces> {
  const ns = await pinNamespaces({ dir: join(base, 'pods', name), hostname: name });
  pinnedAll.push(ns);
  return ns;
}

function id(name: string): string {
  const v = `${name}-${suffix}`;
  containerIds.add(v);
  return v;
}

/** A TCP server inside a netns that greets each client with `greeting` and closes. */
async function startServer(ns: PinnedNamespaces, port: number, greeting: string): Promise<ChildProcess> {
  const script = `require('net').createServer((s) => s.end(process.argv[1])).listen(${port}, '0.0.0.0', () => console.log('listening'));`;
  const child = spawn('nsenter', [`--net=${ns.net!}`, '--', process.execPath, '-e', script, greeting], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.match(line.toString(), /listening/);
  return child;
}

function stopServer(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Connects from the current (host) netns and returns what the server sent. */
function fetchGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host, port, timeout: 5000 });
    s.on('data', (b) => chunks.push(b));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('timeout', () => s.destroy(new Error(`timeout connecting to ${host}:${port}`)));
    s.on('error', reject);
  });
}

/** Connects from inside a netns (a node client run there via nsenter). */
async function fetchGreetingFrom(ns: PinnedNamespaces, host: string, port: number): Promise<string> {
  const script = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2],timeout:5000});let d='';s.on('data',b=>d+=b);s.on('end',()=>{process.stdout.write(d)});s.on('timeout',()=>{console.error('timeout');process.exit(2)});s.on('error',e=>{console.error(e.message);process.exit(3)});`;
  const r = await runInNetns(ns.net!, process.execPath, ['-e', script, host, String(port)], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, `client in pod to ${host}:${port} failed: ${r.stderr}`);
  return r.stdout;
}

function nodeAddress(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name.startsWith('crtest') || name.startsWith('veth')) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this node');
}

await mkdir(confDir, { recursive: true });
const written = await writeDefaultConfig(confDir, { name: NET, bridge: BRIDGE, subnet: SUBNET, ipamDataDir: ipamDir });

test('writeDefaultConfig writes into an empty dir only, and reports it', async () => {
  assert.equal(written.written, true);
  assert.equal(written.path, join(confDir, `10-${NET}.conflist`));
  const again = await writeDefaultConfig(confDir, { name: 'other', bridge: 'other0', subnet: '10.1.0.0/16' });
  assert.deepEqual(again, { written: false, path: written.path });
  const loaded = JSON.parse(await readFile(written.path, 'utf8'));
  assert.deepEqual(loaded.plugins.map((p: { type: string }) => p.type), ['bridge', 'portmap', 'firewall']);
});

test('pods get addresses in the subnet, reach each other, and host ports answer on 127.0.0.1 and the node address', async () => {
  const runner = new CniRunner({ confDir, cacheDir });
  const nsA = await newPod('pod-a');
  const nsB = await newPod('pod-b');
  const idA = id('pod-a');
  const idB = id('pod-b');
  const hostPort = 20000 + (parseInt(suffix.slice(2), 16) % 20000);
  const a = await runner.add({
    containerId: idA,
    netnsPath: nsA.net!,
    pod: pod('pod-a'),
    portMappings: [
      { hostPort, containerPort: 8080, protocol: 'TCP' },
      { hostPort: 0, containerPort: 9090 }, // declared only: no forwarding
    ],
  });
  const b = await runner.add({ containerId: idB, netnsPath: nsB.net!, pod: pod('pod-b') });

  const ipA = a.ips[0]!.ip;
  const ipB = b.ips[0]!.ip;
  assert.ok(ipA.startsWith(`10.199.${third}.`), `pod A address ${ipA} is in ${SUBNET}`);
  assert.ok(ipB.startsWith(`10.199.${third}.`), `pod B address ${ipB} is in ${SUBNET}`);
  assert.notEqual(ipA, ipB);
  assert.equal(a.ips[0]!.family, 4);
  assert.equal(a.ips[0]!.gateway, `10.199.${third}.1`);

  const links = await runInNetns(nsA.net!, 'ip', ['-o', 'link', 'show']);
  assert.match(links.stdout, /: lo: <[^>]*\bUP\b/, 'lo is up');
  assert.match(links.stdout, /: eth0@\S+: <[^>]*\bUP\b/, 'eth0 is up');
  const addr = await runInNetns(nsA.net!, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  assert.match(addr.stdout, new RegExp(`inet ${ipA.replaceAll('.', '\\.')}/24`));

  const cached = await new CniRunner({ confDir, cacheDir }).cachedStatus(idA);
  assert.deepEqual(cached?.ips, a.ips, 'a fresh runner reads the pod IPs from the cache');

  const server = await startServer(nsA, 8080, `hello from ${idA}`);
  try {
    assert.equal(await fetchGreetingFrom(nsB, ipA, 8080), `hello from ${idA}`, 'pod B reaches pod A directly');
    assert.equal(await fetchGreeting('127.0.0.1', hostPort), `hello from ${idA}`, 'host port via 127.0.0.1');
    const node = nodeAddress();
    assert.equal(await fetchGreeting(node, hostPort), `hello from ${idA}`, `host port via the node address ${node}`);
    assert.equal(await fetchGreetingFrom(nsB, node, hostPort), `hello from ${idA}`, 'host port from another pod');
    assert.equal(await fetchGreetingFrom(nsA, node, hostPort), `hello from ${idA}`, 'hairpin: the pod through its own host port');
    const routeLocalnet = await readFile(`/proc/sys/net/ipv4/conf/${BRIDGE}/route_localnet`, 'utf8');
    assert.equal(routeLocalnet.trim(), '1', 'portmap set route_localnet on the bridge');
  } finally {
    stopServer(server);
  }

  // CHECK passes on an intact attachment and fails once the pod's interface differs from the
  // result. (Changing the MAC, not deleting eth0: bridge 1.1.1's DEL finds the addresses to
  // un-masquerade on the live interface, so a deleted eth0 would leak its NAT chain.)
  await runner.check({ containerId: idB });
  const hostVethB = (b.result.interfaces as { name: string; sandbox?: string }[]).find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
  assert.equal((await runInNetns(nsB.net!, 'ip', ['link', 'set', 'eth0', 'address', '02:00:00:c0:ff:ee'])).code, 0);
  await assert.rejects(runner.check({ containerId: idB }), (e: unknown) => isCrispError(e, 'Internal') && /plugin bridge/.test(e.message));

  // Release both, in the order the core will: DEL, then unpin.
  const hostVethA = (a.result.interfaces as { name: string; sandbox?: string }[]).find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
  for (const [cid, ns] of [[idA, nsA], [idB, nsB]] as const) {
    await runner.del({ containerId: cid });
    await unpinNamespaces(ns);
  }
  for (const [ns, ip, veth, cid] of [[nsA, ipA, hostVethA, idA], [nsB, ipB, hostVethB, idB]] as const) {
    assert.equal(existsSync(ns.net!), false, 'netns file removed');
    assert.equal(await isMountPoint(ns.net!), false, 'netns unmounted');
    assert.notEqual((await run('ip', ['link', 'show', veth])).code, 0, `host veth ${veth} removed`);
    assert.equal(existsSync(join(ipamDir, NET, ip)), false, `host-local allocation of ${ip} released`);
    assert.equal(existsSync(cacheFilePath(cacheDir, NET, cid, 'eth0')), false, 'CNI cache entry removed');
  }
  assert.deepEqual(await leftovers([idA, idB], [ipA, ipB]), [], 'no iptables chain or rule of these pods remains');

  // DEL is idempotent: again, and for something never added.
  await runner.del({ containerId: idA });
  await runner.del({ containerId: id('never-added'), netnsPath: join(base, 'no-such-netns') });
  await unpinNamespaces(nsA);
});

test('DEL after a restart uses the cached config and result, even once the config is gone', async () => {
  const ns = await newPod('pod-restart');
  const cid = id('pod-restart');
  const hostPort = 40000 + (parseInt(suffix.slice(2), 16) % 20000);
  const first = await new CniRunner({ confDir, cacheDir }).add({
    containerId: cid,
    netnsPath: ns.net!,
    pod: pod('pod-restart'),
    portMappings: [{ hostPort, containerPort: 80 }],
  });
  const ip = first.ips[0]!.ip;
  assert.notDeepEqual(await leftovers([cid], []), [], 'portmap chains exist while attached');

  // The "restarted" runner has no config dir any more: only the cache can tell it what to undo.
  const confFile = written.path;
  const text = await readFile(confFile, 'utf8');
  await unlink(confFile);
  try {
    const restarted = new CniRunner({ confDir, cacheDir });
    await assert.rejects(restarted.network(), (e: unknown) => isCrispError(e, 'FailedPrecondition'));
    await restarted.del({ containerId: cid });
  } finally {
    await writeFile(confFile, text);
  }
  await unpinNamespaces(ns);
  assert.equal(existsSync(join(ipamDir, NET, ip)), false, 'address released');
  assert.equal(existsSync(cacheFilePath(cacheDir, NET, cid, 'eth0')), false, 'cache entry removed');
  assert.deepEqual(await leftovers([cid], [ip]), []);
});

test('a chain whose second plugin fails is undone and the error names the plugin', async () => {
  const failDir = join(base, 'fail.d');
  await mkdir(failDir, { recursive: true });
  const config = defaultNetworkConfig({ name: FAIL_NET, bridge: FAIL_BRIDGE, subnet: FAIL_SUBNET, ipamDataDir: ipamDir });
  // tuning rejects a sysctl that does not exist: a real plugin failing for a real reason.
  (config.plugins as unknown[]).splice(1, 0, { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.crisp_no_such_key': '1' } });
  await writeFile(join(failDir, '10-fail.conflist'), JSON.stringify(config));
  const runner = new CniRunner({ confDir: failDir, cacheDir });
  const ns = await newPod('pod-fail');
  const cid = id('pod-fail');
  await assert.rejects(
    runner.add({ containerId: cid, netnsPath: ns.net!, pod: pod('pod-fail'), portMappings: [{ hostPort: 65000, containerPort: 80 }] }),
    (e: unknown) => isCrispError(e, 'Internal') && /CNI plugin tuning of network/.test(e.message) && /crisp_no_such_key/.test(e.message),
  );
  const links = await runInNetns(ns.net!, 'ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(links.stdout, /eth0/, 'no eth0 left in the pod');
  const allocations = existsSync(join(ipamDir, FAIL_NET)) ? (await run('ls', [join(ipamDir, FAIL_NET)])).stdout : '';
  assert.doesNotMatch(allocations, /10\.198\./, 'no address left allocated');
  assert.equal(existsSync(cacheFilePath(cacheDir, FAIL_NET, cid, 'eth0')), false, 'no cache entry');
  assert.deepEqual(await leftovers([cid], []), []);
  const veths = (await run('ip', ['-o', 'link', 'show', 'master', FAIL_BRIDGE])).stdout;
  assert.equal(veths.trim(), '', 'no veth left on the bridge');
  await unpinNamespaces(ns);
});

test('GC deletes cached attachments that are not valid any more and keeps the valid ones', async () => {
  const runner = new CniRunner({ confDir, cacheDir });
  const nsKeep = await newPod('pod-keep');
  const nsStale = await newPod('pod-stale');
  const keep = id('pod-keep');
  const stale = id('pod-stale');
  await runner.add({ containerId: keep, netnsPath: nsKeep.net!, pod: pod('pod-keep') });
  const s = await runner.add({ containerId: stale, netnsPath: nsStale.net!, pod: pod('pod-stale') });
  await runner.gc([{ containerId: keep }]);
  assert.equal(existsSync(cacheFilePath(cacheDir, NET, stale, 'eth0')), false);
  assert.equal(existsSync(join(ipamDir, NET, s.ips[0]!.ip)), false);
  assert.ok(existsSync(cacheFilePath(cacheDir, NET, keep, 'eth0')));
  assert.deepEqual((await runner.cachedAttachments()).map((a) => a.containerId), [keep]);
  await assert.rejects(
    runner.add({ containerId: keep, netnsPath: nsKeep.net!, pod: pod('pod-keep') }),
    (e: unknown) => isCrispError(e, 'AlreadyExists'),
    'a second ADD of a cached attachment is refused',
  );
  await runner.del({ containerId: keep });
  await unpinNamespaces(nsKeep);
  await unpinNamespaces(nsStale);
});

test('bandwidth limits reach the bandwidth plugin through runtimeConfig', async () => {
  const bwDir = join(base, 'bw.d');
  await mkdir(bwDir, { recursive: true });
  const config = defaultNetworkConfig({ name: NET, bridge: BRIDGE, subnet: SUBNET, ipamDataDir: ipamDir });
  (config.plugins as unknown[]).push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  await writeFile(join(bwDir, '10-bw.conflist'), JSON.stringify(config));
  const runner = new CniRunner({ confDir: bwDir, cacheDir });
  const ns = await newPod('pod-bw');
  const cid = id('pod-bw');
  const added = await runner.add({
    containerId: cid,
    netnsPath: ns.net!,
    pod: pod('pod-bw'),
    bandwidth: { ingressRate: 8_000_000, ingressBurst: 8_000_000, egressRate: 4_000_000, egressBurst: 4_000_000 },
  });
  const hostVeth = (added.result.interfaces as { name: string; sandbox?: string }[]).find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
  const ifb = `bwp${createHash('sha512').update(NET + cid).digest('hex')}`.slice(0, 15);
  try {
    const qdiscs = (await run('tc', ['qdisc', 'show', 'dev', hostVeth])).stdout;
    assert.match(qdiscs, /qdisc tbf .*rate 8Mbit/, 'ingress limit shaped on the host veth');
    const ifbQdiscs = (await run('tc', ['qdisc', 'show', 'dev', ifb])).stdout;
    assert.match(ifbQdiscs, /qdisc tbf .*rate 4Mbit/, 'egress limit shaped on the ifb device');
  } finally {
    await runner.del({ containerId: cid });
    await unpinNamespaces(ns);
  }
  assert.notEqual((await run('ip', ['link', 'show', ifb])).code, 0, 'ifb device removed by DEL');
});

test('bad requests are rejected before anything is made', async () => {
  const runner = new CniRunner({ confDir, cacheDir });
  const ns = await newPod('pod-bad');
  const good = { containerId: id('pod-bad'), netnsPath: ns.net!, pod: pod('pod-bad') };
  const cases: [object, RegExp][] = [
    [{ containerId: 'bad id!' }, /^containerId:/],
    [{ ifName: 'this-name-is-too-long' }, /^ifName:/],
    [{ netnsPath: 'relative/path' }, /^netnsPath:/],
    [{ pod: { ...good.pod, name: 'a;b' } }, /^pod\.name:/],
    [{ portMappings: [{ hostPort: 70000, containerPort: 80 }] }, /^portMappings\[0\]\.hostPort:/],
    [{ portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'icmp' }] }, /^portMappings\[0\]\.protocol:/],
    [{ bandwidth: { ingressRate: -1 } }, /^bandwidth\.ingressRate:/],
  ];
  for (const [override, message] of cases) {
    await assert.rejects(runner.add({ ...good, ...override }), (e: unknown) => isCrispError(e, 'InvalidArgument') && message.test(e.message));
  }
  assert.deepEqual(await runner.cachedAttachments(good.containerId), []);
  const links = await runInNetns(ns.net!, 'ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(links.stdout, /eth0/);
  await unpinNamespaces(ns);
});
