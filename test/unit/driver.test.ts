import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore, type StoredEvent } from '../../src/events/store.js';
import { StreamDriver, waitForState, type Planner } from '../../src/actors/driver.js';
import { silentLogger } from '../../src/log.js';
import { hexId } from '../helpers/events.js';

function tempStore(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-driver-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state.db');
}

// A planner over pull streams: store three layers, then complete; "fail-at" makes a layer fail.
// With `redoable`, the layers listed are marked redoable; `noFailed` leaves failed() out.
function planner(effects: string[], failAt?: number, o: { redoable?: number[]; noFailed?: boolean } = {}): Planner<'pull'> {
  return (id, state) => {
    if (state.value !== 'pulling') return null;
    const index = state.context.layers.length;
    if (index < 3) {
      return {
        name: `layer-${index}`,
        run: async () => {
          effects.push(`${id.slice(0, 4)}:${index}`);
          if (index === failAt) throw new Error('disk full');
          return [{ type: 'ImageLayerStored', index, digest: `sha256:${index}`, chainId: `sha256:c${index}`, size: 1, reused: false }];
        },
        ...(!o.noFailed && { failed: (err: unknown) => [{ type: 'ImagePullFailed' as const, message: (err as Error).message }] }),
        ...(o.redoable?.includes(index) && { redoable: true as const }),
      };
    }
    return { name: 'complete', run: async () => [{ type: 'ImagePullCompleted', imageId: 'sha256:img', servedBy: 'test' }] };
  };
}

const request = (store: EventStore, id: string) =>
  store.append({ kind: 'pull', streamId: id, expectedVersion: 0, events: [{ type: 'ImagePullRequested', reference: 'x', requestedAt: '1' }] });

test('the driver runs one planned step at a time until the state is settled', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const effects: string[] = [];
  const driver = new StreamDriver(store, 'pull', planner(effects), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const a = hexId();
  const b = hexId();
  const done = waitForState(store, 'pull', a, () => false);
  request(store, a);
  request(store, b);
  assert.equal(await done, null, 'waitForState resolves null when the stream ends');
  await driver.idleAll();
  assert.deepEqual(store.readStream(a).map((e) => e.event.type), ['ImagePullRequested', 'ImageLayerStored', 'ImageLayerStored', 'ImageLayerStored', 'ImagePullCompleted']);
  assert.deepEqual(effects.filter((e) => e.startsWith(a.slice(0, 4))), [0, 1, 2].map((i) => `${a.slice(0, 4)}:${i}`));
  assert.equal(store.stream(b), undefined, 'both streams ran to their end');
});

test('a failing step records what its failed() says', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const driver = new StreamDriver(store, 'pull', planner([], 1), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  request(store, id);
  await driver.idleAll();
  const events = store.readStream(id).map((e) => e.event);
  assert.deepEqual(events.map((e) => e.type), ['ImagePullRequested', 'ImageLayerStored', 'ImagePullFailed']);
  assert.equal((events[2] as { message: string }).message, 'disk full');
});

test('after a restart, driveAll continues every stream from where its log stopped', async (t) => {
  const path = tempStore(t);
  const id = hexId();
  {
    const store = EventStore.open(path);
    request(store, id);
    store.append({ kind: 'pull', streamId: id, expectedVersion: 1, events: [{ type: 'ImageLayerStored', index: 0, digest: 'sha256:0', chainId: 'sha256:c0', size: 1, reused: false }] });
    store.close();
  }
  const store = EventStore.open(path);
  t.after(() => store.close());
  const effects: string[] = [];
  const driver = new StreamDriver(store, 'pull', planner(effects), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  await driver.driveAll();
  assert.deepEqual(effects, [`${id.slice(0, 4)}:1`, `${id.slice(0, 4)}:2`], 'layer 0 is not redone');
  assert.equal(store.stream(id), undefined);
});

test('waitForState answers at once when the state already holds, and on a later event otherwise', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const id = hexId();
  request(store, id);
  const now = await waitForState(store, 'pull', id, (s) => s.value === 'pulling');
  assert.equal(now?.value, 'pulling');
  const later = waitForState(store, 'pull', id, (s) => s.context.layers.length === 1);
  store.append({ kind: 'pull', streamId: id, expectedVersion: 1, events: [{ type: 'ImageLayerStored', index: 0, digest: 'sha256:0', chainId: 'sha256:c0', size: 1, reused: false }] });
  assert.equal((await later)?.context.layers.length, 1);
  const controller = new AbortController();
  const never = waitForState(store, 'pull', id, () => false, controller.signal);
  controller.abort(new Error('client went away'));
  await assert.rejects(never, /client went away/);
});

