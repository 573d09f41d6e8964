// Runs specs from generateSpec under the real runc (no conmon) on a busybox rootfs and checks,
// from inside the container, what the spec promised: user, capabilities, read-only root, masked
// paths and seccomp.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateSpec } from '../../src/actors/spec/generate.js';
import { readHostFacts } from '../../src/actors/spec/host-facts.js';
import { resolveUser } from '../../src/actors/spec/user.js';
import { prepareMounts, releasePreparedMounts } from '../../src/actors/spec/mounts.js';
import { loadLocalhostSeccompProfile } from '../../src/actors/spec/seccomp.js';
import { writeSpecFile } from '../../src/actors/spec/bundle.js';
import { DEFAULT_CAPABILITIES } from '../../src/actors/spec/capabilities.js';
import { KNOWN_CAPABILITIES } from '../../src/machines/container-rules.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../src/actors/spec/security.js';
import { criContainerConfig, criMount, criResources, criSandboxConfig, criSecurityContext } from '../helpers/cri-defaults.js';
import type { LinuxContainerSecurityContext__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { HostFacts, PodResources } from '../../src/actors/spec/input.js';

const run = promisify(execFile);
const APPLETS = ['sh', 'id', 'cat', 'ls', 'echo', 'sleep', 'hostname', 'grep', 'touch', 'wc'];

interface Env {
  base: string;
  rootfs: string;
  runcRoot: string;
  pod: PodResources;
  host: HostFacts;
  cgroupName: string;
  prefix: string;
  dataLink: string;
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }): Promise<Env> {
  const base = await mkdtemp('/tmp/crisp-test-spec-int-');
  const tag = randomBytes(4).toString('hex');
  const cgroupName = `spectest-${tag}`;
  const nsDir = path.join(base, 'ns');
  const runcRoot = path.join(base, 'runc');
  const cleanups: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  const rootfs = path.join(base, 'rootfs');
  await mkdir(path.join(rootfs, 'bin'), { recursive: true });
  await mkdir(path.join(rootfs, 'etc'));
  await copyFile('/usr/bin/busybox', path.join(rootfs, 'bin/busybox'));
  for (const applet of APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
  await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');

  const podDir = path.join(base, 'pod');
  await mkdir(podDir);
  await writeFile(path.join(podDir, 'hostname'), 'spec-pod\n');
  await writeFile(path.join(podDir, 'hosts'), '127.0.0.1 localhost spec-pod\n');
  await writeFile(path.join(podDir, 'resolv.conf'), 'nameserver 127.0.0.1\n');

  // The pod's namespaces, pinned to files the way the sandbox actor pins them.
  await mkdir(nsDir);
  for (const kind of ['net', 'ipc', 'uts']) await writeFile(path.join(nsDir, kind), '');
  await run('unshare', [`--net=${nsDir}/net`, `--ipc=${nsDir}/ipc`, `--uts=${nsDir}/uts`, 'true']);
  cleanups.push(async () => {
    for (const kind of ['net', 'ipc', 'uts']) await run('umount', [path.join(nsDir, kind)]).catch(() => undefined);
  });
  // runc leaves the pod-level cgroup parent behind: remove it from every hierarchy.
  cleanups.push(async () => {
    const hierarchies = await readdir('/sys/fs/cgroup');
    for (const h of ['', ...hierarchies]) await rmdir(path.join('/sys/fs/cgroup', h, cgroupName)).catch(() => undefined);
  });

  const data = path.join(base, 'data');
  await mkdir(data);
  await writeFile(path.join(data, 'hello'), 'from the host\n');
  const dataLink = path.join(base, 'data-link');
  await symlink(data, dataLink);

  return {
    base,
    rootfs,
    runcRoot,
    cgroupName,
    prefix: `spectest-${tag}`,
    dataLink,
    host: await readHostFacts(),
    pod: {
      netns: `${nsDir}/net`,
      ipcns: `${nsDir}/ipc`,
      utsns: `${nsDir}/uts`,
      hostnamePath: path.join(podDir, 'hostname'),
      hostsPath: path.join(podDir, 'hosts'),
      resolvConfPath: path.join(podDir, 'resolv.conf'),
      cgroupParent: `/${cgroupName}`,
      hostname: 'spec-pod',
    },
  };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  warnings: string[];
}

async function runInContainer(
  env: Env,
  name: string,
  script: string,
  sc: Partial<LinuxContainerSecurityContext__Output>,
  extra: Partial<ContainerConfig__Output> = {},
  podPrivileged = false,
): Promise<RunResult> {
  const container = criContainerConfig({
    metadata: { name, attempt: 0 },
    command: ['/bin/sh', '-c', script],
    linux: { resources: criResources(), security_context: criSecurityContext(sc) },
    ...extra,
  });
  const sandbox = criSandboxConfig();
  sandbox.linux!.security_context!.privileged = podPrivileged;
  const id = `${env.prefix}-${name}`;
  const prepared = await prepareMounts(container.mounts);
  try {
    const user = await resolveUser(env.rootfs, container, '');
    const localhostSeccomp = await loadLocalhostSeccompProfile(container.linux?.security_context ?? null);
    const { spec, warnings } = generateSpec(
      {
        containerId: id,
        sandboxId: env.prefix,
        container,
        sandbox,
        image: { config: { Env: ['PATH=/bin'] }, name: 'local/busybox', id: 'sha256:none' },
        rootfs: env.rootfs,
        pod: env.pod,
        host: env.host,
        mounts: prepared.mounts,
        ...(localhostSeccomp ? { localhostSeccomp } : {}),
      },
      user,
    );
    const bundle = path.join(env.base, 'bundles', name);
    await writeSpecFile(bundle, spec);
    try {
      const result = await new Promise<RunResult>((resolve, reject) => {
        const child = spawn('runc', ['--root', env.runcRoot, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr, warnings });
        });
      });
      return result;
    } finally {
      await run('runc', ['--root', env.runcRoot, 'delete', '-f', id]).catch(() => undefined);
    }
  } finally {
    await releasePreparedMounts(prepared.createdHostPaths);
  }
}

