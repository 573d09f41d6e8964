import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compareCniVersions,
  defaultNetworkConfig,
  listConfigFiles,
  loadNetworkConfig,
  parseNetworkConfig,
  writeDefaultConfig,
} from '../../src/actors/network/cni-config.js';
import { isCrispError } from '../../src/errors.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'crisp-test-cniconf-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const list = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'net1', plugins: [{ type: 'bridge', bridge: 'br0' }], ...over });

function rejectsWith(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => isCrispError(e, 'FailedPrecondition') && pattern.test(e.message));
}

test('a conflist parses into name, version and plugins', () => {
  const c = parseNetworkConfig(list({ disableCheck: 'true' }), '/etc/cni/net.d/10-a.conflist');
  assert.equal(c.name, 'net1');
  assert.equal(c.cniVersion, '1.0.0');
  assert.equal(c.disableCheck, true);
  assert.equal(c.disableGC, false);
  assert.deepEqual(c.plugins, [{ type: 'bridge', bridge: 'br0' }]);
  assert.deepEqual(JSON.parse(c.bytes).plugins, c.plugins);
});

test('a single-plugin .conf is wrapped into a list, keeping its own keys', () => {
  const c = parseNetworkConfig(JSON.stringify({ cniVersion: '0.4.0', name: 'single', type: 'ptp', ipMasq: true }), 'x.conf');
  assert.equal(c.name, 'single');
  assert.equal(c.cniVersion, '0.4.0');
  assert.deepEqual(c.plugins, [{ type: 'ptp', ipMasq: true }]);
});

test('cniVersions picks the highest supported version', () => {
  const c = parseNetworkConfig(list({ cniVersion: undefined, cniVersions: ['0.3.1', '1.0.0', '9.9.9'] }), 'f');
  assert.equal(c.cniVersion, '1.0.0');
});

