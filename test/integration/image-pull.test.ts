// Pulls the fixture images from a real docker-registry (and through the auth/fault proxy)
// into real blob and layer stores.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, readlink, rm, stat, lstat, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { BlobStore } from '../../src/actors/storage/blob-store.js';
import { LayerStore } from '../../src/actors/storage/layer-store.js';
import { mountOverlay } from '../../src/actors/storage/overlay.js';
import { unmountOwn as unmount } from '../../src/host/mounts.js';
import { getXattrs } from '../../src/actors/storage/native.js';
import { ImagePuller, type ImagePullerOptions, type StoredLayer } from '../../src/actors/image-pull/puller.js';
import { parseRegistriesConf, emptyRegistriesConfig, type RegistriesConfig } from '../../src/actors/image-pull/registries-conf.js';
import { isCrispError } from '../../src/errors.js';
import { hostPlatform } from '../../src/actors/image-pull/platform.js';
import {
  startRegistry,
  startRegistryProxy,
  failFirst,
  resetMidBody,
  stallAfterHeaders,
  trickle,
  corruptBlob,
  type TestRegistry,
  type RegistryProxy,
  type ProxyOptions,
} from '../helpers/registry.js';
import { fixtures, pushFixtures, imageFor, MULTI_LAYER_EXPECT, type BuiltImage, type BuiltIndex } from '../helpers/oci-images.js';

let registry: TestRegistry;
const fx = fixtures();

before(async () => {
  registry = await startRegistry();
  await pushFixtures(registry.url);
});
after(async () => {
  await registry?.stop();
});

const FAST_RETRY = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 };

/** registries.conf marking the given loopback hosts insecure (plain HTTP). */
function insecure(...hosts: string[]): RegistriesConfig {
  const text = hosts.map((h) => `[[registry]]\nprefix = "${h}"\ninsecure = true\n`).join('');
  return { ...emptyRegistriesConfig(), ...parseRegistriesConf(text, 'test.conf') };
}

interface Env {
  root: string;
  blobs: BlobStore;
  layers: LayerStore;
  puller: ImagePuller;
}

