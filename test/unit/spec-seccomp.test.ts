import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isCrispError } from '../../src/errors.js';
import { translateSeccompProfile, kernelAtLeast, loadLocalhostSeccompProfile } from '../../src/actors/spec/seccomp.js';
import { seccompChoice } from '../../src/machines/container-rules.js';
import { DEFAULT_CAPABILITIES } from '../../src/actors/spec/capabilities.js';
import type { OciSeccomp } from '../../src/actors/spec/oci-types.js';

const profile = JSON.parse(readFileSync('/usr/share/containers/seccomp.json', 'utf8')) as {
  syscalls: { names: string[]; action: string; includes?: { arches?: string[]; caps?: string[] }; excludes?: { caps?: string[] } }[];
};
const ctx = { arch: 'amd64', kernelRelease: '6.1.0', capabilities: DEFAULT_CAPABILITIES };

function actionsFor(s: OciSeccomp, name: string): string[] {
  return (s.syscalls ?? []).filter((r) => r.names.includes(name)).map((r) => r.action);
}

test('containers-common default profile translates to OCI for amd64', () => {
  const s = translateSeccompProfile(profile, ctx, 'default');
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 38); // defaultErrno ENOSYS by name
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  // the OCI output carries none of the containers-only keys
  for (const rule of s.syscalls ?? []) {
    assert.deepEqual(Object.keys(rule).filter((k) => !['names', 'action', 'errnoRet', 'args'].includes(k)), []);
    assert.ok(rule.names.length > 0);
  }
  assert.deepEqual(actionsFor(s, 'read'), ['SCMP_ACT_ALLOW']);
  // rules gated on capabilities the container lacks fall away, their "excludes" twins remain
  assert.deepEqual(actionsFor(s, 'sethostname'), ['SCMP_ACT_ERRNO']);
  assert.deepEqual(actionsFor(s, 'bpf'), ['SCMP_ACT_ERRNO']);
  assert.equal((s.syscalls ?? []).find((r) => r.names.includes('sethostname'))?.errnoRet, 1);
  // arch-gated rules: arch_prctl is amd64/x32 only, s390 rules are dropped
  assert.deepEqual(actionsFor(s, 'arch_prctl'), ['SCMP_ACT_ALLOW']);
  assert.deepEqual(actionsFor(s, 's390_pci_mmio_read'), []);
  // argument filters survive translation (personality(0) etc.)
  const personality = (s.syscalls ?? []).filter((r) => r.names.includes('personality'));
  assert.ok(personality.length >= 1 && personality.every((r) => r.args?.[0]?.op === 'SCMP_CMP_EQ'));
  // the number of rules equals those that apply by hand-evaluating includes/excludes
  const expected = profile.syscalls.filter((r) => {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if ((exc.caps ?? []).some((c) => DEFAULT_CAPABILITIES.includes(c))) return false;
    if ((inc.arches ?? []).length > 0 && !inc.arches!.includes('amd64')) return false;
    if ((inc.caps ?? []).some((c) => !DEFAULT_CAPABILITIES.includes(c))) return false;
    return true;
  });
  assert.equal(s.syscalls?.length, expected.length);
});