test('invalid configs are rejected with the file and key named', () => {
  const file = '/etc/cni/net.d/10-bad.conflist';
  rejectsWith(() => parseNetworkConfig('{ not json', file), /10-bad\.conflist: invalid JSON/);
  rejectsWith(() => parseNetworkConfig('[]', file), /10-bad\.conflist: the top level must be a JSON object/);
  rejectsWith(() => parseNetworkConfig(list({ name: 3 }), file), /10-bad\.conflist: name: must be a non-empty string/);
  rejectsWith(() => parseNetworkConfig(list({ name: 'a b' }), file), /: name: "a b"/);
  rejectsWith(() => parseNetworkConfig(list({ cniVersion: undefined }), file), /: cniVersion: missing/);
  rejectsWith(() => parseNetworkConfig(list({ cniVersion: '2.0.0' }), file), /: cniVersion: 2\.0\.0 not supported/);
  rejectsWith(() => parseNetworkConfig(list({ cniVersion: 'one' }), file), /: cniVersion: "one" is not a version/);
  rejectsWith(() => parseNetworkConfig(list({ plugins: [] }), file), /: plugins: must list at least one plugin/);
  rejectsWith(() => parseNetworkConfig(list({ plugins: {} }), file), /: plugins: must be an array/);
  rejectsWith(() => parseNetworkConfig(list({ plugins: [{ type: 'bridge' }, {}] }), file), /: plugins\[1\]\.type: must be a non-empty string/);
  rejectsWith(() => parseNetworkConfig(list({ plugins: [{ type: '../bin/sh' }] }), file), /: plugins\[0\]\.type: .* not a plugin binary name/);
  rejectsWith(() => parseNetworkConfig(list({ plugins: [{ type: 'portmap', capabilities: { portMappings: 'yes' } }] }), file), /plugins\[0\]\.capabilities\.portMappings: must be a boolean/);
  rejectsWith(() => parseNetworkConfig(list({ disableGC: 'sometimes' }), file), /: disableGC: must be a boolean/);
  rejectsWith(() => parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n' }), file), /: plugins: missing/);
});

test('the first config file in lexical order is loaded; other files are ignored', async () => {
  await withDir(async (dir) => {
    await assert.rejects(loadNetworkConfig(dir), (e: unknown) => isCrispError(e, 'FailedPrecondition') && e.message.includes(dir));
    await writeFile(join(dir, '20-b.conflist'), list({ name: 'b' }));
    await writeFile(join(dir, '10-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'bridge' }));
    await writeFile(join(dir, '00-readme.txt'), 'not a config');
    await writeFile(join(dir, '05-z.json.bak'), 'nor this');
    assert.deepEqual(await listConfigFiles(dir), ['10-a.conf', '20-b.conflist']);
    const c = await loadNetworkConfig(dir);
    assert.equal(c.name, 'a');
    assert.equal(c.source, join(dir, '10-a.conf'));
    await writeFile(join(dir, '01-broken.json'), '{');
    await assert.rejects(loadNetworkConfig(dir), (e: unknown) => isCrispError(e, 'FailedPrecondition') && e.message.includes('01-broken.json'));
  });
  assert.deepEqual(await listConfigFiles('/nonexistent/crisp-test-dir'), []);
});

test('writeDefaultConfig writes bridge + host-local + portmap + firewall once, into an empty dir', async () => {
  await withDir(async (dir) => {
    const confDir = join(dir, 'net.d');
    const first = await writeDefaultConfig(confDir, { name: 'crisp', bridge: 'crisp0', subnet: '10.85.0.0/16' });
    assert.deepEqual(first, { written: true, path: join(confDir, '10-crisp.conflist') });
    const c = await loadNetworkConfig(confDir);
    assert.equal(c.name, 'crisp');
    const [bridge, portmap, firewall] = c.plugins;
    assert.equal(bridge?.type, 'bridge');
    assert.equal(bridge?.bridge, 'crisp0');
    assert.equal(bridge?.isGateway, true);
    assert.equal(bridge?.ipMasq, true);
    assert.equal(bridge?.hairpinMode, true);
    assert.deepEqual((bridge!.ipam as { ranges: unknown }).ranges, [[{ subnet: '10.85.0.0/16' }]]);
    assert.deepEqual(portmap, { type: 'portmap', capabilities: { portMappings: true }, snat: true });
    assert.equal(firewall?.type, 'firewall');
    const second = await writeDefaultConfig(confDir, { name: 'other', bridge: 'b1', subnet: '10.1.0.0/16' });
    assert.deepEqual(second, { written: false, path: first.path });
    assert.equal(JSON.parse(await readFile(first.path, 'utf8')).name, 'crisp');

    const busy = join(dir, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, '99-mine.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'mine', type: 'ptp' }));
    assert.deepEqual(await writeDefaultConfig(busy, { name: 'crisp', bridge: 'crisp0', subnet: '10.85.0.0/16' }), {
      written: false,
      path: join(busy, '99-mine.conf'),
    });
  });
});

test('default config parameters are validated, naming the field', () => {
  const ok = { name: 'crisp', bridge: 'crisp0', subnet: '10.85.0.0/16' };
  const bad = (over: object, field: RegExp) =>
    assert.throws(() => defaultNetworkConfig({ ...ok, ...over }), (e: unknown) => isCrispError(e, 'InvalidArgument') && field.test(e.message));
  bad({ bridge: 'a-bridge-name-too-long' }, /^bridge:/);
  bad({ subnet: '10.85.0.0' }, /^subnet:/);
  bad({ subnet: '10.85.0.300/16' }, /^subnet:/);
  bad({ subnet: '10.85.0.0/31' }, /^subnet:/);
  bad({ name: 'no spaces' }, /^name:/);
  assert.equal((defaultNetworkConfig({ ...ok, ipamDataDir: '/x' }).plugins as { ipam?: { dataDir?: string } }[])[0]?.ipam?.dataDir, '/x');
});

test('versions compare numerically', () => {
  assert.ok(compareCniVersions('0.10.0', '0.4.0') > 0);
  assert.ok(compareCniVersions('1.0.0', '1.1.0') < 0);
  assert.equal(compareCniVersions('0.3.1', '0.3.1'), 0);
  assert.throws(() => compareCniVersions('1.0', '1.0.0'));
});