async function env(t: { after(fn: () => Promise<void>): void }, opts: Partial<ImagePullerOptions> & { hosts?: string[] } = {}): Promise<Env> {
  const root = await mkdtemp(join(tmpdir(), 'crisp-test-pull-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const blobs = new BlobStore(root);
  const layers = new LayerStore(root);
  t.after(() => layers.close());
  const { hosts, ...rest } = opts;
  const puller = new ImagePuller({
    blobs,
    layers,
    registries: insecure(...(hosts ?? [registry.host])),
    retry: FAST_RETRY,
    ...rest,
  });
  return { root, blobs, layers, puller };
}

async function proxy(t: { after(fn: () => Promise<void>): void }, opts: Omit<ProxyOptions, 'upstream'>): Promise<RegistryProxy> {
  const p = await startRegistryProxy({ upstream: registry.host, ...opts });
  t.after(() => p.stop());
  return p;
}

const ref = (host: string, f: { repo: string; tag: string }) => `${host}/${f.repo}:${f.tag}`;
const single = (f: { image: BuiltImage | BuiltIndex }) => f.image as BuiltImage;

/** Nothing half-made: no temp files in either store. */
async function assertNoTemp(root: string): Promise<void> {
  const list = async (d: string) => readdir(d).catch(() => [] as string[]);
  assert.deepEqual(await list(join(root, 'blobs', 'tmp')), [], 'blob temp dir is empty');
  assert.deepEqual(await list(join(root, 'layers', 'tmp')), [], 'layer temp dir is empty');
}

test('pulls the single-layer busybox image', async (t) => {
  const e = await env(t);
  const img = single(fx.busybox);
  const stored: StoredLayer[] = [];
  const r = await e.puller.pull(ref(registry.host, fx.busybox), { onLayerStored: (l) => stored.push(l) });
  assert.equal(r.reference, `${registry.host}/crisp-test/busybox:latest`);
  assert.equal(r.imageId, img.config.digest);
  assert.equal(r.manifestDigest, img.manifest.digest);
  assert.equal(r.indexDigest, undefined);
  assert.equal(r.repoTag, `${registry.host}/crisp-test/busybox:latest`);
  assert.equal(r.repoDigest, `${registry.host}/crisp-test/busybox@${img.manifest.digest}`);
  assert.equal(r.size, img.config.size + img.layers[0]!.size);
  assert.equal(r.servedBy, registry.host);
  assert.deepEqual(r.config.rootfs.diff_ids, [img.layers[0]!.diffId]);
  assert.deepEqual(
    r.layers.map((l) => [l.digest, l.diffId, l.chainId]),
    [[img.layers[0]!.digest, img.layers[0]!.diffId, img.layers[0]!.diffId]],
  );
  assert.deepEqual(stored.map((l) => [l.chainId, l.reused]), [[img.layers[0]!.diffId, false]]);
  assert.ok(await e.layers.has(r.layers[0]!.chainId));
  const diff = e.layers.path(r.layers[0]!.chainId);
  assert.equal((await stat(join(diff, 'bin/busybox'))).mode & 0o7777, 0o755);
  assert.equal(await readlink(join(diff, 'bin/sh')), 'busybox');
  assert.match(await readFile(join(diff, 'etc/passwd'), 'utf8'), /^appuser:x:1001:1001:/m);
  // Manifest, config and layer are all in the blob store.
  assert.deepEqual(await e.blobs.list(), [img.manifest.digest, img.config.digest, img.layers[0]!.digest].sort());
  await assertNoTemp(e.root);
});

test('pulls the multi-layer Docker image: whiteouts, opaque dir, dir→file, links, ownership', async (t) => {
  const e = await env(t);
  const img = single(fx.multiLayer);
  const r = await e.puller.pull(ref(registry.host, fx.multiLayer));
  assert.equal(r.manifestMediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(r.layers.length, 3);
  assert.deepEqual(r.layers.map((l) => l.diffId), img.layers.map((l) => l.diffId));
  for (const l of r.layers) assert.ok(await e.layers.has(l.chainId), `layer ${l.chainId} stored`);
  const [, adds, changes] = r.layers.map((l) => e.layers.path(l.chainId));
  const owned = await stat(join(adds!, MULTI_LAYER_EXPECT.owned.path));
  assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o7777], [1234, 5678, 0o640]);
  const wh = await lstat(join(changes!, 'data/remove-me.txt'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'file whiteout is a 0/0 character device');
  assert.equal((await getXattrs(join(changes!, 'data/opaque'))).get('trusted.overlay.opaque')?.toString(), 'y');

  // The merged view, through a read-only overlay of the three layers.
  const target = join(e.root, 'merged');
  await mkdir(target);
  await mountOverlay({ lowerDirs: r.layers.map((l) => e.layers.path(l.chainId)), target, readOnly: true, linkDir: e.layers.linkDir });
  try {
    for (const p of MULTI_LAYER_EXPECT.present) await lstat(join(target, p));
    for (const p of MULTI_LAYER_EXPECT.absent) {
      await assert.rejects(lstat(join(target, p)), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ENOTDIR', `${p} must be gone`);
    }
    assert.equal(await readFile(join(target, 'data/becomes-file'), 'utf8'), 'now a file\n');
    assert.deepEqual(await readdir(join(target, 'data/opaque')), ['new.txt']);
    assert.equal(await readlink(join(target, 'data/link-to-keep')), 'keep.txt');
    assert.equal((await stat(join(target, 'data/hl-a'))).ino, (await stat(join(target, 'data/hl-b'))).ino);
    assert.equal((await stat(join(target, 'data/hard-keep'))).ino, (await stat(join(target, 'data/keep.txt'))).ino);
  } finally {
    await unmount(target);
  }
});

for (const name of ['dockerList', 'ociIndex'] as const) {
  test(`multi-platform ${name}: picks this node's platform, or the one asked for`, async (t) => {
    const f = fx[name];
    const index = f.image as BuiltIndex;
    const host = hostPlatform();
    const e = await env(t);
    const r = await e.puller.pull(ref(registry.host, f));
    const mine = imageFor(index, host.architecture);
    assert.equal(r.indexDigest, index.manifest.digest);
    assert.equal(r.manifestDigest, mine.manifest.digest);
    assert.equal(r.imageId, mine.config.digest);
    assert.equal(r.repoDigest, `${registry.host}/${f.repo}@${index.manifest.digest}`);
    assert.equal(await readFile(join(e.layers.path(r.layers[1]!.chainId), 'etc/arch'), 'utf8'), `${host.architecture}\n`);

    const otherArch = host.architecture === 'arm64' ? 'amd64' : 'arm64';
    const e2 = await env(t, { platform: { os: 'linux', architecture: otherArch, ...(otherArch === 'arm64' ? { variant: 'v8' } : {}) } });
    const r2 = await e2.puller.pull(ref(registry.host, f));
    assert.equal(r2.imageId, imageFor(index, otherArch).config.digest);
    assert.equal(await readFile(join(e2.layers.path(r2.layers[1]!.chainId), 'etc/arch'), 'utf8'), `${otherArch}\n`);

    const e3 = await env(t, { platform: { os: 'linux', architecture: 's390x' } });
    await assert.rejects(e3.puller.pull(ref(registry.host, f)), (err: unknown) => {
      assert.ok(isCrispError(err, 'FailedPrecondition'));
      assert.match(err.message, /no manifest for platform linux\/s390x/);
      assert.match(err.message, /linux\/amd64/);
      assert.match(err.message, /linux\/arm64/);
      return true;
    });
    assert.deepEqual(await e3.blobs.list(), []);
  });
}

test('USER by number and by name come through in the config', async (t) => {
  const e = await env(t);
  const a = await e.puller.pull(ref(registry.host, fx.userNumeric));
  const b = await e.puller.pull(ref(registry.host, fx.userNamed));
  assert.equal(a.config.config?.['User'], '1002');
  assert.equal(b.config.config?.['User'], 'appuser');
  assert.equal(b.config.config?.['WorkingDir'], '/home/appuser');
  // Same base layer: the second image reuses it.
  assert.equal(a.layers[0]!.chainId, b.layers[0]!.chainId);
});

test('zstd and uncompressed layers', async (t) => {
  const e = await env(t);
  const z = await e.puller.pull(ref(registry.host, fx.zstd));
  assert.equal(z.layers[1]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.equal(await readFile(join(e.layers.path(z.layers[1]!.chainId), 'zstd/hello.txt'), 'utf8'), 'compressed with zstd\n');
  const u = await e.puller.pull(ref(registry.host, fx.uncompressed));
  assert.equal(u.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  assert.equal(await readFile(join(e.layers.path(u.layers[0]!.chainId), 'plain/file.txt'), 'utf8'), 'an uncompressed layer\n');
});

test('pull by digest verifies the manifest against it', async (t) => {
  const e = await env(t);
  const img = single(fx.busybox);
  const r = await e.puller.pull(`${registry.host}/${fx.busybox.repo}@${img.manifest.digest}`);
  assert.equal(r.repoTag, undefined);
  assert.equal(r.repoDigest, `${registry.host}/${fx.busybox.repo}@${img.manifest.digest}`);
  // A digest the registry knows under another name: it serves a different manifest → not found.
  const wrong = single(fx.userNamed).manifest.digest;
  await assert.rejects(e.puller.pull(`${registry.host}/${fx.busybox.repo}@${wrong}`), (err: unknown) => isCrispError(err, 'NotFound'));
});

test('a short name resolves through unqualified-search-registries', async (t) => {
  const conf = parseRegistriesConf(`unqualified-search-registries = ["127.0.0.1:1", "${registry.host}"]\n[[registry]]\nprefix = "${registry.host}"\ninsecure = true\n[[registry]]\nprefix = "127.0.0.1:1"\ninsecure = true\n`, 't');
  const e = await env(t, { registries: { ...emptyRegistriesConfig(), ...conf }, retry: { attempts: 1 } });
  const r = await e.puller.pull('crisp-test/busybox');
  assert.equal(r.reference, `${registry.host}/crisp-test/busybox:latest`);
});

// ---- auth

const USERS = { alice: 'Pa55-w0rd-alice-7f3e' };

test('bearer token auth: username/password, auth field, identity token, registry token', async (t) => {
  const p = await proxy(t, { auth: 'bearer', users: USERS, refreshTokens: ['refresh-tok-91ac'], staticTokens: ['static-tok-55de'] });
  const cases = [
    { username: 'alice', password: USERS.alice },
    { auth: Buffer.from(`alice:${USERS.alice}`).toString('base64') },
    { identity_token: 'refresh-tok-91ac' },
    { registry_token: 'static-tok-55de' },
  ];
  for (const auth of cases) {
    const e = await env(t, { hosts: [p.host] });
    const r = await e.puller.pull(ref(p.host, fx.busybox), { auth });
    assert.equal(r.imageId, single(fx.busybox).config.digest, `pull with ${Object.keys(auth).join(',')}`);
  }
  // The token is fetched once per pull and reused for its requests.
  assert.equal(p.tokensIssued(), 3);
  assert.ok(p.requests.filter((r) => r.path.startsWith('/v2/crisp-test/')).every((r) => r.status === 200 && r.auth === 'bearer'));
});

test('anonymous bearer tokens', async (t) => {
  const p = await proxy(t, { auth: 'bearer', anonymousTokens: true });
  const e = await env(t, { hosts: [p.host] });
  await e.puller.pull(ref(p.host, fx.busybox));
  assert.equal(p.tokensIssued(), 1);
});

test('basic auth', async (t) => {
  const p = await proxy(t, { auth: 'basic', users: USERS });
  const e = await env(t, { hosts: [p.host] });
  await e.puller.pull(ref(p.host, fx.busybox), { auth: { username: 'alice', password: USERS.alice } });
  assert.ok(p.requests.some((r) => r.auth === 'basic' && r.status === 200));
  await assert.rejects(e.puller.pull(ref(p.host, fx.userNamed)), (err: unknown) => isCrispError(err, 'FailedPrecondition') && /username and password/.test(err.message));
});

test('wrong or missing credentials: unauthorized errors that say so', async (t) => {
  const p = await proxy(t, { auth: 'bearer', users: USERS });
  const e = await env(t, { hosts: [p.host] });
  await assert.rejects(e.puller.pull(ref(p.host, fx.busybox), { auth: { username: 'alice', password: 'wrong-password-x' } }), (err: unknown) => {
    assert.ok(isCrispError(err, 'FailedPrecondition'));
    assert.match(err.message, /refused the credentials \(HTTP 401\)/);
    return true;
  });
  await assert.rejects(e.puller.pull(ref(p.host, fx.busybox)), (err: unknown) => isCrispError(err, 'FailedPrecondition') && /HTTP 401/.test(err.message));
  assert.deepEqual(await e.blobs.list(), []);
});

// ---- failures and retries

test('transient 503s and a connection cut mid-blob are retried', async (t) => {
  const manifest503 = failFirst(/\/manifests\//, 503, 2);
  const p = await proxy(t, { auth: 'none', intercept: manifest503 });
  const e = await env(t, { hosts: [p.host] });
  await e.puller.pull(ref(p.host, fx.userNumeric));
  assert.equal(manifest503.hits(), 2);
  assert.equal(p.requests.filter((r) => r.path.includes('/manifests/') && r.status === 503).length, 2);

  const layer = single(fx.zstd).layers[1]!.digest;
  const cut = resetMidBody(new RegExp(`/blobs/${layer}`), 2);
  p.setInterceptor(cut);
  const r = await e.puller.pull(ref(p.host, fx.zstd));
  assert.equal(cut.hits(), 2);
  assert.ok(await e.layers.has(r.layers[1]!.chainId));
  await assertNoTemp(e.root);
});

test('a registry that keeps failing: Unavailable after the bounded retries', async (t) => {
  const always = failFirst(/\/manifests\//, 503, 1000);
  const p = await proxy(t, { auth: 'none', intercept: always });
  const e = await env(t, { hosts: [p.host] });
  await assert.rejects(e.puller.pull(ref(p.host, fx.busybox)), (err: unknown) => isCrispError(err, 'Unavailable') && /HTTP 503 after 4 attempts/.test(err.message));
  assert.equal(always.hits(), FAST_RETRY.attempts);
});

test('404s: unknown repository and unknown tag are NotFound, not retried', async (t) => {
  const p = await proxy(t, { auth: 'none' });
  const e = await env(t, { hosts: [p.host] });
  await assert.rejects(e.puller.pull(`${p.host}/crisp-test/nope:latest`), (err: unknown) => isCrispError(err, 'NotFound') && /not found \(HTTP 404\)/.test(err.message) && err.message.includes('crisp-test/nope'));
  await assert.rejects(e.puller.pull(`${p.host}/crisp-test/busybox:nope`), (err: unknown) => isCrispError(err, 'NotFound') && /manifest nope/.test(err.message));
  assert.equal(p.requests.filter((r) => r.status === 404).length, 2);
});

test('a blob served with the wrong content fails the pull and leaves nothing visible', async (t) => {
  const img = single(fx.corrupt);
  const p = await proxy(t, { auth: 'none', intercept: corruptBlob(img.layers[0]!.digest) });
  const e = await env(t, { hosts: [p.host] });
  await assert.rejects(e.puller.pull(ref(p.host, fx.corrupt)), (err: unknown) => {
    assert.ok(isCrispError(err, 'FailedPrecondition'));
    assert.match(err.message, /digest mismatch/);
    return true;
  });
  assert.ok(!(await e.blobs.has(img.layers[0]!.digest)));
  assert.ok(!(await e.layers.has(img.layers[0]!.diffId)));
  assert.ok(!(await e.blobs.has(img.manifest.digest)), 'the manifest is not stored for a failed pull');
  await assertNoTemp(e.root);
});

test('mirrors: a dead mirror falls through to the registry; a live one serves', async (t) => {
  const p = await proxy(t, { auth: 'none' });
  const conf = (mirror: string) => ({
    ...emptyRegistriesConfig(),
    ...parseRegistriesConf(`[[registry]]\nprefix = "registry.invalid"\nlocation = "${registry.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror}"\ninsecure = true\n`, 't'),
  });
  const dead = await env(t, { registries: conf('127.0.0.1:1'), retry: { attempts: 1 } });
  const r1 = await dead.puller.pull(`registry.invalid/${fx.busybox.repo}:${fx.busybox.tag}`);
  assert.equal(r1.servedBy, registry.host);
  assert.equal(r1.reference, `registry.invalid/${fx.busybox.repo}:latest`);
  const live = await env(t, { registries: conf(p.host) });
  const r2 = await live.puller.pull(`registry.invalid/${fx.busybox.repo}:${fx.busybox.tag}`);
  assert.equal(r2.servedBy, p.host);
  assert.equal(r2.repoTag, `registry.invalid/${fx.busybox.repo}:latest`);
});

// ---- sharing, caching, the watchdog, cancellation

test('concurrent pulls of one reference share a single pull', async (t) => {
  const p = await proxy(t, { auth: 'none' });
  const e = await env(t, { hosts: [p.host] });
  const seenA: string[] = [];
  const seenB: string[] = [];
  const [a, b, c] = await Promise.all([
    e.puller.pull(ref(p.host, fx.multiLayer), { onLayerStored: (l) => seenA.push(l.chainId) }),
    e.puller.pull(ref(p.host, fx.multiLayer), { onLayerStored: (l) => seenB.push(l.chainId) }),
    e.puller.pull(ref(p.host, fx.multiLayer)),
  ]);
  assert.equal(a, b);
  assert.equal(b, c);
  assert.equal(p.requests.filter((r) => r.path.includes('/manifests/')).length, 1);
  assert.equal(p.requests.filter((r) => r.path.includes('/blobs/')).length, 4);
  assert.deepEqual(seenA.sort(), a.layers.map((l) => l.chainId).sort());
  assert.deepEqual(seenB.sort(), seenA);
});

test('a second pull fetches no blob again', async (t) => {
  const p = await proxy(t, { auth: 'none' });
  const e = await env(t, { hosts: [p.host] });
  await e.puller.pull(ref(p.host, fx.multiLayer));
  const before = p.requests.length;
  const stored: StoredLayer[] = [];
  const r = await e.puller.pull(ref(p.host, fx.multiLayer), { onLayerStored: (l) => stored.push(l) });
  const again = p.requests.slice(before);
  assert.deepEqual(again.map((x) => x.path), ['/v2/', `/v2/${fx.multiLayer.repo}/manifests/${fx.multiLayer.tag}`]);
  assert.equal(stored.length, 3);
  assert.ok(stored.every((l) => l.reused));
  assert.equal(r.imageId, single(fx.multiLayer).config.digest);
});

test('the watchdog cancels a stalled pull and says so', async (t) => {
  const img = single(fx.corrupt);
  const p = await proxy(t, { auth: 'none', intercept: stallAfterHeaders(new RegExp(`/blobs/${img.layers[0]!.digest}`)) });
  const e = await env(t, { hosts: [p.host], progressTimeoutMs: 400 });
  const started = Date.now();
  await assert.rejects(e.puller.pull(ref(p.host, fx.corrupt)), (err: unknown) => {
    assert.ok(isCrispError(err, 'DeadlineExceeded'), String(err));
    assert.match(err.message, /made no progress/);
    return true;
  });
  assert.ok(Date.now() - started < 5000, 'cancelled promptly');
  assert.ok(!(await e.blobs.has(img.layers[0]!.digest)));
  await assertNoTemp(e.root);
});

test('a pull whose bytes trickle under the rate floor is cancelled and says so', async (t) => {
  const img = single(fx.corrupt);
  const p = await proxy(t, { auth: 'none', intercept: trickle(new RegExp(`/blobs/${img.layers[0]!.digest}`), 50) });
  const e = await env(t, { hosts: [p.host], progressTimeoutMs: 600, minBytesPerSecond: 1000 });
  const started = Date.now();
  await assert.rejects(e.puller.pull(ref(p.host, fx.corrupt)), (err: unknown) => {
    assert.ok(isCrispError(err, 'DeadlineExceeded'), String(err));
    assert.match(err.message, /under the floor of 1000 bytes\/s \(pull_min_rate\)/);
    return true;
  });
  assert.ok(Date.now() - started < 5000, 'cancelled after about one window');
  assert.ok(!(await e.blobs.has(img.layers[0]!.digest)));
  await assertNoTemp(e.root);
});

test('a caller\'s abort cancels its pull; a joined caller keeps it alive', async (t) => {
  const img = single(fx.corrupt);
  const stall = stallAfterHeaders(new RegExp(`/blobs/${img.layers[0]!.digest}`));
  const p = await proxy(t, { auth: 'none', intercept: stall });
  const e = await env(t, { hosts: [p.host], progressTimeoutMs: 0 });
  const ac = new AbortController();
  const pulling = e.puller.pull(ref(p.host, fx.corrupt), { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 200));
  ac.abort(new Error('caller gave up'));
  await assert.rejects(pulling, /caller gave up/);
  await assertNoTemp(e.root);

  // Two callers: one leaves, the other gets the image once the registry answers.
  p.setInterceptor(undefined);
  const leaver = new AbortController();
  const first = e.puller.pull(ref(p.host, fx.corrupt), { signal: leaver.signal });
  const second = e.puller.pull(ref(p.host, fx.corrupt));
  leaver.abort(new Error('left'));
  await assert.rejects(first, /left/);
  assert.equal((await second).imageId, img.config.digest);
});

test('credentials never appear in errors or logs', async (t) => {
  const secret = 'Sup3r-Secret-Pa55word-0xBEEF';
  const token = 'registry-token-Secret-0xCAFE';
  const p = await proxy(t, { auth: 'bearer', users: { bob: secret }, staticTokens: [token] });
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  const e = await env(t, { hosts: [p.host], logger });
  const errors: unknown[] = [];
  await e.puller.pull(ref(p.host, fx.busybox), { auth: { username: 'bob', password: secret } });
  await e.puller.pull(ref(p.host, fx.userNamed), { auth: { registry_token: token } });
  for (const auth of [{ username: 'bob', password: secret + 'x' }, { auth: Buffer.from(`bob:${secret}!`).toString('base64') }, { registry_token: token + 'x' }, { identity_token: secret }]) {
    await e.puller.pull(ref(p.host, fx.zstd), { auth }).then(
      () => assert.fail('should not pull with bad credentials'),
      (err: unknown) => errors.push(err),
    );
  }
  assert.equal(errors.length, 4);
  assert.ok(lines.length > 5, 'trace logs were captured');
  const everything = lines.join('') + errors.map((x) => inspect(x, { depth: 10 }) + JSON.stringify(x) + String((x as Error).stack)).join('');
  for (const s of [secret, token, Buffer.from(`bob:${secret}`).toString('base64')]) {
    assert.ok(!everything.includes(s), `leaked ${s.slice(0, 6)}…`);
  }
  assert.ok(!/Bearer [A-Za-z0-9_-]{10,}/.test(everything), 'no bearer token leaked');
});