const maskOf = (caps: readonly string[]) =>
  caps.reduce((m, c) => m | (1n << BigInt(KNOWN_CAPABILITIES.indexOf(c))), 0n).toString(16).padStart(16, '0');

function statusField(status: string, field: string): string {
  const m = status.match(new RegExp(`^${field}:\\s*(\\S+)`, 'm'));
  assert.ok(m, `${field} in /proc/self/status`);
  return m[1]!;
}

test('runc runs a generated spec: user, capabilities, read-only root, masks, seccomp', async (t) => {
  const env = await setUp(t);
  // Kernels differ in which of these exist (this one has no /proc/kcore); runc masks those that do.
  const maskedFile = DEFAULT_MASKED_PATHS.find((p) => statSync(p, { throwIfNoEntry: false })?.isFile());
  assert.ok(maskedFile, 'some default masked file exists on this host');
  const script = [
    'id',
    'echo ---',
    'cat /proc/self/status',
    'echo ---',
    'touch /newfile 2>/dev/null && echo ROOT=rw || echo ROOT=ro',
    `ls -l ${maskedFile}`,
    'echo FIRMWARE=$(ls -A /sys/firmware | wc -l)',
    'echo PROCSYS=$(touch /proc/sys/kernel/hostname 2>/dev/null && echo rw || echo ro)',
    'cat /data/hello',
    'hostname newname 2>/dev/null && echo SETHOSTNAME=allowed || echo SETHOSTNAME=denied',
    'echo HOST=$(hostname)',
  ].join('; ');
  const r = await runInContainer(
    env,
    'main',
    script,
    {
      run_as_user: { value: '1000' },
      supplemental_groups: ['3000'],
      readonly_rootfs: true,
      masked_paths: [...DEFAULT_MASKED_PATHS],
      readonly_paths: [...DEFAULT_READONLY_PATHS],
      seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
      no_new_privs: true,
    },
    { mounts: [criMount({ container_path: '/data', host_path: env.dataLink, readonly: true })] },
  );
  assert.equal(r.code, 0, `runc failed: ${r.stderr}\n${r.stdout}`);
  const [idLine, status, rest] = r.stdout.split('---\n') as [string, string, string];
  assert.equal(idLine.trim(), 'uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),3000');
  const expected = maskOf(DEFAULT_CAPABILITIES);
  assert.equal(statusField(status, 'CapBnd'), expected);
  // execve as a non-root user clears permitted/effective (no ambient caps), as Kubernetes expects
  assert.equal(statusField(status, 'CapPrm'), '0000000000000000');
  assert.equal(statusField(status, 'CapEff'), '0000000000000000');
  assert.equal(statusField(status, 'CapInh'), '0000000000000000');
  assert.equal(statusField(status, 'Seccomp'), '2');
  assert.equal(statusField(status, 'NoNewPrivs'), '1');
  assert.match(rest, /^ROOT=ro$/m);
  assert.match(rest, new RegExp(`^crw-rw-rw-\\s+1\\s+\\S+\\s+\\S+\\s+1,\\s+3 .*${maskedFile}$`, 'm'), `${maskedFile} masked by /dev/null`);
  assert.match(rest, /^FIRMWARE=0$/m);
  assert.match(rest, /^PROCSYS=ro$/m);
  assert.match(rest, /^from the host$/m);
  assert.match(rest, /^SETHOSTNAME=denied$/m);
  assert.match(rest, /^HOST=spec-pod$/m);
});

