// The CNI protocol as the runner speaks it, checked against small recording plugins (no root,
// no network changes): env, stdin, prevResult, capabilities, order, cache, failure handling.
// The same runner against the real plugins is test/integration/network-cni.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildCniArgs,
  CniRunner,
  describePluginError,
  formatCniArgs,
  pluginStdin,
} from '../../src/actors/network/cni.js';
import { cacheFilePath, decodeConfig } from '../../src/actors/network/cni-cache.js';
import { isCrispError } from '../../src/errors.js';
import { portMappingsOf } from '../../src/machines/pod-rules.js';

// A plugin that appends {type, command, env, stdin} to the file named by its `log` key and
// behaves as its config says: `fail` lists commands that fail, `ip` makes it the first plugin.
// One jq call rather than node: it is spawned dozens of times and must start fast.
const PLUGIN_SOURCE = `#!/bin/sh
jq -r --arg c "$CNI_COMMAND" '
  (((.fail // []) | index($c)) != null) as $fail
  | .log,
    ({type, command: $c, env: (env | with_entries(select(.key | startswith("CNI_")))), stdin: .} | tojson),
    (if $fail then "fail" elif $c == "ADD" then "ok" else "none" end),
    (if $fail then {cniVersion, code: 11, msg: ("refused by " + .type), details: "on purpose"}
     elif .ip then {cniVersion, interfaces: [{name: "host-side"}, {name: env.CNI_IFNAME, sandbox: env.CNI_NETNS}],
                    ips: [{interface: 1, address: .ip, gateway: "10.0.0.1"}]}
     else .prevResult end | tojson)' | {
  read -r log; read -r record; read -r verdict; read -r body
  printf '%s\\n' "$record" >> "$log"
  case $verdict in
    fail) printf '%s' "$body"; exit 1 ;;
    ok) printf '%s' "$body" ;;
  esac
}
`;

interface Call {
  type: string;
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown> & { prevResult?: unknown; runtimeConfig?: Record<string, unknown> };
}

