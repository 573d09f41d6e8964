import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { EventStore } from '../../src/events/store.js';
import { compactionSummary } from '../../src/events/retention.js';
import { CRISP_BIN } from '../helpers/daemon.js';
import { containerLife, hexId, sandboxRun } from '../helpers/events.js';
import type { DomainEvent } from '../../src/machines/events.js';

const run = promisify(execFile);

function tempRoot(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-retention-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sandboxEnd: DomainEvent[] = [
  { type: 'SandboxStopRequested' }, { type: 'SandboxStopped' }, { type: 'SandboxRemoveRequested' }, { type: 'SandboxRemoved' },
];

/** One pod's whole life: sandbox and container created, run, stopped and removed. */
function churnPod(store: EventStore): void {
  const sandbox = hexId();
  store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(`p${sandbox.slice(0, 6)}`), { type: 'SandboxReady' }] });
  store.append({ kind: 'container', streamId: hexId(), expectedVersion: 0, events: containerLife(sandbox) });
  store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 2, events: sandboxEnd });
}

test('compaction drops ended streams past the age, keeps live, image and runtime streams, and counts what it dropped', (t) => {
  const root = tempRoot(t);
  const store = EventStore.open(join(root, 'state.db'));
  t.after(() => store.close());
  churnPod(store);
  const live = hexId();
  store.append({ kind: 'sandbox', streamId: live, expectedVersion: 0, events: [sandboxRun('live'), { type: 'SandboxReady' }] });
  const image = `sha256:${'b'.repeat(64)}`;
  store.append({ kind: 'image', streamId: image, expectedVersion: 0, events: [
    { type: 'ImagePulled', repoTags: ['x:1'], repoDigests: [], size: 1, layers: [], manifestDigest: 'sha256:c', user: '', pulledAt: '1' },
    { type: 'ImageRemoved' },
  ] });
  store.append({ kind: 'runtime', streamId: 'runtime', expectedVersion: 0, events: [{ type: 'RuntimeConfigUpdated', podCidr: '10.0.0.0/24' }] });

  assert.deepEqual(store.compact(60_000), { streams: 0, events: 0 }, 'nothing has been over for a minute yet');
  const liveOf = (s: EventStore) => s.liveStreams().map(([id, live]) => [id, live.version, live.snapshot.value]);
  const liveBefore = liveOf(store);
  const dropped = store.compact(0);
  assert.deepEqual(dropped, { streams: 2, events: 2 + 12 + 4 });
  const db = new Database(join(root, 'state.db'), { readonly: true });
  t.after(() => db.close());
  const kinds = (db.prepare('SELECT stream_kind AS k, COUNT(*) AS n FROM events GROUP BY stream_kind ORDER BY k').all() as { k: string; n: number }[]);
  assert.deepEqual(kinds.map((r) => r.k), ['image', 'runtime', 'sandbox']);
  assert.equal(store.readStream(live).length, 2, 'a live pod keeps its history');
  assert.deepEqual(compactionSummary(db).map((s) => [s.kind, s.streams, s.events]), [['container', 1, 12], ['sandbox', 1, 6]]);
  // live states never held ended streams, so a replay of the compacted log gives the same ones
  const reopened = EventStore.open(join(root, 'state.db'));
  t.after(() => reopened.close());
  assert.deepEqual(liveOf(reopened), liveBefore);
});

test('crisp events and crisp replay say when history was compacted', async (t) => {
  const root = tempRoot(t);
  const store = EventStore.open(join(root, 'state.db'));
  churnPod(store);
  store.compact(0);
  store.close();
  const events = await run(process.execPath, [CRISP_BIN, 'events', '--root', root]);
  assert.match(events.stderr, /history of 2 ended streams, 18 events, has been compacted by retention/);
  const replay = await run(process.execPath, [CRISP_BIN, 'replay', 'abcdef', '--root', root]).then(() => null, (e) => e);
  assert.match(replay.stderr, /no stream matches "abcdef" \(the history of 2 ended streams/);
});

test('under a churn of 3,000 pods with retention the database stays flat', (t) => {
  const root = tempRoot(t);
  const path = join(root, 'state.db');
  const store = EventStore.open(path);
  t.after(() => store.close());
  const size = () => statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
  const sizes: number[] = [];
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 500; i++) churnPod(store);
    store.compact(0);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    sizes.push(size());
  }
  const total = compactionSummary(store.db).reduce((n, k) => n + k.streams, 0);
  assert.equal(total, 6000, 'every ended sandbox and container stream was compacted');
  // SQLite reuses freed pages: after the first round the file stops growing.
  assert.ok(sizes.at(-1)! <= sizes[0]! * 1.1, `db sizes by round: ${sizes.join(', ')}`);
  t.diagnostic(`db bytes after each 500-pod round: ${sizes.join(', ')}`);
});
