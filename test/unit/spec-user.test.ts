import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isCrispError } from '../../src/errors.js';
import { resolveUser, parsePasswd, parseGroup } from '../../src/actors/spec/user.js';
import { resolveInRoot } from '../../src/actors/spec/rootfs-path.js';
import { criContainerConfig, criResources, criSecurityContext } from '../helpers/cri-defaults.js';
import type { LinuxContainerSecurityContext__Output } from '../../src/cri/proto/gen/runtime/v1/LinuxContainerSecurityContext.js';

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
app:x:1000:1000:App User:/home/app:/bin/sh
broken line
+nis:::
web:x:33:33::/var/www:/bin/false
`;
const GROUP = `root:x:0:
wheel:x:10:app,root
audio:x:29:app
app:x:1000:
www-data:x:33:
staff:x:50:web
`;

async function withRootfs(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string> = { '/etc/passwd': PASSWD, '/etc/group': GROUP }) {
  const root = await mkdtemp(path.join(tmpdir(), 'crisp-test-spec-user-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'etc'), { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(root, file), text);
  return root;
}

const cfg = (sc: Partial<LinuxContainerSecurityContext__Output>) =>
  criContainerConfig({ linux: { resources: criResources(), security_context: criSecurityContext(sc) } });
const int64 = (v: number) => ({ value: String(v) });

test('parsers skip comments, NIS and malformed lines', () => {
  assert.deepEqual(parsePasswd(PASSWD).map((p) => p.name), ['root', 'daemon', 'app', 'web']);
  assert.deepEqual(parseGroup(GROUP).find((g) => g.name === 'wheel'), { name: 'wheel', gid: 10, members: ['app', 'root'] });
});

test('user resolution table', async (t) => {
  const root = await withRootfs(t);
  const cases: { name: string; sc?: Partial<LinuxContainerSecurityContext__Output>; image?: string; want: object }[] = [
    { name: 'default root', want: { uid: 0, gid: 0, additionalGids: [0, 10], username: 'root', home: '/root' } },
    { name: 'image uid', image: '1000', want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], username: 'app', home: '/home/app' } },
    { name: 'image name', image: 'app', want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], username: 'app', home: '/home/app' } },
    { name: 'image uid:gid', image: '1000:50', want: { uid: 1000, gid: 50, additionalGids: [50, 10, 29], username: 'app', home: '/home/app' } },
    { name: 'image name:group', image: 'web:www-data', want: { uid: 33, gid: 33, additionalGids: [33, 50], username: 'web', home: '/var/www' } },
    { name: 'unknown uid', image: '4242', want: { uid: 4242, gid: 0, additionalGids: [0], home: '/' } },
    { name: 'unknown uid:gid', image: '4242:4343', want: { uid: 4242, gid: 4343, additionalGids: [4343], home: '/' } },
    { name: 'run_as_user wins over image', sc: { run_as_user: int64(33) }, image: 'app', want: { uid: 33, gid: 33, additionalGids: [33, 50], username: 'web', home: '/var/www' } },
    { name: 'run_as_user + run_as_group', sc: { run_as_user: int64(1000), run_as_group: int64(5) }, want: { uid: 1000, gid: 5, additionalGids: [5, 10, 29], username: 'app', home: '/home/app' } },
    { name: 'run_as_username', sc: { run_as_username: 'app' }, want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], username: 'app', home: '/home/app' } },
    { name: 'supplemental groups', sc: { run_as_user: int64(1000), supplemental_groups: ['2000', '10'] }, want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29, 2000], username: 'app', home: '/home/app' } },
    { name: 'Strict policy skips /etc/group', sc: { run_as_user: int64(1000), supplemental_groups: ['2000'], supplemental_groups_policy: 'Strict' }, want: { uid: 1000, gid: 1000, additionalGids: [1000, 2000], username: 'app', home: '/home/app' } },
  ];
  for (const c of cases) {
    assert.deepEqual(await resolveUser(root, cfg(c.sc ?? {}), c.image ?? ''), c.want, c.name);
  }
});

test('user resolution errors name the field', async (t) => {
  const root = await withRootfs(t);
  const cases: { sc?: Partial<LinuxContainerSecurityContext__Output>; image?: string; kind: string; re: RegExp }[] = [
    { sc: { run_as_group: int64(5) }, kind: 'InvalidArgument', re: /run_as_group.*without run_as_user/ },
    { sc: { run_as_group: int64(5) }, image: 'app', kind: 'InvalidArgument', re: /run_as_group/ },
    { sc: { run_as_username: 'ghost' }, kind: 'InvalidArgument', re: /run_as_username.*"ghost"/ },
    { image: 'ghost', kind: 'InvalidArgument', re: /image config User.*"ghost"/ },
    { image: 'app:nogroup', kind: 'InvalidArgument', re: /group "nogroup"/ },
    { sc: { run_as_user: { value: '-1' } }, kind: 'InvalidArgument', re: /run_as_user/ },
    { sc: { run_as_user: int64(1), supplemental_groups: ['x'] }, kind: 'InvalidArgument', re: /supplemental_groups\[0\]/ },
  ];
  for (const c of cases) {
    await assert.rejects(resolveUser(root, cfg(c.sc ?? {}), c.image ?? ''), (err: unknown) => {
      assert.ok(isCrispError(err, c.kind as never), String(err));
      assert.match((err as Error).message, c.re);
      return true;
    }, JSON.stringify(c));
  }
});

test('a rootfs without /etc/passwd still resolves numeric users', async (t) => {
  const root = await withRootfs(t, {});
  assert.deepEqual(await resolveUser(root, cfg({}), '123:456'), { uid: 123, gid: 456, additionalGids: [456], home: '/' });
  await assert.rejects(resolveUser(root, cfg({}), 'app'), /"app"/);
});

test('symlinks cannot escape the rootfs', async (t) => {
  const root = await withRootfs(t, {});
  const outside = await mkdtemp(path.join(tmpdir(), 'crisp-test-spec-outside-'));
  t.after(() => rm(outside, { recursive: true, force: true }));
  await writeFile(path.join(outside, 'passwd'), 'evil:x:666:666::/:/bin/sh\n');
  // absolute and relative links that would point at the host's file from outside the root
  await symlink(path.join(outside, 'passwd'), path.join(root, 'etc/passwd'));
  await symlink(`../../../../../../../../${outside}/passwd`, path.join(root, 'etc/group'));
  assert.equal(await resolveInRoot(root, '/etc/passwd'), path.join(root, outside, 'passwd'));
  assert.equal(await resolveInRoot(root, '/etc/group'), path.join(root, outside, 'passwd'));
  await assert.rejects(resolveUser(root, cfg({}), 'evil'), /"evil"/);
  // a link that stays inside works
  await mkdir(path.join(root, 'data'));
  await writeFile(path.join(root, 'data/pw'), 'inside:x:7:7::/:/bin/sh\n');
  await rm(path.join(root, 'etc/passwd'));
  await symlink('/data/pw', path.join(root, 'etc/passwd'));
  assert.equal((await resolveUser(root, cfg({}), 'inside')).uid, 7);
  // link loops are reported, not followed forever
  await symlink('loop-b', path.join(root, 'loop-a'));
  await symlink('loop-a', path.join(root, 'loop-b'));
  await assert.rejects(resolveInRoot(root, '/loop-a'), /too many symlinks/);
});