interface Fixture {
  dir: string;
  confDir: string;
  pluginDir: string;
  cacheDir: string;
  log: string;
  calls(): Promise<Call[]>;
  clearCalls(): Promise<void>;
  writeConfig(plugins: Record<string, unknown>[], extra?: Record<string, unknown>): Promise<void>;
  runner(): CniRunner;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'crisp-test-cni-'));
  try {
    const pluginDir = join(dir, 'bin');
    await mkdir(pluginDir);
    for (const name of ['first', 'second', 'third']) {
      await writeFile(join(pluginDir, name), PLUGIN_SOURCE);
      await chmod(join(pluginDir, name), 0o755);
    }
    const confDir = join(dir, 'net.d');
    await mkdir(confDir);
    const log = join(dir, 'calls.jsonl');
    const f: Fixture = {
      dir,
      confDir,
      pluginDir,
      cacheDir: join(dir, 'cache'),
      log,
      async calls() {
        if (!existsSync(log)) return [];
        return (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call);
      },
      async clearCalls() {
        await rm(log, { force: true });
      },
      async writeConfig(plugins, extra = {}) {
        await writeFile(
          join(confDir, '10-test.conflist'),
          JSON.stringify({ cniVersion: '1.0.0', name: 'testnet', plugins: plugins.map((p) => ({ log, ...p })), ...extra }),
        );
      },
      runner() {
        return new CniRunner({ confDir, pluginDirs: [join(dir, 'empty'), pluginDir], cacheDir: f.cacheDir, loopback: false });
      },
    };
    await fn(f);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const POD = { namespace: 'ns1', name: 'web-0', uid: 'a1b2' };
const CHAIN = [
  { type: 'first', ip: '10.0.0.5/24' },
  { type: 'second', capabilities: { portMappings: true, bandwidth: false } },
  { type: 'third', capabilities: { bandwidth: true } },
];

test('ADD runs the chain in order with the spec environment, prevResult and filtered runtimeConfig', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN);
    const status = await f.runner().add({
      containerId: 'sb1',
      netnsPath: '/run/test/netns/sb1',
      pod: POD,
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }],
      bandwidth: { ingressRate: 1000, ingressBurst: 100 },
    });
    assert.deepEqual(status.ips, [{ ip: '10.0.0.5', prefixLength: 24, family: 4, gateway: '10.0.0.1', interface: 'eth0' }]);
    assert.equal(status.networkName, 'testnet');

    const calls = await f.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.type}`), ['ADD first', 'ADD second', 'ADD third']);
    for (const c of calls) {
      assert.deepEqual(c.env, {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'sb1',
        CNI_NETNS: '/run/test/netns/sb1',
        CNI_IFNAME: 'eth0',
        CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=a1b2',
        CNI_PATH: `${join(f.dir, 'empty')}:${f.pluginDir}`,
      });
      assert.equal(c.stdin.name, 'testnet');
      assert.equal(c.stdin.cniVersion, '1.0.0');
    }
    const [first, second, third] = calls;
    assert.equal(first!.stdin.prevResult, undefined);
    assert.equal(first!.stdin.runtimeConfig, undefined, 'no capabilities, no runtimeConfig');
    assert.deepEqual(second!.stdin.prevResult, status.result, "the first plugin's result is handed on");
    assert.deepEqual(second!.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.deepEqual(third!.stdin.runtimeConfig, { bandwidth: { ingressRate: 1000, ingressBurst: 100 } });

    const cached = JSON.parse(await readFile(cacheFilePath(f.cacheDir, 'testnet', 'sb1', 'eth0'), 'utf8'));
    assert.equal(cached.kind, 'cniCacheV1');
    assert.equal(cached.addComplete, true);
    assert.equal(cached.netns, '/run/test/netns/sb1');
    assert.deepEqual(cached.result, status.result);
    assert.equal(JSON.parse(decodeConfig(cached.config)).name, 'testnet');
  });
});

test('DEL runs in reverse with the cached result and arguments, from a new runner, and is idempotent', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN);
    const added = await f.runner().add({ containerId: 'sb1', netnsPath: '/ns/sb1', pod: POD, portMappings: [{ hostPort: 81, containerPort: 80 }] });
    await f.clearCalls();
    // The config changes (a plugin is dropped) after the ADD: DEL must still undo what ADD did.
    await f.writeConfig([CHAIN[0]!]);
    await f.runner().del({ containerId: 'sb1' });
    const calls = await f.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.type}`), ['DEL third', 'DEL second', 'DEL first']);
    for (const c of calls) {
      assert.deepEqual(c.stdin.prevResult, added.result);
      assert.equal(c.env.CNI_NETNS, '/ns/sb1');
      assert.match(c.env.CNI_ARGS!, /K8S_POD_NAME=web-0/);
    }
    assert.deepEqual(calls[1]!.stdin.runtimeConfig, { portMappings: [{ hostPort: 81, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(existsSync(cacheFilePath(f.cacheDir, 'testnet', 'sb1', 'eth0')), false);

    // Nothing cached any more: DEL goes through the current config, without prevResult.
    await f.clearCalls();
    await f.runner().del({ containerId: 'sb1', netnsPath: '/ns/sb1' });
    const again = await f.calls();
    assert.deepEqual(again.map((c) => `${c.command} ${c.type}`), ['DEL first']);
    assert.equal(again[0]!.stdin.prevResult, undefined);
    assert.equal(again[0]!.env.CNI_ARGS, 'IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=sb1');
  });
});

