// RuntimeClass handlers: which handlers a configuration yields, what each supports (from the
// runtime's `features` document and the kernel), and the hybrid-cgroup refusal that names its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/config/schema.js';
import { featuresFrom, handlerSpecs, hybridCgroupProblem, kernelHasMountSetattr, probeHandler, RuntimeHandlers } from '../../src/actors/monitor/runtime-handlers.js';
import { isCrispError } from '../../src/errors.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-handlers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function program(dir: string, name: string, script: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('features: rro only when the runtime lists it and the kernel has mount_setattr; user namespaces never claimed', () => {
  const doc = { mountOptions: ['ro', 'rro'], linux: { namespaces: ['user'], mountExtensions: { idmap: { enabled: true } } } };
  assert.deepEqual(featuresFrom(doc, { mountSetattr: true }).features, { recursiveReadOnlyMounts: true, userNamespaces: false, mountOptions: ['ro', 'rro'] });
  assert.equal(featuresFrom(doc, { mountSetattr: false }).features.recursiveReadOnlyMounts, false);
  assert.equal(featuresFrom({ mountOptions: ['ro'] }, { mountSetattr: true }).features.recursiveReadOnlyMounts, false);
  const none = featuresFrom(null, { mountSetattr: true });
  assert.deepEqual(none.features, { recursiveReadOnlyMounts: false, userNamespaces: false, mountOptions: [] });
  assert.match(none.notes.join('\n'), /no `features` command/);
  assert.equal(kernelHasMountSetattr('5.11.0-1-amd64'), false);
  assert.equal(kernelHasMountSetattr('5.12.0'), true);
  assert.equal(kernelHasMountSetattr('6.1.0-18-amd64'), true);
});

test('probe: a runtime that answers `features` and one that does not', async (t) => {
  const dir = scratch(t);
  const withFeatures = program(dir, 'rt-a', `[ "$1" = features ] && echo '{"mountOptions":["rro"]}'`);
  const without = program(dir, 'rt-b', 'echo "unknown command $1" >&2; exit 1');
  const a = await probeHandler({ name: 'a', path: withFeatures, root: '/run/a' }, { mountSetattr: true, cgroupRoot: dir });
  const b = await probeHandler({ name: 'b', path: without, root: '/run/b' }, { mountSetattr: true, cgroupRoot: dir });
  assert.equal(a.features.recursiveReadOnlyMounts, true);
  assert.equal(b.features.recursiveReadOnlyMounts, false);
  assert.equal(a.problem, undefined);
});

test('crun on a hybrid host whose cgroup v2 hierarchy holds a controller: refused with the mount that fixes it', (t) => {
  const root = scratch(t);
  mkdirSync(join(root, 'unified'));
  writeFileSync(join(root, 'unified', 'cgroup.controllers'), 'hugetlb\n');
  const problem = hybridCgroupProblem('/usr/bin/crun', root);
  assert.match(problem!, /holds hugetlb/);
  assert.match(problem!, new RegExp(`mount -t cgroup -o hugetlb none ${root}/hugetlb`));
  assert.equal(hybridCgroupProblem('/usr/sbin/runc', root), undefined, 'runc does not mind');
  writeFileSync(join(root, 'unified', 'cgroup.controllers'), '\n');
  assert.equal(hybridCgroupProblem('/usr/bin/crun', root), undefined, 'an empty v2 hierarchy is fine');

  const handlers = new RuntimeHandlers([
    { name: '', path: '/usr/sbin/runc', root: '/r', features: { recursiveReadOnlyMounts: false, userNamespaces: false, mountOptions: [] }, notes: [] },
    { name: 'crun', path: '/usr/bin/crun', root: '/c', features: { recursiveReadOnlyMounts: false, userNamespaces: false, mountOptions: [] }, notes: [], problem: 'crun refuses' },
  ]);
  assert.equal(handlers.usable('').name, '');
  assert.throws(() => handlers.usable('crun'), (err: unknown) => isCrispError(err, 'FailedPrecondition') && /runtime_handler "crun": crun refuses/.test(err.message));
  assert.throws(() => handlers.get('kata'), (err: unknown) => isCrispError(err, 'InvalidArgument') && /"kata" is not configured \(known: crun\)/.test(err.message));
});

test('handler specs: the default under "" and its own name, crun only where installed, configured handlers required', (t) => {
  const dir = scratch(t);
  program(dir, 'runc', 'exit 0');
  const config = { ...DEFAULTS, runroot: '/run/x', runtimes: {} };
  const absent = { crun: { runtimePath: 'crisp-test-no-such-crun' } };
  assert.deepEqual(handlerSpecs(config, dir, absent).map((s) => [s.name, s.root]), [['', '/run/x/runc'], ['runc', '/run/x/runc']]);
  program(dir, 'crun', 'exit 0');
  assert.deepEqual(handlerSpecs(config, dir).map((s) => [s.name, s.path, s.root]), [
    ['', join(dir, 'runc'), '/run/x/runc'], ['runc', join(dir, 'runc'), '/run/x/runc'], ['crun', join(dir, 'crun'), '/run/x/runtimes/crun'],
  ]);
  const configured = { ...config, runtimes: { kata: { runtimePath: 'kata-runtime', runtimeRoot: '/run/kata' } } };
  assert.throws(() => handlerSpecs(configured, dir), /crisp\.runtime\.runtimes\.kata\.runtime_path: "kata-runtime" is not an executable/);
  program(dir, 'kata-runtime', 'exit 0');
  assert.deepEqual(handlerSpecs(configured, dir).map((s) => [s.name, s.root]), [['', '/run/x/runc'], ['runc', '/run/x/runc'], ['kata', '/run/kata']]);
});
