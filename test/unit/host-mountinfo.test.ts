// mountedHere tells a mount point from its parent's device: /proc and /sys are mounts on /, and
// a caller asking about several paths of one directory has each parent stat'ed once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountedHere } from '../../src/host/mountinfo.js';

test('mountedHere finds the mounts on / and keeps each parent device once', () => {
  const parentDevs = new Map<string, number>();
  assert.equal(mountedHere('/proc', parentDevs), true);
  assert.equal(mountedHere('/sys', parentDevs), true);
  assert.equal(mountedHere('/proc/self/fd', parentDevs), false);
  assert.deepEqual([...parentDevs.keys()].sort(), ['/', '/proc/self']);
  assert.equal(mountedHere('/no/such/path', parentDevs), false);
  assert.equal(parentDevs.size, 2);
  // without a map, the same answers
  assert.equal(mountedHere('/proc'), true);
  assert.equal(mountedHere('/proc/self/fd'), false);
});
