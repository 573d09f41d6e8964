import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync, cpSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EventStore, type StoredEvent } from '../../src/events/store.js';
import { openReader } from '../../src/events/database.js';
import { MIGRATIONS_DIR } from '../../src/paths.js';
import { isCrispError } from '../../src/errors.js';
import { containerCreate, containerLife, hexId, sandboxRun } from '../helpers/events.js';
import { next, stateOf } from '../../src/machines/index.js';

function tempDb(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state.db');
}

const dump = (path: string, table: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all();
  } finally {
    db.close();
  }
};

test('appends carry versions, update the live state and reach subscribers only after commit, in order', (t) => {
  const path = tempDb(t);
  const store = EventStore.open(path);
  t.after(() => store.close());
  const seen: StoredEvent[] = [];
  store.committed$.subscribe((e) => {
    // committed means visible to another connection already
    const reader = openReader(path);
    const row = reader.prepare('SELECT type FROM events WHERE seq = ?').get(e.seq) as { type: string } | undefined;
    reader.close();
    assert.equal(row?.type, e.event.type);
    seen.push(e);
  });
  const id = hexId();
  const first = store.append({ kind: 'sandbox', streamId: id, expectedVersion: 0, events: [sandboxRun()] });
  assert.equal(first[0]!.version, 1);
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 1, events: [{ type: 'SandboxNamespacesPinned', paths: { net: '/n' } }, { type: 'SandboxReady' }] });
  assert.deepEqual(seen.map((e) => [e.version, e.event.type]), [[1, 'SandboxRunRequested'], [2, 'SandboxNamespacesPinned'], [3, 'SandboxReady']]);
  assert.ok(seen.every((e, i) => i === 0 || e.seq > seen[i - 1]!.seq));
  const live = stateOf('sandbox', store.stream(id)!.snapshot);
  assert.equal(live.value, 'ready');
  assert.deepEqual(live.context.namespaces, { net: '/n' });
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test("a stream's listeners hear its events only, after committed$ and with the state kept, until stopped", (t) => {
  const store = EventStore.open(tempDb(t));
  t.after(() => store.close());
  const [a, b] = [hexId(), hexId()];
  const order: string[] = [];
  store.committed$.subscribe((e) => order.push(`committed ${e.event.type}`));
  const heard: [string, string][] = [];
  const stop = store.onStream(a, (e) => {
    order.push(`listener ${e.event.type}`);
    heard.push([e.event.type, String(stateOf('sandbox', store.stream(a)!.snapshot).value)]);
  });
  // a listener that stops itself while it is told, beside one that keeps listening
  let once = 0;
  const stopOnce = store.onStream(a, () => {
    once++;
    stopOnce();
  });
  store.append({ kind: 'sandbox', streamId: b, expectedVersion: 0, events: [sandboxRun()] });
  store.append({ kind: 'sandbox', streamId: a, expectedVersion: 0, events: [sandboxRun()] });
  store.append({ kind: 'sandbox', streamId: a, expectedVersion: 1, events: [{ type: 'SandboxNamespacesPinned', paths: { net: '/n' } }, { type: 'SandboxReady' }] });
  assert.deepEqual(heard, [['SandboxRunRequested', 'creating'], ['SandboxNamespacesPinned', 'ready'], ['SandboxReady', 'ready']]);
  assert.equal(once, 1);
  assert.deepEqual(order.slice(1, 3), ['committed SandboxRunRequested', 'listener SandboxRunRequested']);
  stop();
  store.append({ kind: 'sandbox', streamId: a, expectedVersion: 3, events: [{ type: 'SandboxStopRequested' }] });
  assert.equal(heard.length, 3);
});

test('a stale expected version is a conflict and changes nothing', (t) => {
  const store = EventStore.open(tempDb(t));
  t.after(() => store.close());
  const id = hexId();
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 0, events: [sandboxRun()] });
  assert.throws(
    () => store.append({ kind: 'sandbox', streamId: id, expectedVersion: 0, events: [sandboxRun()] }),
    (err) => isCrispError(err, 'Conflict') && /version 1, not 0/.test(err.message),
  );
  assert.equal(store.readStream(id).length, 1);
});

