import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { recoverEach } from '../../src/actors/recovery.js';
import { silentLogger } from '../../src/log.js';

test('recoverEach: a hung item is named and left running; the others finish; concurrency is bounded', async () => {
  let inFlight = 0;
  let peak = 0;
  const finished: string[] = [];
  const ids = ['hang', ...Array.from({ length: 9 }, (_, i) => `ok${i}`), 'boom'];
  const began = Date.now();
  const overran = await recoverEach(ids, { itemTimeoutMs: 200, concurrency: 3, logger: silentLogger, what: 'container' }, async (id) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      if (id === 'hang') await sleep(5_000);
      if (id === 'boom') throw new Error('runc state failed');
      await sleep(20);
      finished.push(id);
    } finally {
      inFlight--;
    }
  });
  assert.deepEqual(overran, ['hang']);
  assert.equal(finished.length, 9, 'every other item finished; a failure does not stop the rest');
  assert.ok(peak <= 3, `at most 3 at once, saw ${peak}`);
  assert.ok(Date.now() - began < 2_000, 'the hung item did not hold the whole recovery');
});
