// The collector never races a pull: a collection asked for while a pull is in flight waits for it
// to end, and a pull that starts during a collection waits for the collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EventStore } from '../../src/events/store.js';
import { ContentCollector } from '../../src/actors/image-pull/content-gc.js';
import type { BlobStore } from '../../src/actors/storage/blob-store.js';
import type { LayerStore } from '../../src/actors/storage/layer-store.js';

function setup(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-unit-gc-'));
  const store = EventStore.open(join(dir, 'state.db'));
  t.after(() => (store.close(), rmSync(dir, { recursive: true, force: true })));
  const log: string[] = [];
  let release: () => void = () => undefined;
  let gate: Promise<void> = Promise.resolve();
  const layers = {
    async list() { log.push('list layers'); await gate; return ['sha256:' + 'a'.repeat(64)]; },
    async remove(id: string) { log.push(`remove ${id.slice(7, 9)}`); },
    async sweepPartial() { return []; },
  } as unknown as LayerStore;
  const blobs = { async list() { return []; }, async remove() {}, async sweepTemp() { return 0; } } as unknown as BlobStore;
  const collector = new ContentCollector({ store, blobs, layers, logger: pino({ level: 'silent' }), intervalMs: 0 });
  return { store, log, collector, hold: () => { gate = new Promise((r) => (release = r)); }, release: () => release() };
}

test('a collection asked for during a pull runs when the pull ends, and is recorded', async (t) => {
  const { store, log, collector } = setup(t);
  const leave = await collector.enter();
  collector.request('pull of x failed');
  await collector.settled();
  assert.deepEqual(log, [], 'nothing is listed while a pull is in flight');
  leave();
  await collector.settled();
  assert.deepEqual(log, ['list layers', 'remove aa']);
  const events = store.readStream('runtime').map((e) => e.event);
  assert.deepEqual(events.map((e) => e.type), ['ContentCollected']);
});

test('a pull that starts during a collection waits for it to end', async (t) => {
  const { log, collector, hold, release } = setup(t);
  hold();
  collector.request('periodic pass');
  let entered = false;
  const pull = collector.enter().then((leave) => { entered = true; log.push('pull entered'); return leave; });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(entered, false, 'the pull waits');
  release();
  (await pull)();
  assert.deepEqual(log, ['list layers', 'remove aa', 'pull entered']);
});