test('capabilities switch include/exclude rules', () => {
  const withAdmin = translateSeccompProfile(profile, { ...ctx, capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'] }, 'default');
  assert.deepEqual(actionsFor(withAdmin, 'sethostname'), ['SCMP_ACT_ALLOW']);
  assert.deepEqual(actionsFor(withAdmin, 'kcmp'), ['SCMP_ACT_ALLOW']);
  const none = translateSeccompProfile(profile, { ...ctx, capabilities: [] }, 'default');
  assert.deepEqual(actionsFor(none, 'kcmp'), ['SCMP_ACT_ERRNO']);
});

test('arm64 gets its own architectures and arch rules', () => {
  const s = translateSeccompProfile(profile, { ...ctx, arch: 'arm64' }, 'default');
  assert.deepEqual(s.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.deepEqual(actionsFor(s, 'arch_prctl'), []);
});

test('minKernel, name, errno names and plain OCI profiles', () => {
  const p = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [
      { names: ['new_call'], action: 'SCMP_ACT_ERRNO', includes: { minKernel: '6.5' } },
      { name: 'old_call', action: 'SCMP_ACT_ERRNO', errno: 'EPERM' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 448, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  };
  assert.deepEqual(translateSeccompProfile(p, ctx, 'p'), {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [
      { names: ['old_call'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 448, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  });
  assert.equal(translateSeccompProfile(p, { ...ctx, kernelRelease: '6.18.44-fc' }, 'p').syscalls?.[0]?.names[0], 'new_call');
  assert.equal(kernelAtLeast('5.10.0-21-amd64', '5.10'), true);
  assert.equal(kernelAtLeast('5.9.12', '5.10'), false);
  assert.equal(kernelAtLeast('6.0', '5.19.3'), true);
});

test('malformed profiles are rejected with the offending entry named', () => {
  const bad: [unknown, RegExp][] = [
    [[], /expected a JSON object/],
    [{ defaultAction: 'SCMP_ACT_NOPE' }, /defaultAction/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'bad' }] }, /syscalls\[0\]\.action/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', errno: 'EWHAT' }] }, /syscalls\[0\].*EWHAT/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.index/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' }] }, /name or names/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], archMap: [{ architecture: 'SCMP_ARCH_X86_64' }] }, /architectures or archMap/],
  ];
  for (const [p, re] of bad) {
    assert.throws(() => translateSeccompProfile(p, ctx, '/p.json'), (err: unknown) => isCrispError(err, 'InvalidArgument') && re.test((err as Error).message) && /\/p\.json/.test((err as Error).message));
  }
});

test('legacy seccomp_profile_path values', () => {
  const choice = (legacy: string) => seccompChoice({ seccomp: null, seccomp_profile_path: legacy }, 'runtime-default');
  assert.deepEqual(choice(''), { kind: 'runtime-default' });
  assert.deepEqual(seccompChoice({ seccomp: null, seccomp_profile_path: '' }, 'unconfined'), { kind: 'unconfined' });
  assert.deepEqual(choice('localhost//var/lib/kubelet/seccomp/a.json'), { kind: 'localhost', path: '/var/lib/kubelet/seccomp/a.json' });
  assert.throws(() => choice('localhost/relative.json'), /seccomp_profile_path/);
  assert.throws(() => choice('something'), /seccomp_profile_path: unknown value "something"/);
  assert.throws(() => seccompChoice({ seccomp: { profile_type: 'Localhost', localhost_ref: 'rel' }, seccomp_profile_path: '' }, 'unconfined'), /localhost_ref/);
});

test('Localhost profiles are read from disk and must exist', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'crisp-test-spec-seccomp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'p.json');
  await writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_LOG' }));
  const sc = (ref: string) => ({ seccomp: { profile_type: 'Localhost', localhost_ref: ref }, seccomp_profile_path: '' });
  assert.deepEqual(await loadLocalhostSeccompProfile(sc(file)), { path: file, profile: { defaultAction: 'SCMP_ACT_LOG' } });
  assert.equal(await loadLocalhostSeccompProfile({ seccomp: null, seccomp_profile_path: 'runtime/default' }), undefined);
  await assert.rejects(loadLocalhostSeccompProfile(sc(path.join(dir, 'missing.json'))), (err: unknown) => isCrispError(err, 'NotFound') && /missing\.json/.test((err as Error).message));
  await writeFile(path.join(dir, 'bad.json'), '{nope');
  await assert.rejects(loadLocalhostSeccompProfile(sc(path.join(dir, 'bad.json'))), (err: unknown) => isCrispError(err, 'InvalidArgument') && /bad\.json/.test((err as Error).message));
  await assert.rejects(loadLocalhostSeccompProfile(sc(dir)), (err: unknown) => isCrispError(err, 'InvalidArgument') && /not a regular file/.test((err as Error).message));
});
