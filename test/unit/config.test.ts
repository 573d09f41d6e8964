import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { loadConfig, parseDuration, renderConfig, applyFile } from '../../src/config/load.js';
import { DEFAULTS, KEYS } from '../../src/config/schema.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

function confDir(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-conf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('defaults apply when the default config file is absent', () => {
  const { config } = loadConfig({ configPath: '/etc/crisp/crisp.conf' });
  if (config.root === DEFAULTS.root) assert.equal(config.socket, '/run/crisp/crisp.sock');
});

test('layering: defaults, then the file, then drop-ins in lexical order, then flags', (t) => {
  const dir = confDir(t);
  const file = join(dir, 'crisp.conf');
  writeFileSync(file, '[crisp]\nroot = "/srv/a"\nlog_level = "debug"\n[crisp.api]\nstream_port = 1000\n');
  mkdirSync(`${file}.d`);
  writeFileSync(join(`${file}.d`, '20-b.conf'), '[crisp]\nroot = "/srv/b"\n');
  writeFileSync(join(`${file}.d`, '10-a.conf'), '[crisp]\nroot = "/srv/ignored-by-20"\n[crisp.api]\nstream_port = 2000\n');
  writeFileSync(join(`${file}.d`, 'README'), 'not a drop-in');
  const { config, files } = loadConfig({ configPath: file, flags: { 'log-level': 'warn', 'cni-plugin-dir': ['/x', '/y,/z'] } });
  assert.deepEqual(files, [file, join(`${file}.d`, '10-a.conf'), join(`${file}.d`, '20-b.conf')]);
  assert.equal(config.root, '/srv/b');
  assert.equal(config.streamPort, 2000);
  assert.equal(config.logLevel, 'warn');
  assert.deepEqual(config.cniPluginDirs, ['/x', '/y', '/z']);
  assert.equal(config.runroot, DEFAULTS.runroot);
});

test('a bad value fails with the key and the file named', (t) => {
  const dir = confDir(t);
  const cases: [string, RegExp][] = [
    ['[crisp.api]\nstream_port = 70000\n', /crisp\.api\.stream_port = 70000 is invalid: expected an integer from 0 to 65535/],
    ['[crisp]\nroot = "relative/path"\n', /crisp\.root = "relative\/path" is invalid: expected an absolute path/],
    ['[crisp]\nlog_level = "loud"\n', /crisp\.log_level = "loud" is invalid/],
    ['[crisp.image]\npull_progress_timeout = "soon"\n', /crisp\.image\.pull_progress_timeout = "soon" is invalid: expected a duration/],
    ['[crisp.network]\ncni_plugin_dirs = "/usr/lib/cni"\n', /crisp\.network\.cni_plugin_dirs .* expected a list of absolute paths/],
    ['[crisp]\nrooot = "/x"\n', /unknown key crisp\.rooot/],
    ['[crisp]\nroot = \n', /not valid TOML \(line 2/],
    ['crisp = 3\n', /\[crisp\] must be a table/],
    ['[crisp.runtime.runtimes.Kata]\nruntime_path = "kata"\n', /\[crisp\.runtime\.runtimes\.Kata\]: a handler name must be a DNS label/],
    ['[crisp.runtime.runtimes.kata]\nruntime_root = "/run/kata"\n', /\[crisp\.runtime\.runtimes\.kata\] needs runtime_path/],
    ['[crisp.runtime.runtimes.kata]\nruntime_path = "kata"\nruntime_root = "run"\n', /runtime_root = "run" is invalid: expected an absolute path/],
    ['[crisp.runtime.runtimes.kata]\nruntime_path = "kata"\nprivileged = true\n', /unknown key crisp\.runtime\.runtimes\.kata\.privileged/],
  ];
  for (const [text, pattern] of cases) {
    const file = join(dir, 'bad.conf');
    writeFileSync(file, text);
    assert.throws(() => loadConfig({ configPath: file }), (err: Error) => pattern.test(err.message) && err.message.startsWith(file), text);
  }
  assert.throws(() => loadConfig({ configPath: join(dir, 'missing.conf') }), /no such configuration file/);
  assert.throws(() => loadConfig({ configPath: join(dir, 'missing2.conf'), flags: {} }), /missing2\.conf/);
  const ok = join(dir, 'ok.conf');
  writeFileSync(ok, '');
  assert.throws(() => loadConfig({ configPath: ok, flags: { 'stream-port': 'eighty' } }), /: --stream-port: crisp\.api\.stream_port = "eighty" is invalid/);
});

test('runtime handler tables: one per handler, merged across files', (t) => {
  const dir = confDir(t);
  const file = join(dir, 'crisp.conf');
  writeFileSync(file, '[crisp.runtime.runtimes.crun]\nruntime_path = "/usr/bin/crun"\n');
  mkdirSync(`${file}.d`);
  writeFileSync(join(`${file}.d`, '10-kata.conf'), '[crisp.runtime.runtimes.kata]\nruntime_path = "kata-runtime"\nruntime_root = "/run/kata"\n');
  const { config } = loadConfig({ configPath: file });
  assert.deepEqual(config.runtimes, { crun: { runtimePath: '/usr/bin/crun' }, kata: { runtimePath: 'kata-runtime', runtimeRoot: '/run/kata' } });
  assert.deepEqual(DEFAULTS.runtimes, {}, 'the defaults are not changed by loading');
  const rendered = join(dir, 'rendered.conf');
  writeFileSync(rendered, renderConfig(config));
  assert.deepEqual(loadConfig({ configPath: rendered }).config.runtimes, config.runtimes, 'crisp config reads back the same handlers');
});

test('durations read like Go durations', () => {
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('0s'), 0);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('5 minutes'), undefined);
});

test('crisp config output documents every key and reads back as the same configuration', (t) => {
  const dir = confDir(t);
  const custom = { ...DEFAULTS, root: '/srv/crisp', streamPort: 10010, pullProgressTimeoutMs: 90_000, cniPluginDirs: ['/opt/cni/bin'] };
  const text = renderConfig(custom);
  for (const key of KEYS) {
    assert.match(text, new RegExp(`# ${key.doc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*\\n${key.key} = `), key.key);
  }
  parseToml(text);
  const file = join(dir, 'rendered.conf');
  writeFileSync(file, text);
  assert.deepEqual(applyFile(DEFAULTS, file), custom);
});

test('contrib/crisp.conf is `crisp config --example`: every key, commented out, and it loads as the defaults', () => {
  const example = readFileSync(join(PACKAGE_ROOT, 'contrib', 'crisp.conf'), 'utf8');
  assert.equal(example, `${renderConfig(DEFAULTS, { example: true })}\n`, 'regenerate it with: node bin/crisp.js config --example > contrib/crisp.conf');
  assert.ok(!/^[a-z_]+ = /m.test(example), 'no key is set');
});
