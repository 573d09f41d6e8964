// A full disk is RESOURCE_EXHAUSTED naming what could not be written (issue 15, section 4): the
// daemon's --root is a small tmpfs of the test's own. A pull larger than the space, a layer
// that unpacks larger than the space, and a pod started with the disk full each answer so,
// leave nothing half-made, keep the log readable, and work resumes once space is freed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import { buildImage, buildLayer, pushImage } from '../helpers/oci-images.js';
import { CRISP_BIN } from '../helpers/daemon.js';

const run = promisify(execFile);
const SIZE_MB = 40;
let node: TestNode;
let root: string;
let bigBlob: string;
let bigUnpack: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'crisp-test-fulldisk-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'crisp-test-fulldisk', root]);
  node = await startTestNode(['--root', root], {
    async prepare(registry) {
      // 48 MiB of random bytes: the download itself does not fit.
      const blob = buildImage({ layers: [buildLayer([{ path: 'big', type: 'file', content: randomBytes(48 << 20) }], 'none')] });
      bigBlob = `${registry.host}/crisp-test/bigblob:latest`;
      await pushImage(registry.url, 'crisp-test/bigblob', 'latest', blob);
      // 64 MiB of zeros: a download of a few KiB whose unpacked file does not fit.
      const unpack = buildImage({ layers: [buildLayer([{ path: 'zeros', type: 'file', content: Buffer.alloc(64 << 20) }], 'gzip')] });
      bigUnpack = `${registry.host}/crisp-test/bigunpack:latest`;
      await pushImage(registry.url, 'crisp-test/bigunpack', 'latest', unpack);
    },
  });
});

after(async () => {
  await node?.cleanup();
  await run('umount', ['-l', root]).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

const img = () => node.daemon.clients.image;
const rt = () => node.daemon.clients.runtime;

async function exhausted(what: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(what, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, `${grpc.status[err.code]}: ${err.details}`);
    assert.match(err.details, pattern);
    return true;
  });
}

/** Files under `dir` whose names mark them as unfinished (temp downloads, half-unpacked layers). */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (/\.tmp|tmp-|partial|incoming/i.test(e.name)) out.push(join(e.parentPath ?? dir, e.name));
  }
  return out;
}

async function eventsReadable(): Promise<string> {
  const { stdout } = await run(process.execPath, [CRISP_BIN, 'events', '--root', root]);
  return stdout;
}

test('a pull larger than the disk is RESOURCE_EXHAUSTED naming the path, and leaves no partial blob', async () => {
  await exhausted(call(img(), img().PullImage, { image: { image: bigBlob } }, 120_000), /no space left to write blob sha256:\w+ \(\/.*\/blobs\/.*\): ENOSPC/);
  assert.deepEqual(leftovers(root), []);
  const images = (await call(img(), img().ListImages, {})).images;
  assert.ok(!images.some((i) => i.repo_tags.includes(bigBlob)), 'the image is not listed');
  assert.match(await eventsReadable(), /ImagePulled|PullFailed|Pull/);
});

test('a layer that unpacks larger than the disk is RESOURCE_EXHAUSTED, and its layer directory is gone', async () => {
  await exhausted(call(img(), img().PullImage, { image: { image: bigUnpack } }, 120_000), /no space left to write layer directory \/.*\/layers\/.*: ENOSPC/);
  assert.deepEqual(leftovers(root), []);
  const { stdout } = await run('df', ['-m', '--output=used', root]);
  assert.ok(Number(stdout.split('\n')[1]) < SIZE_MB / 2, `the half-unpacked layer was removed (used: ${stdout.split('\n')[1]} MiB)`);
});

test('with the disk full, RunPodSandbox and CreateContainer are RESOURCE_EXHAUSTED; once space is freed, work resumes', async () => {
  const first = await node.runPod(`before${node.tag}`);
  const container = (name: string) => ({
    pod_sandbox_id: first,
    config: { metadata: { name, attempt: 0 }, image: { image: node.image }, command: ['sleep', '30'] },
    sandbox_config: null,
  });
  const filler = join(root, 'filler');
  const fd = openSync(filler, 'w');
  for (const size of [1 << 20, 4096, 512]) {
    try {
      for (;;) writeSync(fd, Buffer.alloc(size, 1));
    } catch {
      // full at this granularity
    }
  }
  closeSync(fd);
  const name = `full${node.tag}`;
  const whatFull = /no space left to write (the event log \/.*state\.db|.*\/)/;
  await exhausted(node.runPod(name), whatFull);
  await exhausted(call(rt(), rt().CreateContainer, container('c1'), 60_000), whatFull);
  assert.deepEqual((await call(rt(), rt().ListPodSandbox, {})).items.map((p) => p.id), [first], 'no new pod is listed');
  assert.deepEqual((await call(rt(), rt().ListContainers, {})).containers, [], 'no container is listed');
  await eventsReadable();

  rmSync(filler);
  const { container_id } = await call(rt(), rt().CreateContainer, container('c2'), 60_000);
  await call(rt(), rt().StartContainer, { container_id }, 30_000);
  assert.equal((await call(rt(), rt().ContainerStatus, { container_id })).status?.state, 'CONTAINER_RUNNING');
  await node.runPod(name);
  assert.match(await eventsReadable(), /SandboxReady/);
});