test('an event the machine does not accept in its state is refused with the state named', (t) => {
  const store = EventStore.open(tempDb(t));
  t.after(() => store.close());
  const id = hexId();
  store.append({ kind: 'container', streamId: id, expectedVersion: 0, events: [containerCreate(hexId())] });
  assert.throws(
    () => store.append({ kind: 'container', streamId: id, expectedVersion: 1, events: [{ type: 'ContainerStarted', startedAt: '1' }] }),
    (err) => isCrispError(err, 'FailedPrecondition') && /"creating"/.test(err.message) && /ContainerStarted/.test(err.message),
  );
});

test("a caller's fold is taken only while the stream is where the caller folded from", (t) => {
  const store = EventStore.open(tempDb(t));
  t.after(() => store.close());
  const id = hexId();
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 0, events: [sandboxRun()] });
  const from = store.stream(id)!.snapshot;
  const pinned = { type: 'SandboxNamespacesPinned' as const, paths: { net: '/n' } };
  const to = next('sandbox', from, pinned);
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 1, events: [pinned], folded: { from, to } });
  assert.equal(store.stream(id)!.snapshot, to, 'the fold is the live state, not folded again');

  // A fold from an older state is not trusted: the store checks and folds itself.
  const stale = { from, to: next('sandbox', to, { type: 'SandboxReady' }) };
  assert.throws(
    () => store.append({ kind: 'sandbox', streamId: id, expectedVersion: 2, events: [{ type: 'SandboxRunRequested' } as never], folded: stale }),
    (err) => isCrispError(err, 'FailedPrecondition'),
  );
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 2, events: [{ type: 'SandboxNetworkAttached', ips: ['10.0.0.2'], network: 'n' }], folded: stale });
  assert.notEqual(store.stream(id)!.snapshot, stale.to);
  assert.equal(stateOf('sandbox', store.stream(id)!.snapshot).value, stateOf('sandbox', next('sandbox', to, { type: 'SandboxNetworkAttached', ips: ['10.0.0.2'], network: 'n' })).value);
});

test('a batch over several streams commits whole or not at all', (t) => {
  const path = tempDb(t);
  const store = EventStore.open(path);
  t.after(() => store.close());
  const a = hexId();
  const b = hexId();
  const seen: string[] = [];
  store.committed$.subscribe((e) => seen.push(e.streamId));
  assert.throws(() =>
    store.append([
      { kind: 'sandbox', streamId: a, expectedVersion: 0, events: [sandboxRun('a')] },
      { kind: 'sandbox', streamId: b, expectedVersion: 0, events: [{ type: 'SandboxReady' }] },
    ]),
  );
  assert.equal(store.readStream(a).length, 0);
  assert.equal(store.stream(a), undefined);
  assert.deepEqual(dump(path, 'events'), []);
  assert.deepEqual(seen, []);
});

test('reopening replays every stream to the same state; ended streams take no more events', (t) => {
  const path = tempDb(t);
  const sandbox = hexId();
  const live = hexId();
  const gone = hexId();
  let before: unknown;
  {
    const store = EventStore.open(path);
    store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(), { type: 'SandboxReady' }] });
    store.append({ kind: 'container', streamId: live, expectedVersion: 0, events: containerLife(sandbox).slice(0, 6) });
    store.append({ kind: 'container', streamId: gone, expectedVersion: 0, events: containerLife(sandbox) });
    before = store.liveStreams().map(([id, s]) => [id, s.version, s.snapshot.value, s.snapshot.context]);
    store.close();
  }
  const store = EventStore.open(path);
  t.after(() => store.close());
  assert.deepEqual(store.liveStreams().map(([id, s]) => [id, s.version, s.snapshot.value, s.snapshot.context]), before);
  assert.equal(store.stream(live)?.snapshot.value, 'running');
  assert.equal(store.stream(gone), undefined);
  assert.throws(
    () => store.append({ kind: 'container', streamId: gone, expectedVersion: 12, events: [{ type: 'ContainerStartRequested' }] }),
    (err) => isCrispError(err, 'FailedPrecondition') && /has ended/.test(err.message),
  );
});

