// The pod sandbox RPCs against the real daemon, with the real CNI plugins from Debian, on a
// bridge, subnet, config dir and IPAM dir of this test's own (never crisp0 or /etc/cni/net.d).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { CRISP_BIN, startDaemon, testDirs, type TestDaemon } from '../helpers/daemon.js';
import { call } from '../helpers/cri-client.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import { eventually } from '../helpers/eventually.js';

interface TestNet {
  bridge: string;
  subnetPrefix: string;
  ipamDir: string;
}

/** A conflist of the test's own; `extraPlugins` are appended to the chain. */
function writeNetwork(dir: string, extraPlugins: object[] = []): TestNet {
  const bridge = `crt${randomBytes(2).toString('hex')}`;
  const subnetPrefix = `10.199.${10 + randomBytes(1)[0]! % 240}`;
  const ipamDir = join(dir, 'ipam');
  mkdirSync(join(dir, 'cni'), { recursive: true });
  writeFileSync(join(dir, 'cni', '10-test.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'crisptest',
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: `${subnetPrefix}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir } },
      ...extraPlugins,
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  }));
  return { bridge, subnetPrefix, ipamDir };
}

function deleteBridge(bridge: string): void {
  try {
    execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
  } catch {
    // never created, or already gone
  }
}

async function daemonWithNetwork(t: { after(fn: () => unknown): void }, extraPlugins: object[] = [], extraArgs: string[] = []) {
  const dirs = testDirs('crisp-test-sandbox-');
  const net = writeNetwork(dirs.dir, extraPlugins);
  t.after(() => deleteBridge(net.bridge));
  const d = await startDaemon(extraArgs, dirs);
  t.after(() => d.cleanup());
  return { d, net, dirs };
}

let podCounter = 0;
function podConfig(name = `pod${++podCounter}`, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'crisp-test', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    labels: { app: name, suite: 'sandbox-rpc' },
    annotations: { note: 'test' },
    linux: { security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'CONTAINER' } } },
    ...extra,
  };
}

function inNetns(netns: string, ...args: string[]): string {
  return execFileSync('nsenter', [`--net=${netns}`, '--', ...args], { encoding: 'utf8', timeout: 10_000 });
}

async function status(d: TestDaemon, id: string) {
  const r = d.clients.runtime;
  const res = await call(r, r.PodSandboxStatus, { pod_sandbox_id: id, verbose: true });
  return { status: res.status!, info: JSON.parse(res.info.info!) as Record<string, any> };
}

const isCode = (code: grpc.status, pattern: RegExp) => (err: grpc.ServiceError) => {
  assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
  assert.match(err.details, pattern);
  return true;
};

function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(path));
}

function vethsOn(bridge: string): string[] {
  try {
    return execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function cacheEntries(root: string, id: string): string[] {
  const dir = join(root, 'cni-cache', 'results');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.includes(id)) : [];
}

function ipamFiles(ipamDir: string): string[] {
  const dir = join(ipamDir, 'crisptest');
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}

function natRulesOf(id: string): string[] {
  return execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(id));
}

/** Drops the nat chains that mention a pod id and the jumps to them (what a reboot does to iptables). */
function dropNatRulesOf(id: string): void {
  const chains = new Set(natRulesOf(id).map((r) => /-j (CNI-[0-9a-f]{24})\b/.exec(r)?.[1]).filter((c): c is string => !!c));
  for (const chain of chains) {
    for (const parent of ['POSTROUTING', 'PREROUTING', 'OUTPUT']) {
      const listing = execFileSync('iptables', ['-t', 'nat', '-L', parent, '--line-numbers', '-n'], { encoding: 'utf8' }).split('\n');
      const lines = listing.filter((l) => l.split(/\s+/)[1] === chain).map((l) => Number(l.split(/\s+/)[0])).sort((a, b) => b - a);
      for (const n of lines) execFileSync('iptables', ['-t', 'nat', '-D', parent, String(n)]);
    }
    execFileSync('iptables', ['-t', 'nat', '-F', chain]);
    execFileSync('iptables', ['-t', 'nat', '-X', chain]);
  }
}

/** Everything a pod held is gone: its dir, mounts, veth, IP lease and CNI cache entry (released after RemovePodSandbox answers). */
function assertNothingLeft(d: TestDaemon, net: TestNet, id: string): Promise<void> {
  return eventually(() => nothingLeft(d, net, id));
}

function nothingLeft(d: TestDaemon, net: TestNet, id: string): void {
  const dir = join(d.runroot, 'sandboxes', id);
  assert.ok(!existsSync(dir), `sandbox dir ${dir} is removed`);
  assert.deepEqual(mountsUnder(dir), [], 'no mount (netns, ipc, uts, shm) remains');
  assert.deepEqual(vethsOn(net.bridge), [], 'no veth remains on the bridge');
  assert.deepEqual(ipamFiles(net.ipamDir), [], 'no host-local IP allocation remains');
  assert.deepEqual(cacheEntries(d.root, id), [], 'no CNI cache entry remains');
  assert.deepEqual(natRulesOf(id), [], 'no iptables nat rule (masquerade, host port) remains');
}

/** A TCP server in the pod's netns that greets every connection, so host ports can be checked. */
async function greeterInPod(t: { after(fn: () => unknown): void }, netns: string, port: number, greeting: string): Promise<void> {
  const script = `require('net').createServer((s) => s.end(${JSON.stringify(greeting)})).listen(${port}, '0.0.0.0', () => console.log('listening'))`;
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`greeter exited with ${code}`)));
  });
}

function readGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = '';
    socket.setTimeout(5000, () => socket.destroy(new Error(`timed out reading from ${host}:${port}`)));
    socket.on('data', (b) => (data += b));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

function nodeAddress(): string | undefined {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.199.')) return a.address;
  }
  return undefined;
}

test('RunPodSandbox gives a pod a real IP, files, shm and namespaces; retried, it returns the same id', async (t) => {
  const { d, net } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const config = podConfig('web', {
    dns_config: { servers: ['10.96.0.10'], searches: ['crisp-test.svc.cluster.local'], options: ['ndots:5'] },
    linux: {
      security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid: 'CONTAINER' } },
      sysctls: { 'net.core.somaxconn': '1234' },
      cgroup_parent: '/kubepods/podtest',
    },
  });
  const { pod_sandbox_id: id } = await call(r, r.RunPodSandbox, { config });
  assert.match(id, /^[0-9a-f]{64}$/);
  const again = await call(r, r.RunPodSandbox, { config });
  assert.equal(again.pod_sandbox_id, id, 'a retried RunPodSandbox returns the same id');

  const { status: s, info } = await status(d, id.slice(0, 10));
  assert.equal(s.id, id, 'a unique prefix names the pod');
  assert.equal(s.state, 'SANDBOX_READY');
  assert.match(s.network!.ip, new RegExp(`^${net.subnetPrefix.replaceAll('.', '\\.')}\\.\\d+$`), 'the pod IP is in the test subnet');
  assert.deepEqual(s.metadata, { name: 'web', namespace: 'crisp-test', uid: 'uid-web', attempt: 0 });
  assert.equal(s.labels.app, 'web');
  assert.equal(s.annotations.note, 'test');
  assert.equal(s.linux!.namespaces!.options!.pid, 'CONTAINER');
  assert.ok(BigInt(s.created_at) > 0n);
  assert.equal(info.config.hostname, 'web', 'inspect shows the config the pod was run with');
  assert.equal(info.cgroupParent, '/kubepods/podtest');
  const netns: string = info.namespaces.net;
  for (const kind of ['net', 'ipc', 'uts']) assert.ok(mountsUnder(info.namespaces[kind]).length > 0, `${kind} namespace is pinned`);

  const links = inNetns(netns, 'ip', '-o', 'link', 'show');
  assert.match(links, /\d+: lo: <[^>]*\bUP\b/, 'lo is up in the pod');
  assert.match(links, /\d+: eth0@\S+: <[^>]*\bUP\b/, 'eth0 is up in the pod');
  assert.match(inNetns(netns, 'ip', '-o', '-4', 'addr', 'show', 'eth0'), new RegExp(s.network!.ip.replaceAll('.', '\\.')));
  assert.equal(inNetns(netns, 'cat', '/proc/sys/net/core/somaxconn').trim(), '1234', 'the namespaced sysctl is applied in the pod');
  assert.equal(execFileSync('nsenter', [`--uts=${info.namespaces.uts}`, '--', 'hostname'], { encoding: 'utf8' }).trim(), 'web');

  const dir: string = info.podFilesDir;
  assert.equal(readFileSync(join(dir, 'hostname'), 'utf8'), 'web\n');
  assert.equal(readFileSync(join(dir, 'resolv.conf'), 'utf8'),
    'search crisp-test.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  assert.match(readFileSync(join(dir, 'hosts'), 'utf8'), new RegExp(`^127\\.0\\.0\\.1\\tlocalhost$[\\s\\S]*^${s.network!.ip.replaceAll('.', '\\.')}\\tweb$`, 'm'));
  assert.ok(mountsUnder(info.shmPath).length > 0, 'the pod has its own /dev/shm tmpfs');

  // verbose status runs CNI CHECK on the attachment: it passes, and fails naming the plugin once
  // the pod's interface differs from ADD's result (a changed MAC, see network-cni.test.ts)
  const checked = async () => JSON.parse((await call(r, r.PodSandboxStatus, { pod_sandbox_id: id, verbose: true })).info['networkCheck']!);
  assert.deepEqual(await checked(), { ok: true });
  const mac = inNetns(netns, 'cat', '/sys/class/net/eth0/address').trim();
  inNetns(netns, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:c0:ff:ee');
  const broken = await checked();
  assert.equal(broken.ok, false);
  assert.match(broken.error, /CNI CHECK of [0-9a-f]{64}: plugin bridge/);
  inNetns(netns, 'ip', 'link', 'set', 'eth0', 'address', mac);
  assert.equal((await call(r, r.PodSandboxStatus, { pod_sandbox_id: id, verbose: false })).info['networkCheck'], undefined, 'kubelet\'s status runs no CHECK');

  await assert.rejects(call(r, r.RunPodSandbox, { config: { ...config, labels: { other: 'pod' } } }),
    isCode(grpc.status.ALREADY_EXISTS, /web_crisp-test_uid-web_0.*reserved/));

  await call(r, r.StopPodSandbox, { pod_sandbox_id: id });
  const stopped = await status(d, id);
  assert.equal(stopped.status.state, 'SANDBOX_NOTREADY');
  assert.deepEqual(vethsOn(net.bridge), [], 'stop tears the network down');
  assert.deepEqual(ipamFiles(net.ipamDir), [], 'stop releases the IP');
  assert.ok(mountsUnder(netns).length > 0, 'stop keeps the namespaces until remove');
  await call(r, r.StopPodSandbox, { pod_sandbox_id: id });
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
  await assertNothingLeft(d, net, id);
  await assert.rejects(call(r, r.PodSandboxStatus, { pod_sandbox_id: id }), isCode(grpc.status.NOT_FOUND, /not found/));
});

test('two pods reach each other, and a host port answers on 127.0.0.1 and the node address', async (t) => {
  const { d, net } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const hostPort = 20000 + (randomBytes(2).readUInt16BE() % 20000);
  const a = (await call(r, r.RunPodSandbox, { config: podConfig('a', { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: hostPort }] }) })).pod_sandbox_id;
  const b = (await call(r, r.RunPodSandbox, { config: podConfig('b') })).pod_sandbox_id;
  t.after(async () => {
    for (const id of [a, b]) await call(r, r.RemovePodSandbox, { pod_sandbox_id: id }).catch(() => {});
  });
  const [sa, sb] = [await status(d, a), await status(d, b)];
  assert.notEqual(sa.status.network!.ip, sb.status.network!.ip);
  inNetns(sb.info.namespaces.net, 'busybox', 'ping', '-c', '1', '-W', '3', sa.status.network!.ip);
  inNetns(sa.info.namespaces.net, 'busybox', 'ping', '-c', '1', '-W', '3', sb.status.network!.ip);

  await greeterInPod(t, sa.info.namespaces.net, 8080, 'hello from pod a');
  assert.equal(await readGreeting(sa.status.network!.ip, 8080), 'hello from pod a', 'the pod IP answers from the node');
  assert.equal(await readGreeting('127.0.0.1', hostPort), 'hello from pod a', 'the host port answers on 127.0.0.1');
  const node = nodeAddress();
  if (node) assert.equal(await readGreeting(node, hostPort), 'hello from pod a', `the host port answers on the node address ${node}`);

  const listed = await call(r, r.ListPodSandbox, {});
  assert.deepEqual(listed.items.map((p) => p.id).sort(), [a, b].sort());
  assert.deepEqual((await call(r, r.ListPodSandbox, { filter: { id: a.slice(0, 12) } })).items.map((p) => p.id), [a]);
  assert.deepEqual((await call(r, r.ListPodSandbox, { filter: { label_selector: { app: 'b' } } })).items.map((p) => p.id), [b]);
  await call(r, r.StopPodSandbox, { pod_sandbox_id: b });
  assert.deepEqual((await call(r, r.ListPodSandbox, { filter: { state: { state: 'SANDBOX_NOTREADY' } } })).items.map((p) => p.id), [b]);
  assert.deepEqual((await call(r, r.ListPodSandbox, { filter: { state: { state: 'SANDBOX_READY' } } })).items.map((p) => p.id), [a]);
  const streamed = await new Promise<string[]>((resolve, reject) => {
    const ids: string[] = [];
    const stream = r.StreamPodSandboxes({ filter: { label_selector: { suite: 'sandbox-rpc' } } });
    stream.on('data', (m: { pod_sandboxes: { id: string }[] }) => ids.push(...m.pod_sandboxes.map((p) => p.id)));
    stream.on('end', () => resolve(ids));
    stream.on('error', reject);
  });
  assert.deepEqual(streamed.sort(), [a, b].sort());

  for (const id of [a, b]) await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
  for (const id of [a, b]) await assertNothingLeft(d, net, id);
  await assert.rejects(readGreeting('127.0.0.1', hostPort), 'the host port is gone with the pod');
});

test('a host-network pod sees the node: its interfaces, hostname and resolv.conf; it pins only IPC', async (t) => {
  const { d, net } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const config = podConfig('hostnet', {
    hostname: '',
    linux: { security_context: { namespace_options: { network: 'NODE', ipc: 'POD', pid: 'CONTAINER' } } },
  });
  const { pod_sandbox_id: id } = await call(r, r.RunPodSandbox, { config });
  const { status: s, info } = await status(d, id);
  assert.equal(s.state, 'SANDBOX_READY');
  assert.equal(s.network!.ip, '', 'a host-network pod has no pod IP of its own');
  assert.equal(s.linux!.namespaces!.options!.network, 'NODE');
  assert.deepEqual(Object.keys(info.namespaces), ['ipc'], 'network and UTS are the node\'s');
  assert.deepEqual(vethsOn(net.bridge), [], 'CNI was not called');
  assert.equal(readFileSync(join(info.podFilesDir, 'hostname'), 'utf8'), `${hostname()}\n`);
  assert.equal(readFileSync(join(info.podFilesDir, 'resolv.conf'), 'utf8'), readFileSync('/etc/resolv.conf', 'utf8'));
  assert.equal(readFileSync(join(info.podFilesDir, 'hosts'), 'utf8'), readFileSync('/etc/hosts', 'utf8'));
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
  await assertNothingLeft(d, net, id);
});

test('bad requests are refused naming the field, unknown ids are handled as kubelet expects', async (t) => {
  const { d } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const missing = 'f'.repeat(64);
  await call(r, r.StopPodSandbox, { pod_sandbox_id: missing });
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: missing });
  await assert.rejects(call(r, r.PodSandboxStatus, { pod_sandbox_id: missing }), isCode(grpc.status.NOT_FOUND, /not found/));
  await assert.rejects(call(r, r.UpdatePodSandboxResources, { pod_sandbox_id: missing }), isCode(grpc.status.NOT_FOUND, /not found/));
  await assert.rejects(call(r, r.StopPodSandbox, { pod_sandbox_id: '' }), isCode(grpc.status.INVALID_ARGUMENT, /pod_sandbox_id is required/));

  const bad: [Partial<PodSandboxConfig>, grpc.status, RegExp][] = [
    [{ metadata: { name: '', namespace: 'ns', uid: 'u', attempt: 0 } }, grpc.status.INVALID_ARGUMENT, /config\.metadata\.name is required/],
    [{ metadata: { name: 'n', namespace: 'ns', uid: '', attempt: 0 } }, grpc.status.INVALID_ARGUMENT, /config\.metadata\.uid is required/],
    [{ hostname: 'not_a host' }, grpc.status.INVALID_ARGUMENT, /config\.hostname/],
    [{ dns_config: { servers: ['not-an-ip'] } }, grpc.status.INVALID_ARGUMENT, /dns_config\.servers\[0\]/],
    [{ linux: { sysctls: { 'kernel.panic': '1' }, security_context: { namespace_options: { pid: 'CONTAINER' } } } }, grpc.status.INVALID_ARGUMENT, /config\.linux\.sysctls: kernel\.panic is not namespaced/],
    [{ port_mappings: [{ container_port: 0, host_port: 80 }] }, grpc.status.INVALID_ARGUMENT, /config\.port_mappings\[0\]\.container_port/],
    [{ linux: { security_context: { namespace_options: { pid: 'TARGET' } } } }, grpc.status.INVALID_ARGUMENT, /namespace_options\.pid: TARGET/],
  ];
  for (const [override, code, pattern] of bad) {
    await assert.rejects(call(r, r.RunPodSandbox, { config: podConfig(undefined, override) }), isCode(code, pattern));
  }
  await assert.rejects(call(r, r.RunPodSandbox, { config: podConfig(), runtime_handler: 'nosuch' }), isCode(grpc.status.INVALID_ARGUMENT, /runtime_handler/));
  assert.deepEqual((await call(r, r.ListPodSandbox, {})).items, [], 'nothing was recorded for a refused request');
  assert.deepEqual(readdirSync(join(d.runroot)).filter((f) => f === 'sandboxes' && readdirSync(join(d.runroot, f)).length > 0), []);

  const { pod_sandbox_id: id } = await call(r, r.RunPodSandbox, { config: podConfig('resized') });
  await call(r, r.UpdatePodSandboxResources, { pod_sandbox_id: id, resources: { cpu_shares: 512, memory_limit_in_bytes: 64 * 1024 * 1024 } });
  const { info } = await status(d, id);
  assert.equal(info.resources.memory_limit_in_bytes, String(64 * 1024 * 1024), 'the resources are recorded');
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
});

test('a CNI plugin failing mid-chain leaves nothing behind and the error names the step', async (t) => {
  const pluginDir = join(testDirs('crisp-test-plugins-').dir);
  // Fails ADD after the bridge plugin has attached the pod; succeeds DEL, as plugins must.
  writeFileSync(join(pluginDir, 'crispfail'), '#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then\n  echo \'{"cniVersion":"1.0.0","code":999,"msg":"crispfail refuses on purpose"}\'\n  exit 1\nfi\nexit 0\n');
  chmodSync(join(pluginDir, 'crispfail'), 0o755);
  t.after(() => execFileSync('rm', ['-rf', pluginDir]));
  const { d, net } = await daemonWithNetwork(t, [{ type: 'crispfail' }], ['--cni-plugin-dir', `${pluginDir},/usr/lib/cni`]);
  const r = d.clients.runtime;
  const config = podConfig('doomed');
  await assert.rejects(call(r, r.RunPodSandbox, { config }), isCode(grpc.status.INTERNAL, /step cni-add.*crispfail refuses on purpose/));
  assert.deepEqual((await call(r, r.ListPodSandbox, {})).items, []);
  const sandboxes = join(d.runroot, 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], [], 'no sandbox dir remains');
  assert.deepEqual(mountsUnder(d.runroot), [], 'no mount remains');
  assert.deepEqual(vethsOn(net.bridge), []);
  assert.deepEqual(ipamFiles(net.ipamDir), []);
  const results = join(d.root, 'cni-cache', 'results');
  assert.deepEqual(existsSync(results) ? readdirSync(results) : [], []);
  // The log holds the whole story: acquired, failed, released, removed.
  const events = execFileSync(process.execPath, [CRISP_BIN, 'events', '--root', d.root, '--kind', 'sandbox', '--json'],
    { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l).event.type as string);
  assert.deepEqual(events, ['SandboxRunRequested', 'SandboxNamespacesPinned', 'SandboxRunFailed', 'SandboxNamespacesUnpinned', 'SandboxRemoved']);
  // A new attempt with the same name is free to start once the failed one is gone.
  await assert.rejects(call(r, r.RunPodSandbox, { config }), isCode(grpc.status.INTERNAL, /step cni-add/));
});

test('a release that fails answers with its reason instead of hanging, and a later RemovePodSandbox finishes it', async (t) => {
  const pluginDir = join(testDirs('crisp-test-plugins-').dir);
  const broken = join(pluginDir, 'broken');
  // Fails ADD always, and DEL while the `broken` marker exists.
  writeFileSync(join(pluginDir, 'crispfail'), `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ] || [ -e ${broken} ]; then\n  echo '{"cniVersion":"1.0.0","code":999,"msg":"crispfail says no to '$CNI_COMMAND'"}'\n  exit 1\nfi\nexit 0\n`);
  chmodSync(join(pluginDir, 'crispfail'), 0o755);
  writeFileSync(broken, '');
  t.after(() => execFileSync('rm', ['-rf', pluginDir]));
  const { d, net } = await daemonWithNetwork(t, [{ type: 'crispfail' }], ['--cni-plugin-dir', `${pluginDir},/usr/lib/cni`]);
  const r = d.clients.runtime;
  let id = '';
  await assert.rejects(call(r, r.RunPodSandbox, { config: podConfig('stuck') }), (err: grpc.ServiceError) => {
    assert.match(err.details, /step cni-add: .*crispfail says no to ADD.*releasing pod sandbox [0-9a-f]{64}: step remove-sandbox-dir failed: .*crispfail says no to DEL/);
    id = /releasing pod sandbox ([0-9a-f]{64})/.exec(err.details)![1]!;
    return true;
  });
  assert.equal(cacheEntries(d.root, id).length, 1, 'what DEL could not release stays recorded in the cache for the retry');
  rmSync(broken);
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
  await assertNothingLeft(d, net, id);
});

test('after a daemon restart the pod is still listed and ready, and stop/remove still release it', async (t) => {
  const { d, net, dirs } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const { pod_sandbox_id: id } = await call(r, r.RunPodSandbox, { config: podConfig('survivor') });
  const ip = (await status(d, id)).status.network!.ip;
  assert.equal(await d.stop('SIGTERM'), 0);

  const again = await startDaemon([], dirs);
  t.after(() => again.cleanup());
  const r2 = again.clients.runtime;
  const listed = await call(r2, r2.ListPodSandbox, {});
  assert.deepEqual(listed.items.map((p) => [p.id, p.state]), [[id, 'SANDBOX_READY']]);
  assert.equal((await status(again, id)).status.network!.ip, ip);
  await call(r2, r2.StopPodSandbox, { pod_sandbox_id: id });
  await call(r2, r2.RemovePodSandbox, { pod_sandbox_id: id });
  await assertNothingLeft(again, net, id);
});

test('a pod whose pinned namespaces vanished (a reboot) is found not ready at start-up and still removable', async (t) => {
  const { d, net, dirs } = await daemonWithNetwork(t);
  const r = d.clients.runtime;
  const { pod_sandbox_id: id } = await call(r, r.RunPodSandbox, { config: podConfig('rebooted') });
  const { info } = await status(d, id);
  await d.stop('SIGKILL');
  // What a reboot does: the namespace and shm mounts in /run are gone, and so are the iptables
  // rules (the bridge plugin can only tear its masquerade rule down from inside the netns).
  execFileSync('umount', [info.namespaces.net, info.namespaces.ipc, info.namespaces.uts, info.shmPath]);
  t.after(() => dropNatRulesOf(id));
  dropNatRulesOf(id);
  await sleep(10);

  const again = await startDaemon([], dirs);
  t.after(() => again.cleanup());
  const r2 = again.clients.runtime;
  const after = await status(again, id);
  assert.equal(after.status.state, 'SANDBOX_NOTREADY');
  assert.match(after.info.notReadyReason, /namespace .* is gone/);
  await call(r2, r2.RemovePodSandbox, { pod_sandbox_id: id });
  await assertNothingLeft(again, net, id);
});

/** A CNI plugin (node script) that sleeps in ADD and DEL, then passes prevResult on or fails ADD. */
function slowPlugin(t: { after(fn: () => unknown): void }): string {
  const pluginDir = join(testDirs('crisp-test-plugins-').dir);
  writeFileSync(join(pluginDir, 'crispslow'), `#!${process.execPath}
let input = '';
process.stdin.on('data', (c) => (input += c)).on('end', () => {
  const conf = JSON.parse(input);
  const add = process.env.CNI_COMMAND === 'ADD';
  setTimeout(() => {
    if (add && conf.fail) {
      process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 999, msg: 'crispslow fails ADD on purpose' }));
      process.exit(1);
    }
    if (add) process.stdout.write(JSON.stringify(conf.prevResult));
    process.exit(0);
  }, add ? conf.addMs : conf.delMs);
});
`);
  chmodSync(join(pluginDir, 'crispslow'), 0o755);
  t.after(() => execFileSync('rm', ['-rf', pluginDir]));
  return pluginDir;
}

function runRequests(d: TestDaemon): string[] {
  return execFileSync(process.execPath, [CRISP_BIN, 'events', '--root', d.root, '--kind', 'sandbox', '--json'], { encoding: 'utf8' })
    .trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event.type === 'SandboxRunRequested').map((e) => e.stream as string);
}

test('identical RunPodSandbox calls while the first is creating or ready all get its id; a different one names the field', async (t) => {
  const pluginDir = slowPlugin(t);
  const { d } = await daemonWithNetwork(t, [{ type: 'crispslow', addMs: 1500, delMs: 0 }], ['--cni-plugin-dir', `${pluginDir},/usr/lib/cni`]);
  const r = d.clients.runtime;
  const config = podConfig('retried', { dns_config: { servers: ['10.96.0.10'], searches: ['a.svc'], options: ['ndots:5'] }, port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 0, host_ip: '' }] });
  // kubelet's retry after a timeout: the same request, sent while the first is still creating.
  const first = call(r, r.RunPodSandbox, { config }, 60_000);
  await sleep(300);
  const ids = await Promise.all([first, ...Array.from({ length: 9 }, () => call(r, r.RunPodSandbox, { config }, 60_000))]);
  const id = ids[0]!.pod_sandbox_id;
  assert.deepEqual(ids.map((x) => x.pod_sandbox_id), Array(10).fill(id), 'every call got the first one\'s pod');
  // Ready: the same again, and a request that differs says where.
  assert.equal((await call(r, r.RunPodSandbox, { config })).pod_sandbox_id, id);
  await assert.rejects(call(r, r.RunPodSandbox, { config: { ...config, labels: { ...config.labels, extra: 'x' } } }),
    isCode(grpc.status.ALREADY_EXISTS, /reserved by sandbox [0-9a-f]{64}, whose request differs at config\.labels\.extra/));
  await assert.rejects(call(r, r.RunPodSandbox, { config: { ...config, dns_config: { ...config.dns_config!, options: ['ndots:2'] } } }),
    isCode(grpc.status.ALREADY_EXISTS, /differs at config\.dns_config\.options\[0\]/));
  assert.deepEqual(runRequests(d), [id], 'one request was recorded');
  await call(r, r.StopPodSandbox, { pod_sandbox_id: id });
  await call(r, r.RemovePodSandbox, { pod_sandbox_id: id });
});

test('identical RunPodSandbox calls while the first fails and unwinds all get its error, and one pod was tried', async (t) => {
  const pluginDir = slowPlugin(t);
  const { d, net } = await daemonWithNetwork(t, [{ type: 'crispslow', addMs: 800, delMs: 1500, fail: true }], ['--cni-plugin-dir', `${pluginDir},/usr/lib/cni`]);
  const r = d.clients.runtime;
  const config = podConfig('failing');
  const calls: Promise<unknown>[] = [];
  // Sent while creating (0-800 ms), then while failed and releasing (800 ms on: DEL sleeps 1.5 s).
  const started = Date.now();
  for (const at of [0, 100, 300, 600, 1000, 1300, 1600, 1900]) {
    await sleep(Math.max(0, started + at - Date.now()));
    calls.push(call(r, r.RunPodSandbox, { config }, 60_000));
  }
  const outcomes = await Promise.allSettled(calls);
  for (const o of outcomes) {
    assert.equal(o.status, 'rejected');
    const err = (o as PromiseRejectedResult).reason as grpc.ServiceError;
    assert.equal(err.code, grpc.status.INTERNAL, err.details);
    assert.match(err.details, /RunPodSandbox failed at step cni-add: .*crispfail|crispslow fails ADD on purpose/);
  }
  assert.equal(runRequests(d).length, 1, 'every call joined the first; no second pod was tried while it unwound');
  assert.deepEqual((await call(r, r.ListPodSandbox, {})).items, []);
  assert.deepEqual(vethsOn(net.bridge), []);
});
