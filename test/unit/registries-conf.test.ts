import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import {
  loadRegistriesConfig,
  parseRegistriesConf,
  prefixMatchLength,
  resolvePullEndpoints,
  emptyRegistriesConfig,
  type RegistriesConfig,
} from '../../src/actors/image-pull/registries-conf.js';
import { parseReference } from '../../src/actors/image-pull/reference.js';
import { isCrispError } from '../../src/errors.js';

const D = 'sha256:' + 'b'.repeat(64);

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'crisp-test-regconf-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function config(text: string): RegistriesConfig {
  return { ...emptyRegistriesConfig(), ...parseRegistriesConf(text, 'test.conf') };
}

const endpoints = (c: RegistriesConfig, ref: string) =>
  resolvePullEndpoints(c, parseReference(ref)).map((e) => `${e.insecure ? 'http' : 'https'}://${e.reference.toString()}${e.mirror ? ' (mirror)' : ''}`);

test('no matching entry: the reference\'s own registry, over HTTPS', () => {
  assert.deepEqual(endpoints(emptyRegistriesConfig(), 'busybox'), ['https://docker.io/library/busybox:latest']);
  assert.deepEqual(endpoints(emptyRegistriesConfig(), '127.0.0.1:5000/x'), ['https://127.0.0.1:5000/x:latest']);
});

test('mirrors in order, then the registry; insecure per endpoint', () => {
  const c = config(`
unqualified-search-registries = ["docker.io", "quay.io"]
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5001/hub"
insecure = true
[[registry.mirror]]
location = "mirror.example.com"
`);
  assert.deepEqual(c.unqualifiedSearchRegistries, ['docker.io', 'quay.io']);
  assert.deepEqual(endpoints(c, 'busybox:1'), [
    'http://127.0.0.1:5001/hub/library/busybox:1 (mirror)',
    'https://mirror.example.com/library/busybox:1 (mirror)',
    'https://docker.io/library/busybox:1',
  ]);
});

test('location rewrites the matched prefix; longest prefix wins; component boundaries respected', () => {
  const c = config(`
[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/mirror/foo"
insecure = true
[[registry]]
prefix = "example.com"
location = "other.example.com"
`);
  assert.deepEqual(endpoints(c, 'example.com/foo/bar:1'), ['http://internal.example.com/mirror/foo/bar:1']);
  assert.deepEqual(endpoints(c, 'example.com/foobar:1'), ['https://other.example.com/foobar:1']);
  assert.deepEqual(endpoints(c, 'example.community/x'), ['https://example.community/x:latest']);
  assert.equal(prefixMatchLength('example.com/foo', 'example.com/fo'), -1);
  assert.equal(prefixMatchLength('example.com/foo', 'example.com'), 'example.com'.length);
});

test('wildcard prefixes match subdomains only, and lose to a longer exact prefix', () => {
  const c = config(`
[[registry]]
prefix = "*.example.com"
insecure = true
[[registry.mirror]]
location = "cache.local/sub"
[[registry]]
prefix = "special.example.com/team"
blocked = true
[[registry.mirror]]
location = "cache.local/team"
`);
  assert.deepEqual(endpoints(c, 'a.example.com/app:1'), ['https://cache.local/sub/app:1 (mirror)', 'http://a.example.com/app:1']);
  assert.deepEqual(endpoints(c, 'x.y.example.com:5000/app:1'), ['https://cache.local/sub/app:1 (mirror)', 'http://x.y.example.com:5000/app:1']);
  assert.deepEqual(endpoints(c, 'example.com/app:1'), ['https://example.com/app:1']);
  assert.deepEqual(endpoints(c, 'special.example.com/team/app:1'), ['https://cache.local/team/app:1 (mirror)']);
});

test('blocked registry with no mirror is an error naming the prefix', () => {
  const c = config(`
[[registry]]
prefix = "evil.example.com"
blocked = true
`);
  assert.throws(() => endpoints(c, 'evil.example.com/x'), (e: unknown) => isCrispError(e, 'FailedPrecondition') && /"evil.example.com" is blocked/.test(e.message));
});

test('mirror-by-digest-only and pull-from-mirror', () => {
  const c = config(`
[[registry]]
prefix = "docker.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m1.local"
[[registry]]
prefix = "quay.io"
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
`);
  assert.deepEqual(endpoints(c, 'busybox:1'), ['https://docker.io/library/busybox:1']);
  assert.deepEqual(endpoints(c, `busybox@${D}`), [`https://m1.local/library/busybox@${D} (mirror)`, `https://docker.io/library/busybox@${D}`]);
  assert.deepEqual(endpoints(c, 'quay.io/a/b:1'), ['https://tags.local/a/b:1 (mirror)', 'https://quay.io/a/b:1']);
  assert.deepEqual(endpoints(c, `quay.io/a/b@${D}`), [`https://digests.local/a/b@${D} (mirror)`, `https://quay.io/a/b@${D}`]);
});

