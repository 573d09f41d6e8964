import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concurrencyLimit } from '../../src/async.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('concurrency limit: at most `limit` jobs run, the rest start in the order they came as slots free', async () => {
  const gate = concurrencyLimit(2);
  const jobs = Array.from({ length: 5 }, () => deferred<string>());
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const results = jobs.map((d, i) =>
    gate(async () => {
      started.push(i);
      most = Math.max(most, ++running);
      try {
        return await d.promise;
      } finally {
        running--;
      }
    }).then((v) => `ok ${v}`, (e: Error) => `failed ${e.message}`),
  );
  await turn();
  assert.deepEqual(started, [0, 1]);
  jobs[1]!.reject(new Error('one'));
  await turn();
  assert.deepEqual(started, [0, 1, 2], 'a failed job frees its slot for the next in line');
  jobs[0]!.resolve('zero');
  jobs[2]!.resolve('two');
  await turn();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  jobs[3]!.resolve('three');
  jobs[4]!.resolve('four');
  assert.deepEqual(await Promise.all(results), ['ok zero', 'failed one', 'ok two', 'ok three', 'ok four']);
  assert.equal(most, 2);
  // With every slot free again, a job starts at once.
  assert.equal(await gate(async () => 'later'), 'later');
  assert.throws(() => concurrencyLimit(0), /limit must be a positive integer, got 0/);
});