test('a step without failed() that throws is retried by the driver itself, backing off, until it succeeds', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const attempts: number[] = [];
  const started = Date.now();
  const flaky: Planner<'pull'> = (_id, state) => {
    if (state.value !== 'pulling') return null;
    return {
      name: 'release',
      run: async () => {
        attempts.push(Date.now() - started);
        if (attempts.length < 3) throw new Error('device or resource busy');
        return [{ type: 'ImagePullCompleted', imageId: 'sha256:img', servedBy: 'test' }];
      },
    };
  };
  const driver = new StreamDriver(store, 'pull', flaky, silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  // The driver's retry timers do not hold a process open (the daemon's server does): this test's does.
  const alive = setInterval(() => undefined, 100);
  t.after(() => clearInterval(alive));
  request(store, id);
  assert.equal(await waitForState(store, 'pull', id, () => false), null, 'the stream ended with no kick from outside');
  assert.equal(attempts.length, 3);
  // 1 s, then 2 s of back-off between the attempts
  assert.ok(attempts[1]! - attempts[0]! >= 900 && attempts[2]! - attempts[1]! >= 1900, `attempts at ${attempts.join(', ')} ms`);
});

test('a pure step is recorded in the same append as the step before it', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  // The same flow, with the completion marked pure: it concludes from the state, it does nothing.
  const effects: string[] = [];
  const base = planner(effects);
  const withPure: Planner<'pull'> = (id, state) => {
    const step = base(id, state);
    return step?.name === 'complete' ? { ...step, pure: true } : step;
  };
  const driver = new StreamDriver(store, 'pull', withPure, silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  request(store, id);
  await driver.idleAll();
  const events = store.readStream(id);
  assert.deepEqual(events.map((e) => e.event.type), ['ImagePullRequested', 'ImageLayerStored', 'ImageLayerStored', 'ImageLayerStored', 'ImagePullCompleted']);
  const [last, completed] = events.slice(-2);
  assert.equal(completed!.ts, last!.ts, 'the last layer and the completion share one append');
  assert.notEqual(events[2]!.ts, events[3]!.ts, 'steps with effects are appended one by one');
});

/** Records the facts each append commits, grouped by append (they share its start). */
function recordAppends(store: EventStore, t: { after(fn: () => void): void }): Map<bigint, StoredEvent[]> {
  const groups = new Map<bigint, StoredEvent[]>();
  const sub = store.committed$.subscribe((e) => groups.set(e.appendStartNs!, [...(groups.get(e.appendStartNs!) ?? []), e]));
  t.after(() => sub.unsubscribe());
  return groups;
}
const types = (groups: Map<bigint, StoredEvent[]>) => [...groups.values()].map((g) => g.map((e) => e.event.type));

test('redoable steps that follow each other are recorded in one append; the others each in their own', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const effects: string[] = [];
  const groups = recordAppends(store, t);
  // Layers 1 and 2 are redoable, layer 0 is not: 0 alone, then 1 and 2 together.
  const driver = new StreamDriver(store, 'pull', planner(effects, undefined, { redoable: [1, 2] }), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  request(store, id);
  await driver.idleAll();
  assert.deepEqual(types(groups), [['ImagePullRequested'], ['ImageLayerStored'], ['ImageLayerStored', 'ImageLayerStored'], ['ImagePullCompleted']]);
  assert.equal(effects.length, 3, 'each effect ran once');
  // The held-back fact keeps the time its step ended, before the next step's and the append's.
  const [layer1, layer2] = [...groups.values()][2]!;
  assert.ok(layer1!.ts < layer2!.ts && layer2!.ts <= layer1!.appendStartNs!, `${layer1!.ts} < ${layer2!.ts} <= ${layer1!.appendStartNs}`);
  assert.deepEqual(store.readStream(id).map((e) => e.ts), [...groups.values()].flat().map((e) => e.ts), 'the log keeps those times');
});

test('a redoable step that fails after another is recorded with the facts before it', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const groups = recordAppends(store, t);
  const driver = new StreamDriver(store, 'pull', planner([], 1, { redoable: [0, 1] }), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  request(store, id);
  await driver.idleAll();
  assert.deepEqual(types(groups), [['ImagePullRequested'], ['ImageLayerStored', 'ImagePullFailed']]);
});

test('a joined redoable step that fails with no failure to record leaves the facts before it committed', async (t) => {
  const store = EventStore.open(tempStore(t));
  t.after(() => store.close());
  const effects: string[] = [];
  const groups = recordAppends(store, t);
  const driver = new StreamDriver(store, 'pull', planner(effects, 1, { redoable: [0, 1], noFailed: true }), silentLogger);
  driver.start();
  t.after(() => driver.stop());
  const id = hexId();
  request(store, id);
  await driver.idleAll();
  // Layer 0 is recorded; layer 1 ran once joined and once on its own, and waits for a retry.
  assert.deepEqual(types(groups), [['ImagePullRequested'], ['ImageLayerStored']]);
  assert.deepEqual(effects.map((e) => e.slice(-1)), ['0', '1', '1']);
});