test('a plugin failing mid-chain: everything is DELeted, the error names the plugin and its message', async () => {
  await withFixture(async (f) => {
    await f.writeConfig([CHAIN[0]!, { ...CHAIN[1]!, fail: ['ADD'] }, CHAIN[2]!]);
    await assert.rejects(
      f.runner().add({ containerId: 'sb2', netnsPath: '/ns/sb2', pod: POD }),
      (e: unknown) =>
        isCrispError(e, 'Internal') &&
        e.message === 'CNI plugin second of network testnet failed ADD for sb2: refused by second: on purpose (code 11)',
    );
    const calls = await f.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.type}`), ['ADD first', 'ADD second', 'DEL third', 'DEL second', 'DEL first']);
    const firstResult = (calls.find((c) => c.command === 'ADD' && c.type === 'second')!.stdin.prevResult);
    for (const c of calls.filter((x) => x.command === 'DEL')) assert.deepEqual(c.stdin.prevResult, firstResult);
    assert.equal(existsSync(cacheFilePath(f.cacheDir, 'testnet', 'sb2', 'eth0')), false);
  });
});

test('a failing DEL still runs every plugin and keeps the cache entry for a retry', async () => {
  await withFixture(async (f) => {
    await f.writeConfig([CHAIN[0]!, { type: 'second', fail: ['DEL'] }]);
    await f.runner().add({ containerId: 'sb3', netnsPath: '/ns/sb3', pod: POD });
    await f.clearCalls();
    await assert.rejects(f.runner().del({ containerId: 'sb3' }), (e: unknown) => isCrispError(e, 'Internal') && /second: refused by second/.test(e.message));
    assert.deepEqual((await f.calls()).map((c) => `${c.command} ${c.type}`), ['DEL second', 'DEL first']);
    assert.ok(existsSync(cacheFilePath(f.cacheDir, 'testnet', 'sb3', 'eth0')), 'kept for a retry');
    const cachedBefore = await f.runner().cachedAttachments('sb3');
    assert.equal(cachedBefore.length, 1);
  });
});

test('configs older than 0.4.0 get no prevResult on DEL and cannot CHECK', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN.slice(0, 2), { cniVersion: '0.3.1' });
    await f.runner().add({ containerId: 'sb4', netnsPath: '/ns/sb4', pod: POD });
    await f.clearCalls();
    await assert.rejects(f.runner().check({ containerId: 'sb4' }), (e: unknown) => isCrispError(e, 'FailedPrecondition') && /CHECK/.test(e.message));
    await f.runner().del({ containerId: 'sb4' });
    for (const c of await f.calls()) assert.equal(c.stdin.prevResult, undefined);
  });
});

test('CHECK hands every plugin the cached result; a never-added pod is NotFound', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN);
    const added = await f.runner().add({ containerId: 'sb5', netnsPath: '/ns/sb5', pod: POD });
    await f.clearCalls();
    await f.runner().check({ containerId: 'sb5' });
    const calls = await f.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.type}`), ['CHECK first', 'CHECK second', 'CHECK third']);
    for (const c of calls) assert.deepEqual(c.stdin.prevResult, added.result);
    await assert.rejects(f.runner().check({ containerId: 'other' }), (e: unknown) => isCrispError(e, 'NotFound'));
    assert.deepEqual((await f.runner().cachedStatus('sb5'))?.ips, added.ips);
    assert.equal(await f.runner().cachedStatus('other'), undefined);
  });
});

