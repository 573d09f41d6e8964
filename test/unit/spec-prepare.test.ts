import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, stat, symlink, writeFile, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isCrispError } from '../../src/errors.js';
import { prepareMounts, releasePreparedMounts } from '../../src/actors/spec/mounts.js';
import { writeSpecFile } from '../../src/actors/spec/bundle.js';
import { readHostFacts, listHostDevices, splitDevNumber } from '../../src/actors/spec/host-facts.js';
import { capabilitiesFromMask } from '../../src/actors/spec/capabilities.js';
import { KNOWN_CAPABILITIES } from '../../src/machines/container-rules.js';
import { criMount } from '../helpers/cri-defaults.js';
import type { RuntimeSpec } from '../../src/actors/spec/oci-types.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }, tag: string) {
  const dir = await mkdtemp(path.join(tmpdir(), `crisp-test-spec-${tag}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('prepareMounts resolves symlinks, creates missing host dirs, maps propagation', async (t) => {
  const dir = await tempDir(t, 'prep');
  await mkdir(path.join(dir, 'real'));
  await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
  const result = await prepareMounts([
    criMount({ container_path: '/a', host_path: path.join(dir, 'link'), readonly: true }),
    criMount({ container_path: '/b/', host_path: path.join(dir, 'new/deep/dir'), propagation: 'PROPAGATION_BIDIRECTIONAL' }),
    criMount({ container_path: '/c', host_path: path.join(dir, 'new/other'), propagation: 'PROPAGATION_HOST_TO_CONTAINER', selinux_relabel: true }),
  ]);
  assert.deepEqual(result.mounts, [
    { containerPath: '/a', hostPath: path.join(dir, 'real'), readonly: true, propagation: 'rprivate' },
    { containerPath: '/b', hostPath: path.join(dir, 'new/deep/dir'), readonly: false, propagation: 'rshared' },
    { containerPath: '/c', hostPath: path.join(dir, 'new/other'), readonly: false, propagation: 'rslave' },
  ]);
  assert.ok((await stat(path.join(dir, 'new/deep/dir'))).isDirectory());
  assert.deepEqual(result.createdHostPaths, [path.join(dir, 'new/other'), path.join(dir, 'new/deep/dir'), path.join(dir, 'new/deep'), path.join(dir, 'new')]);
  await releasePreparedMounts(result.createdHostPaths);
  assert.deepEqual(await readdir(dir), ['link', 'real']);
  await releasePreparedMounts(result.createdHostPaths); // idempotent
});

test('releasePreparedMounts keeps directories something was put into', async (t) => {
  const dir = await tempDir(t, 'prep-keep');
  const result = await prepareMounts([criMount({ container_path: '/a', host_path: path.join(dir, 'x/y') })]);
  await writeFile(path.join(dir, 'x/y/data'), 'keep');
  await releasePreparedMounts(result.createdHostPaths);
  assert.equal(await readFile(path.join(dir, 'x/y/data'), 'utf8'), 'keep');
});

test('prepareMounts rejects bad mounts and leaves nothing behind', async (t) => {
  const dir = await tempDir(t, 'prep-bad');
  await assert.rejects(
    prepareMounts([criMount({ container_path: 'relative', host_path: path.join(dir, 'made') })]),
    (err: unknown) => isCrispError(err, 'InvalidArgument') && /mounts\[0\]\.container_path/.test((err as Error).message),
  );
  await symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
  await assert.rejects(
    prepareMounts([
      criMount({ container_path: '/ok', host_path: path.join(dir, 'made/here') }),
      criMount({ container_path: '/bad', host_path: path.join(dir, 'dangling') }),
    ]),
    (err: unknown) => isCrispError(err, 'FailedPrecondition') && /mounts\[1\]\.host_path/.test((err as Error).message),
  );
  assert.deepEqual(await readdir(dir), ['dangling']);
});

test('writeSpecFile writes config.json atomically', async (t) => {
  const dir = await tempDir(t, 'bundle');
  const bundle = path.join(dir, 'bundle');
  const spec = { ociVersion: '1.0.2-dev', hostname: 'h' } as unknown as RuntimeSpec;
  const file = await writeSpecFile(bundle, spec);
  assert.equal(file, path.join(bundle, 'config.json'));
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), spec);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(bundle), ['config.json'], 'no temporary file is left');
});

test('capability masks and device numbers decode', () => {
  assert.deepEqual(capabilitiesFromMask('0000000000000003'), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
  assert.deepEqual(capabilitiesFromMask('000001fffeffffff'), KNOWN_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'));
  assert.deepEqual(splitDevNumber(0x103n), { major: 1, minor: 3 });
  assert.deepEqual(splitDevNumber(0x10300000n | 0x103n), { major: 1, minor: 0x10303 & 0xfffff });
});

test('readHostFacts reports this host', async () => {
  const facts = await readHostFacts();
  const capBnd = readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s*(\w+)$/m)![1]!;
  assert.deepEqual(facts.capabilities, capabilitiesFromMask(capBnd));
  assert.equal(facts.oomScoreAdj, Number(readFileSync('/proc/self/oom_score_adj', 'utf8')));
  assert.ok(facts.cgroupVersion === 1 || facts.cgroupVersion === 2);
  assert.equal((facts.defaultSeccompProfile as { defaultAction: string }).defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(facts.arch, process.arch === 'x64' ? 'amd64' : facts.arch);
  const devNull = facts.devices.find((d) => d.path === '/dev/null');
  assert.deepEqual(devNull && { type: devNull.type, major: devNull.major, minor: devNull.minor }, { type: 'c', major: 1, minor: 3 });
  assert.ok(!facts.devices.some((d) => d.path.startsWith('/dev/pts/') || d.path === '/dev/console'));
  const missing = await readHostFacts({ seccompProfilePath: '/nonexistent/seccomp.json' });
  assert.equal(missing.defaultSeccompProfile, null);
});

test('listHostDevices walks nested dirs and skips non-devices', async (t) => {
  const dir = await tempDir(t, 'dev');
  await mkdir(path.join(dir, 'pts'));
  await writeFile(path.join(dir, 'regular'), '');
  await symlink('/dev/null', path.join(dir, 'nulllink'));
  assert.deepEqual(await listHostDevices(dir), []);
  const real = await listHostDevices('/dev');
  assert.ok(real.some((d) => d.path === '/dev/zero' && d.major === 1 && d.minor === 5));
});
