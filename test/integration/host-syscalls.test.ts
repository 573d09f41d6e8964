// mount, umount, pinned new namespaces and a read inside them: made by the spawn helper's system
// calls, and by util-linux's programs when there is no helper. Each helper and util-linux must leave the kernel
// in the same state.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readMounts } from '../../src/host/mountinfo.js';
import { findHelperProgram, spawnHelper, startHelper } from '../../src/host/spawn-helper.js';
import { run } from '../../src/host/run.js';
import {
  mount,
  mountByCommand,
  mountFlagsAndData,
  pinByCommand,
  pinNewNamespaces,
  readInside,
  readInsideByCommand,
  unmount,
  unmountByCommand,
  type MountRequest,
  type PinRequest,
} from '../../src/host/syscalls.js';

const base = await mkdtemp('/tmp/crisp-test-syscalls-');

after(async () => {
  for (const h of helpers.slice(1)) h.stop();
  const ours = (await readMounts()).filter((m) => m.mountPoint.startsWith(base)).map((m) => m.mountPoint).reverse();
  for (const m of ours) await run('umount', ['-l', m]).catch(() => undefined);
  await rm(base, { recursive: true, force: true });
});

// The helper the daemon runs (the compiled one, where setup built it) and the perl one.
const helpers = [spawnHelper()!, ...(spawnHelper()!.kind === 'perl' ? [] : [startHelper(findHelperProgram('perl')!)])];
const ways = [
  ...helpers.map((h) => ({
    name: `system calls (${h.kind} helper)`,
    mount: (req: MountRequest) => mount(req, h),
    unmount: (targets: readonly string[]) => unmount(targets, h),
    pin: (req: PinRequest) => pinNewNamespaces(req, h),
    readInside: (files: PinRequest['files'], file: string) => readInside(files, file, h),
  })),
  { name: 'util-linux', mount: mountByCommand, unmount: unmountByCommand, pin: pinByCommand, readInside: readInsideByCommand },
];

/** What mountinfo says of a mount point: type, source, per-mount and superblock options. */
function describe(target: string) {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === target).at(-1);
  assert.ok(line, `${target} is mounted`);
  const [before, after] = line.split(' - ') as [string, string];
  const [type, source, superOptions] = after.split(' ');
  return { type, source, options: before.split(' ')[5]!, superOptions: superOptions! };
}

test('mount(8) words become flags and data as mount(8) splits them', () => {
  assert.deepEqual(mountFlagsAndData(['rw', 'nosuid', 'nodev', 'noexec', 'mode=1777', 'size=1024']), { flags: 0x2 | 0x4 | 0x8, data: 'mode=1777,size=1024' });
  assert.deepEqual(mountFlagsAndData(['lowerdir=a:b,upperdir=/u,workdir=/w', 'ro']), { flags: 0x1, data: 'lowerdir=a:b,upperdir=/u,workdir=/w' });
  assert.deepEqual(mountFlagsAndData(['ro', 'rw', 'defaults']), { flags: 0, data: '' });
});

test('the helpers make the system calls here', () => {
  for (const h of helpers) assert.equal(h.systemCalls, true, `${h.kind}: perl is part of every Debian system and this is x64 or arm64`);
});

test('a tmpfs with flags and a relative-path overlay mount the same every way, and unmount together', async () => {
  const seen = [];
  for (const way of ways) {
    const dir = join(base, way.name.replace(/\W/g, '-'));
    const shm = join(dir, 'shm');
    const links = join(dir, 'l');
    const [lower1, lower2, upper, work, merged] = ['lower1', 'lower2', 'upper', 'work', 'merged'].map((d) => join(dir, d));
    for (const d of [shm, links, lower1!, lower2!, upper!, work!, merged!]) mkdirSync(d, { recursive: true });
    writeFileSync(join(lower1!, 'a'), 'one');
    writeFileSync(join(lower2!, 'a'), 'two');
    writeFileSync(join(lower1!, 'b'), 'b');
    // lowerdir names relative to cwd, as overlay.ts mounts through short links
    await run('ln', ['-s', lower1!, join(links, 'L1')]);
    await run('ln', ['-s', lower2!, join(links, 'L2')]);

    await way.mount({ type: 'tmpfs', source: 'shm', target: shm, options: ['rw', 'nosuid', 'nodev', 'noexec', 'mode=1777', 'size=65536k'] });
    const overlay: MountRequest = { type: 'overlay', source: 'overlay', target: merged!, options: [`lowerdir=L2:L1,upperdir=${upper},workdir=${work}`], cwd: links };
    await way.mount(overlay);
    const files = (await run('cat', [join(merged!, 'a'), join(merged!, 'b')])).stdout;
    assert.equal(files, 'twob', `${way.name}: the upper lower wins, the rest shows through`);
    seen.push({ shm: describe(shm), shmMode: (statSync(shm).mode & 0o7777).toString(8), overlayType: describe(merged!).type });

    // A failure says which target and why, and the others are still unmounted.
    const notMounted = join(dir, 'lower1');
    const failed = await way.unmount([merged!, notMounted, shm]);
    assert.match(failed ?? '', new RegExp(`${notMounted}`), `${way.name}: the failure names the target`);
    const left = (await readMounts()).filter((m) => m.mountPoint.startsWith(dir));
    assert.deepEqual(left, [], `${way.name}: both mounts are gone`);
    assert.equal(await way.unmount([]), null);

    await assert.rejects(way.mount({ type: 'overlay', source: 'overlay', target: merged!, options: ['lowerdir=missing'], cwd: links }), (e: Error) => {
      assert.match(e.message, new RegExp(merged!), `${way.name}: a failed mount names its target`);
      return true;
    });
  }
  for (const s of seen.slice(1)) assert.deepEqual(s, seen[0], 'mountinfo shows the same mounts');
  assert.match(seen[0]!.shm.options, /nosuid/);
  assert.match(seen[0]!.shm.options, /nodev/);
  assert.match(seen[0]!.shm.options, /noexec/);
  assert.match(seen[0]!.shm.superOptions, /size=65536k/);
  assert.equal(seen[0]!.shmMode, '1777');
});