test('root keeps the computed capability sets; add/drop apply', async (t) => {
  const env = await setUp(t);
  const script = 'id; grep -E "^Cap(Bnd|Prm|Eff|Inh|Amb):" /proc/self/status';
  const plain = await runInContainer(env, 'root-default', script, {});
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^uid=0\(root\) gid=0\(root\)/m);
  for (const field of ['CapBnd', 'CapPrm', 'CapEff']) assert.equal(statusField(plain.stdout, field), maskOf(DEFAULT_CAPABILITIES), field);
  assert.equal(statusField(plain.stdout, 'CapInh'), '0000000000000000');

  const changed = await runInContainer(env, 'root-adddrop', script, {
    capabilities: { add_capabilities: ['NET_ADMIN', 'SYS_RESOURCE'], drop_capabilities: ['KILL', 'CAP_CHOWN'], add_ambient_capabilities: [] },
  });
  assert.equal(changed.code, 0, changed.stderr);
  const want = [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_KILL' && c !== 'CAP_CHOWN'), 'CAP_NET_ADMIN'];
  assert.equal(statusField(changed.stdout, 'CapEff'), maskOf(want));
  // SYS_RESOURCE is outside this daemon's bounding set: left out with a warning, not a failure
  if (!env.host.capabilities.includes('CAP_SYS_RESOURCE')) assert.match(changed.warnings.join(), /CAP_SYS_RESOURCE/);
});

test('seccomp, not capabilities, is what stops sethostname', async (t) => {
  const env = await setUp(t);
  const script = 'hostname newname 2>/dev/null && echo SETHOSTNAME=allowed || echo SETHOSTNAME=denied; grep ^Seccomp: /proc/self/status';
  const sysAdmin = { capabilities: { add_capabilities: ['SYS_ADMIN'], drop_capabilities: [], add_ambient_capabilities: [] } };

  const unconfined = await runInContainer(env, 'unconfined', script, { ...sysAdmin, seccomp: { profile_type: 'Unconfined', localhost_ref: '' } });
  assert.equal(unconfined.code, 0, unconfined.stderr);
  assert.match(unconfined.stdout, /SETHOSTNAME=allowed/);
  assert.match(unconfined.stdout, /Seccomp:\s+0/);

  // The default profile lets a container with SYS_ADMIN set its (private) hostname...
  const withCap = await runInContainer(env, 'default-admin', script, { ...sysAdmin, seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } });
  assert.equal(withCap.code, 0, withCap.stderr);
  assert.match(withCap.stdout, /SETHOSTNAME=allowed/);

  // ...and a Localhost profile (containers-common format) that forbids it wins over the capability.
  const profile = path.join(env.base, 'deny-sethostname.json');
  await writeFile(
    profile,
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
      syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_BOOT'] } }],
    }),
  );
  const local = await runInContainer(env, 'localhost', script, { ...sysAdmin, seccomp: { profile_type: 'Localhost', localhost_ref: profile } });
  assert.equal(local.code, 0, local.stderr);
  assert.match(local.stdout, /SETHOSTNAME=denied/);
  assert.match(local.stdout, /Seccomp:\s+2/);
});

test('a privileged container gets the daemon bounding set without failing', async (t) => {
  const env = await setUp(t);
  const script = 'grep -E "^(CapBnd|Seccomp):" /proc/self/status; ls /dev/loop-control && echo DEVICES=host';
  const r = await runInContainer(env, 'priv', script, { privileged: true }, {}, true);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^DEVICES=host$/m);
  assert.equal(statusField(r.stdout, 'CapBnd'), maskOf(env.host.capabilities));
  assert.equal(statusField(r.stdout, 'Seccomp'), '0');
});
