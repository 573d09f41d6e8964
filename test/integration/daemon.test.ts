import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { startDaemon, CRISP_BIN, testDirs, type TestDaemon } from '../helpers/daemon.js';
import { call } from '../helpers/cri-client.js';
import { mountTmpfs, unmountAllUnder } from '../helpers/mounts.js';
import { onTmpfs } from '../../src/host/mountinfo.js';

const run = promisify(execFile);

test('the daemon serves Version, Status, RuntimeConfig and UpdateRuntimeConfig over its socket', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const { runtime } = d.clients;

  const version = await call(runtime, runtime.Version, { version: 'v1' });
  assert.equal(version.runtime_name, 'crisp');
  assert.equal(version.runtime_api_version, 'v1');
  assert.match(version.runtime_version, /^\d+\.\d+\.\d+/);

  const condition = (s: { status: { conditions: { type: string; status: boolean; reason: string; message: string }[] } | null }, type: string) =>
    s.status!.conditions.find((c) => c.type === type)!;
  // An empty CNI directory gets crisp's default network at start-up, so the node is network-ready.
  const cniDir = join(d.dir, 'cni');
  const started = await call(runtime, runtime.Status, { verbose: true });
  assert.equal(condition(started, 'RuntimeReady').status, true);
  assert.equal(condition(started, 'NetworkReady').status, true);
  assert.equal(JSON.parse(started.info.config!).root, d.root);
  // crictl info pastes every value into its JSON unescaped: each one must be JSON itself
  for (const [key, value] of Object.entries(started.info)) assert.doesNotThrow(() => JSON.parse(value), `info.${key} is JSON`);
  const written = readdirSync(cniDir);
  assert.equal(written.length, 1);
  assert.equal(JSON.parse(readFileSync(join(cniDir, written[0]!), 'utf8')).name, 'crisp');

  // NetworkReady follows the directory: without a config it is false, with a reason.
  rmSync(join(cniDir, written[0]!));
  const without = await call(runtime, runtime.Status, {});
  assert.equal(condition(without, 'NetworkReady').status, false);
  assert.equal(condition(without, 'NetworkReady').reason, 'NetworkPluginNotReady');
  writeFileSync(join(cniDir, '10-test.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: 'testnet', plugins: [{ type: 'bridge', bridge: 'crtest9', ipam: { type: 'host-local', subnet: '10.199.9.0/24' } }],
  }));
  const after = await call(runtime, runtime.Status, {});
  assert.equal(condition(after, 'NetworkReady').status, true);
  // A config whose plugin is not installed could network no pod: not ready, naming the plugin.
  writeFileSync(join(cniDir, '05-missing.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: 'missingnet', plugins: [{ type: 'crisp-no-such-plugin' }],
  }));
  const missing = condition(await call(runtime, runtime.Status, {}), 'NetworkReady');
  assert.equal(missing.status, false);
  assert.match(missing.message, /crisp-no-such-plugin.*not found/);
  rmSync(join(cniDir, '05-missing.conflist'));
  assert.equal(condition(await call(runtime, runtime.Status, {}), 'NetworkReady').status, true);
  assert.deepEqual(after.info, {}, 'no verbose info unless asked');

  const rc = await call(runtime, runtime.RuntimeConfig, {});
  assert.equal(rc.linux?.cgroup_driver, 'CGROUPFS');

  await call(runtime, runtime.UpdateRuntimeConfig, { runtime_config: { network_config: { pod_cidr: '10.244.1.0/24' } } });
  await call(runtime, runtime.UpdateRuntimeConfig, { runtime_config: { network_config: { pod_cidr: '10.244.1.0/24' } } });
  await assert.rejects(
    call(runtime, runtime.UpdateRuntimeConfig, { runtime_config: { network_config: { pod_cidr: 'not-a-cidr' } } }),
    (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /pod_cidr/.test(err.details),
  );
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'events', '--root', d.root, '--kind', 'runtime', '--json']);
  const types = stdout.trim().split('\n').map((l) => JSON.parse(l).event);
  assert.deepEqual(types.map((e: { type: string }) => e.type), ['DaemonStarted', 'RuntimeConfigUpdated'], 'an unchanged CIDR is not recorded twice');
  assert.equal(types[1].podCidr, '10.244.1.0/24');
});

test('a second daemon on a live socket is refused; SIGTERM shuts down cleanly and state survives', async (t) => {
  const dirs = testDirs();
  const d = await startDaemon([], dirs);
  t.after(() => d.cleanup());
  const other = testDirs();
  t.after(() => rmSync(other.dir, { recursive: true, force: true }));
  const second = await run(process.execPath, [CRISP_BIN, 'daemon', '--root', other.root, '--runroot', other.runroot, '--socket', d.socket,
    '--config', join(other.dir, 'crisp.conf'), '--enable-metrics=false'], { timeout: 20_000 }).then(() => null, (err) => err);
  assert.ok(second, 'the second daemon must fail');
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /another server is already listening/);

  await call(d.clients.runtime, d.clients.runtime.UpdateRuntimeConfig, { runtime_config: { network_config: { pod_cidr: '10.9.0.0/16' } } });
  assert.equal(await d.stop('SIGTERM'), 0);
  assert.ok(!existsSync(d.socket), 'the socket is removed on shutdown');
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'events', '--root', d.root, '--kind', 'runtime']);
  assert.match(stdout, /DaemonStopped/);

  const again = await startDaemon([], dirs);
  t.after(() => again.cleanup());
  const { stdout: replayed } = await run(process.execPath, [CRISP_BIN, 'replay', 'runtime', '--root', d.root]);
  assert.match(replayed, /"podCidr": "10.9.0.0\/16"/);
  assert.match(replayed, /DaemonStarted: "stopped" → "running"/);
});

test('a bad configuration value stops start-up with the key and file named', async (t) => {
  const dirs = testDirs();
  t.after(() => rmSync(dirs.dir, { recursive: true, force: true }));
  const file = join(dirs.dir, 'crisp.conf');
  writeFileSync(file, '[crisp.api]\nstream_port = "ten"\n');
  const err = await run(process.execPath, [CRISP_BIN, 'daemon', '--config', file, '--root', dirs.root, '--socket', dirs.socket], { timeout: 20_000 })
    .then(() => null, (e) => e);
  assert.ok(err);
  assert.equal(err.code, 1);
  assert.match(err.stderr, new RegExp(`${file}: crisp\\.api\\.stream_port = "ten" is invalid`));
  assert.ok(!existsSync(dirs.socket));
});

test('the daemon says at start-up when its runroot is not on a tmpfs, and is quiet when it is', async (t) => {
  const said = (d: { stderr(): string }) => d.stderr().includes('the runroot is not on a tmpfs');
  // Wherever the host's temporary directory is: the line follows what the runroot sits on.
  const plain = await startDaemon();
  t.after(() => plain.cleanup());
  assert.equal(said(plain), !onTmpfs(plain.dir), plain.stderr());

  const dirs = testDirs();
  let onRam: TestDaemon | undefined;
  // Registered before the mount, so a daemon that fails to start leaves no tmpfs behind.
  t.after(async () => {
    await onRam?.stop('SIGKILL');
    await unmountAllUnder(dirs.dir);
    if (onRam) await onRam.cleanup();
    else rmSync(dirs.dir, { recursive: true, force: true });
  });
  await mountTmpfs(dirs.runroot);
  onRam = await startDaemon([], dirs);
  assert.equal(said(onRam), false, onRam.stderr());
});