test('new namespaces are pinned with the hostname set and lo up, the same every way', async () => {
  const seen = [];
  for (const way of ways) {
    const dir = join(base, `pin-${way.name.replace(/\W/g, '-')}`);
    mkdirSync(dir, { recursive: true });
    const files = Object.fromEntries((['net', 'ipc', 'uts'] as const).map((k) => [k, join(dir, k)])) as Required<PinRequest['files']>;
    for (const f of Object.values(files)) closeSync(openSync(f, 'a'));
    await way.pin({ files, hostname: 'pinned-pod' });
    const kinds: Record<string, string> = {};
    for (const [k, f] of Object.entries(files)) {
      const m = (await readMounts()).filter((e) => e.mountPoint === f).at(-1);
      assert.equal(m?.fsType, 'nsfs', `${way.name}: ${k} pinned`);
      assert.notEqual(m.root, readlinkSync(`/proc/self/ns/${k}`), `${way.name}: ${k} is a new namespace`);
      kinds[k] = m.root.split(':')[0]!;
    }
    const hostname = (await run('nsenter', [`--uts=${files.uts}`, '--', 'hostname'])).stdout.trim();
    const lo = (await run('nsenter', [`--net=${files.net}`, '--', 'ip', '-o', 'link', 'show', 'lo'])).stdout;
    seen.push({ kinds, hostname, loUp: /[<,]UP[,>]/.test(lo) });

    // Only the kinds asked for; no hostname without one.
    const ipcOnly = join(dir, 'ipc-only');
    closeSync(openSync(ipcOnly, 'a'));
    await way.pin({ files: { ipc: ipcOnly } });
    assert.equal((await readMounts()).filter((e) => e.mountPoint === ipcOnly).at(-1)?.root.split(':')[0], 'ipc');

    // A pin file that does not exist fails and says so.
    await assert.rejects(way.pin({ files: { net: join(dir, 'missing', 'net') } }), /missing|No such file/);

    assert.equal(await way.unmount([...Object.values(files), ipcOnly]), null);
  }
  for (const s of seen.slice(1)) assert.deepEqual(s, seen[0]);
  assert.deepEqual(seen[0], { kinds: { net: 'net', ipc: 'ipc', uts: 'uts' }, hostname: 'pinned-pod', loUp: true });
});

test('a file read inside pinned namespaces shows what a process there sees, the same every way', async () => {
  const dir = join(base, 'read-inside');
  mkdirSync(dir, { recursive: true });
  const files = { net: join(dir, 'net'), uts: join(dir, 'uts') };
  for (const f of Object.values(files)) closeSync(openSync(f, 'a'));
  await pinByCommand({ files, hostname: 'inside-pod' });
  try {
    const added = await run('nsenter', [`--net=${files.net}`, '--', 'ip', 'link', 'add', 'crisp-in0', 'type', 'veth', 'peer', 'name', 'crisp-in1']);
    assert.equal(added.code, 0, added.stderr);
    const interfaces = (text: string) => text.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    const seen = [];
    for (const way of ways) {
      const netDev = await way.readInside({ net: files.net }, '/proc/self/net/dev');
      assert.deepEqual(interfaces(netDev), ['crisp-in0', 'crisp-in1', 'lo'], `${way.name}: the pod's interfaces, not the host's`);
      const hostname = await way.readInside({ net: files.net, uts: files.uts }, '/proc/sys/kernel/hostname');
      seen.push({ interfaces: interfaces(netDev), hostname });

      // A file that holds no namespace of that kind, a missing pin and a missing file: each named.
      await assert.rejects(way.readInside({ net: files.uts }, '/proc/self/net/dev'), (e: Error) => {
        assert.match(e.message, new RegExp(files.uts), `${way.name}: names the file that is not a network namespace`);
        return true;
      });
      await assert.rejects(way.readInside({ net: join(dir, 'missing') }, '/proc/self/net/dev'), /missing/);
      await assert.rejects(way.readInside({ net: files.net }, join(dir, 'no-such-file')), /no-such-file/);
    }
    for (const s of seen.slice(1)) assert.deepEqual(s, seen[0]);
    assert.equal(seen[0]!.hostname, 'inside-pod\n');
  } finally {
    await unmountByCommand(Object.values(files));
  }
});