test('drop-ins: lexical order, later wins per prefix and for the search list', async (t) => {
  const dir = await tempDir(t);
  const main = join(dir, 'registries.conf');
  await writeFile(main, `
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
[[registry.mirror]]
location = "from-main.local"
[[registry]]
prefix = "quay.io"
insecure = true
`);
  await mkdir(join(dir, 'registries.conf.d'));
  await writeFile(join(dir, 'registries.conf.d', '20-b.conf'), `
[[registry]]
prefix = "docker.io"
[[registry.mirror]]
location = "from-20.local"
`);
  await writeFile(join(dir, 'registries.conf.d', '10-a.conf'), `
unqualified-search-registries = ["registry.local"]
[[registry]]
prefix = "docker.io"
[[registry.mirror]]
location = "from-10.local"
`);
  await writeFile(join(dir, 'registries.conf.d', 'ignored.txt'), 'this = is not toml [');
  const c = await loadRegistriesConfig(main);
  assert.deepEqual(c.sources, [main, join(dir, 'registries.conf.d', '10-a.conf'), join(dir, 'registries.conf.d', '20-b.conf')]);
  assert.deepEqual(c.unqualifiedSearchRegistries, ['registry.local']);
  assert.deepEqual(endpoints(c, 'busybox'), ['https://from-20.local/library/busybox:latest (mirror)', 'https://docker.io/library/busybox:latest']);
  assert.deepEqual(endpoints(c, 'quay.io/x'), ['http://quay.io/x:latest']);
});

test('a missing file (and drop-in directory) means defaults', async (t) => {
  const dir = await tempDir(t);
  const c = await loadRegistriesConfig(join(dir, 'nope.conf'));
  assert.deepEqual(c, emptyRegistriesConfig());
});

test('drop-ins apply even when the main file is missing', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'r.conf.d'));
  await writeFile(join(dir, 'r.conf.d', 'x.conf'), 'unqualified-search-registries = ["a.local"]\n');
  const c = await loadRegistriesConfig(join(dir, 'r.conf'));
  assert.deepEqual(c.unqualifiedSearchRegistries, ['a.local']);
});

const errorCases: [string, string, RegExp][] = [
  ['bad TOML', '[[registry]\nprefix = "x"', /test\.conf: invalid TOML/],
  ['search list of the wrong type', 'unqualified-search-registries = "docker.io"', /test\.conf: unqualified-search-registries: expected an array of strings/],
  ['insecure as a string', '[[registry]]\nprefix = "a.io"\ninsecure = "yes"', /test\.conf: registry\[0\]\.insecure: expected a boolean, got a string/],
  ['location as a number', '[[registry]]\nprefix = "a.io"\nlocation = 5', /registry\[0\]\.location: expected a string, got a number/],
  ['mirror without location', '[[registry]]\nprefix = "a.io"\n[[registry.mirror]]\ninsecure = true', /registry\[0\]\.mirror\[0\]\.location: a mirror needs a location/],
  ['mirror as a table', '[registry]\nprefix = "a.io"', /test\.conf: registry: expected an array of tables/],
  ['entry without prefix or location', '[[registry]]\ninsecure = true', /registry\[0\]\.prefix: a registry needs a prefix or a location/],
  ['bad wildcard', '[[registry]]\nprefix = "*.example.com/foo"', /registry\[0\]\.prefix: wildcard prefix/],
  ['wildcard in the middle', '[[registry]]\nprefix = "a.*.com"', /registry\[0\]\.prefix:.*leading/],
  ['URL scheme in a location', '[[registry]]\nprefix = "a.io"\nlocation = "https://a.io"', /registry\[0\]\.location: must not contain a URL scheme/],
  ['bad pull-from-mirror', '[[registry]]\nprefix = "a.io"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"', /pull-from-mirror: must be/],
  ['duplicate prefix', '[[registry]]\nprefix = "a.io"\n[[registry]]\nlocation = "a.io"', /prefix "a.io" is defined twice/],
  ['version 1 format', '[registries.search]\nregistries = ["docker.io"]', /version 1 format/],
];

for (const [name, text, why] of errorCases) {
  test(`error: ${name}`, () => {
    assert.throws(() => parseRegistriesConf(text, 'test.conf'), (e: unknown) => isCrispError(e, 'InvalidArgument') && why.test(e.message));
  });
}

test('an error in a drop-in names that file', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'r.conf.d'));
  const bad = join(dir, 'r.conf.d', '50-bad.conf');
  await writeFile(bad, '[[registry]]\nprefix = "a.io"\nblocked = 1\n');
  await assert.rejects(loadRegistriesConfig(join(dir, 'r.conf')), (e: unknown) => isCrispError(e, 'InvalidArgument') && e.message.startsWith(`${bad}: registry[0].blocked`));
});

test('unknown keys are ignored with a warning; known non-pull keys silently', () => {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  const c = parseRegistriesConf('short-name-mode = "enforcing"\nfancy = 1\n[aliases]\n"x" = "docker.io/library/x"\n[[registry]]\nprefix = "a.io"\ncolour = "red"\n', 'test.conf', logger);
  assert.equal(c.registries.length, 1);
  assert.equal(lines.length, 2);
  assert.match(lines.join(''), /"key":"fancy"/);
  assert.match(lines.join(''), /"key":"registry\[0\]\.colour"/);
});
