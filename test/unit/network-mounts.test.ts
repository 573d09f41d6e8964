import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountInfo } from '../../src/host/mountinfo.js';
import { mountsOnIn } from '../../src/host/mountinfo.js';

test('mountinfo lines are parsed, with octal escapes undone', () => {
  const text = [
    '45 27 0:4 net:[4026532179] /run/crisp/ns/pod1/net rw - nsfs nsfs rw',
    '55 27 0:49 / /tmp/with\\040space/shm rw,nosuid shared:5 - tmpfs shm rw,size=1024k',
    'garbage',
    '',
  ].join('\n');
  assert.deepEqual(parseMountInfo(text), [
    { root: 'net:[4026532179]', mountPoint: '/run/crisp/ns/pod1/net', fsType: 'nsfs', source: 'nsfs' },
    { root: '/', mountPoint: '/tmp/with space/shm', fsType: 'tmpfs', source: 'shm' },
  ]);
});

test('a lookup by path parses only the lines that name it, stacked mounts in order, roots not mistaken', () => {
  const text = [
    '40 27 0:4 / /run/a rw - tmpfs tmpfs rw',
    '41 27 0:5 /run/b /run/ab rw - ext4 /dev/vda rw',
    '45 27 0:4 net:[1] /run/b rw - nsfs nsfs rw',
    '46 27 0:6 / /run/with\\040space rw - tmpfs shm rw',
    '47 45 0:7 / /run/b rw - tmpfs tmpfs rw',
    '48 27 0:8 / /run/b/c rw - tmpfs tmpfs rw',
  ].join('\n');
  const found = mountsOnIn(text, ['/run/b', '/run/with space', '/run/none', '/run/a']);
  assert.deepEqual(found.get('/run/b')?.map((m) => m.fsType), ['nsfs', 'tmpfs']);
  assert.equal(found.get('/run/with space')?.[0]?.source, 'shm');
  assert.equal(found.get('/run/a')?.length, 1);
  assert.equal(found.has('/run/none'), false);
  // agrees with parsing the whole table
  for (const [path, entries] of found) assert.deepEqual(entries, parseMountInfo(text).filter((m) => m.mountPoint === path));
});