test('reopening the log replays every live state as the appends left it; no query tables are kept', (t) => {
  const path = tempDb(t);
  const store = EventStore.open(path);
  t.after(() => store.close());
  for (let i = 0; i < 20; i++) {
    const sandbox = hexId();
    store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(`p${i}`), { type: 'SandboxReady' }] });
    store.append({ kind: 'container', streamId: hexId(), expectedVersion: 0, events: containerLife(sandbox).slice(0, 3 + (i % 10)) });
  }
  store.append({ kind: 'runtime', streamId: 'runtime', expectedVersion: 0, events: [{ type: 'RuntimeConfigUpdated', podCidr: '10.0.0.0/24' }] });
  const states = (s: EventStore) => new Map(s.liveStreams().map(([id, live]) => [id, [live.kind, live.version, stateOf(live.kind, live.snapshot)]]));
  const before = states(store);
  const reopened = EventStore.open(path);
  t.after(() => reopened.close());
  assert.ok(reopened.replayedEvents > 40);
  assert.deepEqual(states(reopened), before);
  const tables = (dump(path, 'sqlite_master') as { type: string; name: string }[]).filter((r) => r.type === 'table').map((r) => r.name);
  for (const gone of ['sandboxes', 'containers', 'images', 'runtime_settings']) assert.ok(!tables.includes(gone), `${gone} is dropped by migration 3`);
});

test('migrations are applied once, in order, and recorded', (t) => {
  const path = tempDb(t);
  EventStore.open(path).close();
  EventStore.open(path).close();
  const applied = dump(path, 'schema_migrations') as { version: number; name: string }[];
  const shipped = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
  assert.deepEqual(applied.map((m) => m.version), shipped.map((_, i) => i + 1));
  assert.equal(applied[0]!.name, 'event_log');
});

test('a newer migration is applied on open, in its own transaction', (t) => {
  const path = tempDb(t);
  EventStore.open(path).close();
  const dir = join(path, '..', 'migrations');
  mkdirSync(dir);
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  const shipped = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length;
  const next = (n: number) => String(n).padStart(3, '0');
  writeFileSync(join(dir, `${next(shipped + 1)}_extra.sql`), 'CREATE TABLE extra (x INTEGER);');
  EventStore.open(path, dir).close();
  const versions = () => (dump(path, 'schema_migrations') as { version: number }[]).map((m) => m.version);
  assert.equal(versions().at(-1), shipped + 1);
  writeFileSync(join(dir, `${next(shipped + 2)}_broken.sql`), 'CREATE TABLE good (x INTEGER); THIS IS NOT SQL;');
  assert.throws(() => EventStore.open(path, dir));
  const tables = (dump(path, 'sqlite_master') as { name: string }[]).map((r) => r.name);
  assert.ok(!tables.includes('good'), 'a failed migration leaves nothing of itself');
  assert.equal(versions().at(-1), shipped + 1);
});

test('a database from a newer crisp is refused and left untouched', (t) => {
  const path = tempDb(t);
  EventStore.open(path).close();
  const db = new Database(path);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('future');
  db.close();
  const bytes = statSync(path).size;
  assert.throws(() => EventStore.open(path), (err) => isCrispError(err, 'FailedPrecondition') && /schema version 99/.test(err.message));
  assert.throws(() => openReader(path), /schema version 99/);
  assert.equal(statSync(path).size, bytes);
});

test('credentials never enter the log: an event carrying one is refused', (t) => {
  const path = tempDb(t);
  const store = EventStore.open(path);
  t.after(() => store.close());
  const id = 'sha256:' + 'a'.repeat(64);
  const pulled = { type: 'ImagePulled' as const, repoTags: ['x:1'], repoDigests: [], size: 1, layers: [], manifestDigest: 'sha256:b', user: '', pulledAt: '1' };
  assert.throws(
    () => store.append({ kind: 'image', streamId: id, expectedVersion: 0, events: [{ ...pulled, auth: { password: 'hunter2' } } as never] }),
    /credential/,
  );
  const raw = dump(path, 'events');
  assert.ok(!JSON.stringify(raw).includes('hunter2'));
  // a pod spec may use any annotation name, credential-like or not
  store.append({ kind: 'sandbox', streamId: hexId(), expectedVersion: 0, events: [{ ...sandboxRun(), config: { ...(sandboxRun() as { config: object }).config, annotations: { token: 'ok' } } } as never] });
});