test('GC deletes stale cached attachments, then (spec 1.1.0) sends GC with the valid ones', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN.slice(0, 2), { cniVersion: '1.1.0' });
    const runner = f.runner();
    await runner.add({ containerId: 'keep', netnsPath: '/ns/keep', pod: POD });
    await runner.add({ containerId: 'stale', netnsPath: '/ns/stale', pod: POD });
    await f.clearCalls();
    await runner.gc([{ containerId: 'keep' }]);
    const calls = await f.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.type} ${c.env.CNI_CONTAINERID}`), [
      'DEL second stale',
      'DEL first stale',
      'GC first ',
      'GC second ',
    ]);
    const gc = calls.find((c) => c.command === 'GC')!;
    assert.deepEqual(gc.stdin['cni.dev/valid-attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.deepEqual((await runner.cachedAttachments()).map((a) => a.containerId), ['keep']);

    await f.clearCalls();
    await f.writeConfig(CHAIN.slice(0, 2), { cniVersion: '1.0.0' });
    await f.runner().gc([]);
    assert.deepEqual((await f.calls()).map((c) => c.command), ['DEL', 'DEL'], 'before 1.1.0 only the cache is collected');
  });
});

test('STATUS is asked of plugins from spec 1.1.0; a missing plugin makes the network unavailable', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN.slice(0, 1), { cniVersion: '1.1.0' });
    await f.runner().status();
    assert.deepEqual((await f.calls()).map((c) => c.command), ['STATUS']);
    await f.writeConfig([{ type: 'first', fail: ['STATUS'] }], { cniVersion: '1.1.0' });
    await assert.rejects(f.runner().status(), (e: unknown) => isCrispError(e, 'Unavailable') && /refused by first/.test(e.message));
    await f.writeConfig([CHAIN[0]!, { type: 'nosuchplugin' }]);
    await assert.rejects(f.runner().network(), (e: unknown) => isCrispError(e, 'FailedPrecondition') && /plugins\[1\]\.type: CNI plugin "nosuchplugin" not found/.test(e.message));
    await assert.rejects(f.runner().status(), (e: unknown) => isCrispError(e, 'Unavailable'));
  });
});

test('CNI_ARGS are built as kubelet runtimes send them and reject separators', () => {
  const pairs = buildCniArgs({ namespace: 'default', name: 'nginx', uid: '0e3b' }, 'abc123');
  assert.equal(formatCniArgs(pairs), 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=0e3b');
  assert.throws(() => buildCniArgs({ namespace: 'a=b', name: 'n', uid: 'u' }, 'id'), (e: unknown) => isCrispError(e, 'InvalidArgument') && /^pod\.namespace:/.test(e.message));
  assert.throws(() => buildCniArgs({ namespace: 'a', name: 'n', uid: 'u;x' }, 'id'), /pod\.uid/);
});

test('port mappings are checked and put in the portmap shape; declared-only ports are dropped', () => {
  const pod = (port_mappings: unknown[]) => ({ port_mappings }) as unknown as Parameters<typeof portMappingsOf>[0];
  assert.deepEqual(
    portMappingsOf(pod([
      { host_port: 8080, container_port: 80, protocol: 'TCP', host_ip: '' },
      { host_port: 5353, container_port: 53, protocol: 'UDP', host_ip: '127.0.0.1' },
      { host_port: 0, container_port: 9090, protocol: 'TCP', host_ip: '' },
    ])),
    [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ],
  );
  assert.throws(() => portMappingsOf(pod([{ host_port: 1, container_port: 0, protocol: 'TCP' }])), /config\.port_mappings\[0\]\.container_port/);
  assert.throws(() => portMappingsOf(pod([{ host_port: 1, container_port: 1, protocol: 'TCP', host_ip: 'x' }])), /config\.port_mappings\[0\]\.host_ip/);
  assert.throws(() => portMappingsOf(pod([{ host_port: 1, container_port: 1, protocol: 'ICMP' }])), /config\.port_mappings\[0\]\.protocol/);
});

test('pluginStdin injects name, version, prevResult and only the capabilities a plugin asks for', () => {
  const conf = pluginStdin(
    { name: 'n', cniVersion: '1.0.0' },
    { type: 'portmap', capabilities: { portMappings: true, ipRanges: false }, snat: true },
    { cniVersion: '1.0.0', ips: [] },
    { portMappings: [1], ipRanges: [2], bandwidth: {} },
  );
  assert.deepEqual(conf, {
    type: 'portmap',
    capabilities: { portMappings: true, ipRanges: false },
    snat: true,
    name: 'n',
    cniVersion: '1.0.0',
    prevResult: { cniVersion: '1.0.0', ips: [] },
    runtimeConfig: { portMappings: [1] },
  });
});

test('plugin errors are read from the spec error JSON, else from the output', () => {
  const base = { code: 1, signal: null, stderr: '', timedOut: false };
  assert.equal(describePluginError({ ...base, stdout: '{"code":7,"msg":"bad config","details":"no bridge"}' }), 'bad config: no bridge (code 7)');
  assert.equal(describePluginError({ ...base, stdout: '', stderr: 'panic: boom\n' }), 'panic: boom (exit status 1)');
  assert.equal(describePluginError({ ...base, stdout: '', code: null, signal: 'SIGKILL', timedOut: true }), 'timed out');
});

test('reload reads the config again only when the directory or the file changed', async () => {
  await withFixture(async (f) => {
    await f.writeConfig(CHAIN.slice(0, 1));
    const runner = f.runner();
    const first = await runner.reload();
    assert.equal(await runner.reload(), first, 'unchanged: the same parsed config, not read again');
    await f.writeConfig(CHAIN.slice(0, 2));
    assert.deepEqual((await runner.reload()).plugins.map((p) => p.type), ['first', 'second'], 'an edited file is read again');
    await writeFile(join(f.confDir, '05-other.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'othernet', plugins: [{ type: 'third' }] }));
    assert.equal((await runner.reload()).name, 'othernet', 'a file that now sorts first is picked up');
    await rm(join(f.confDir, '05-other.conflist'));
    assert.equal((await runner.reload()).name, 'testnet', 'and dropped when it goes');
  });
});
