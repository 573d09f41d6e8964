import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { EventStore } from '../../src/events/store.js';
import { checkIntegrity, compactUtcStamp, keepAside, keptAsideCopies } from '../../src/events/integrity.js';
import { formatVersions } from '../../src/events/salvage.js';
import { isCrispError } from '../../src/errors.js';
import { CRISP_BIN } from '../helpers/daemon.js';
import { containerLife, hexId, sandboxRun } from '../helpers/events.js';

const run = promisify(execFile);
const crisp = (...args: string[]) => run(process.execPath, [CRISP_BIN, ...args], { timeout: 30_000 });
const fails = (...args: string[]) => crisp(...args).then(() => assert.fail(`crisp ${args.join(' ')} should fail`), (err) => err as { code: number; stderr: string });

function stateDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-integrity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Row { seq: bigint; stream_kind: string; stream_id: string; version: bigint; type: string; schema_version: bigint; data: string; ts: bigint }

function eventRows(db: Database.Database): Row[] {
  return db.prepare('SELECT seq, stream_kind, stream_id, version, type, schema_version, data, ts FROM events ORDER BY seq').safeIntegers(true).all() as Row[];
}

/** Pods with a running container each, and every third with a container that has come and gone. */
function writePods(store: EventStore, pods: number, tag: string): void {
  for (let i = 0; i < pods; i++) {
    const sandbox = hexId();
    store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(`${tag}${i}`), { type: 'SandboxReady' }] });
    store.append({ kind: 'container', streamId: hexId(), expectedVersion: 0, events: containerLife(sandbox).slice(0, 6) });
    if (i % 3 === 0) store.append({ kind: 'container', streamId: hexId(), expectedVersion: 0, events: containerLife(sandbox) });
  }
}

/**
 * Like writePods, but with histories spread across pages as a long-running node's are: each
 * container starts one pod later than it was created, and the daemon's own stream records a
 * start or stop between pods. A lost page then leaves holes inside streams, not only whole ones.
 */
function writeInterleaved(store: EventStore, pods: number, tag: string): void {
  let waiting: string | undefined;
  const startWaiting = () => {
    if (waiting) store.append({ kind: 'container', streamId: waiting, expectedVersion: 4, events: containerLife('').slice(4, 6) });
  };
  for (let i = 0; i < pods; i++) {
    const sandbox = hexId();
    store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(`${tag}${i}`), { type: 'SandboxReady' }] });
    const container = hexId();
    store.append({ kind: 'container', streamId: container, expectedVersion: 0, events: containerLife(sandbox).slice(0, 4) });
    const runtime = store.stream('runtime');
    store.append({
      kind: 'runtime', streamId: 'runtime', expectedVersion: runtime?.version ?? 0,
      events: [runtime?.snapshot.value === 'running' ? { type: 'DaemonStopped', pid: 100 + i } : { type: 'DaemonStarted', pid: 100 + i, version: '0.1.0' }],
    });
    startWaiting();
    waiting = container;
    if (i % 3 === 0) store.append({ kind: 'container', streamId: hexId(), expectedVersion: 0, events: containerLife(sandbox) });
  }
  startWaiting();
}

/** What the salvage must say about each stream, worked out from the rows that were lost. */
function expectedLosses(original: Row[], recovered: Set<bigint>): { lines: string[]; headless: string[] } {
  const byStream = new Map<string, { kind: string; kept: number[]; lost: number[] }>();
  for (const r of original) {
    const s = byStream.get(r.stream_id) ?? { kind: r.stream_kind, kept: [], lost: [] };
    (recovered.has(r.seq) ? s.kept : s.lost).push(Number(r.version));
    byStream.set(r.stream_id, s);
  }
  const lines: string[] = [];
  const headless: string[] = [];
  for (const [id, s] of byStream) {
    if (s.lost.length === 0) continue;
    const top = Math.max(0, ...s.kept);
    if (s.kept.length === 0) {
      lines.push(`  ${s.kind} ${id}: lost entirely (it had ${s.lost.length} events)`);
      continue;
    }
    const inside = s.lost.filter((v) => v < top);
    const tail = s.lost.length - inside.length;
    const what = [inside.length ? `missing versions ${formatVersions(inside)}` : '', tail ? `its last ${tail} events lost` : ''].filter(Boolean).join(', ');
    lines.push(`  ${s.kind} ${id}: ${what}`);
    if (s.lost.includes(1)) headless.push(id);
  }
  return { lines, headless };
}

function liveStates(store: EventStore): Map<string, { kind: string; version: number; value: unknown }> {
  return new Map(store.liveStreams().map(([id, s]) => [id, { kind: s.kind, version: s.version, value: s.snapshot.value }]));
}

function pagesOf(path: string, name: string, type: 'leaf' | 'internal'): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno').pluck().all(name, type) as number[]);
  } finally {
    db.close();
  }
}

function overwrite(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

const PAGE = 4096;
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const companions = ['', '-wal', '-shm'];

function openFailure(path: string): Error & { kind: string } {
  try {
    EventStore.open(path).close();
  } catch (err) {
    assert.ok(isCrispError(err, 'FailedPrecondition'), `expected FailedPrecondition, got ${String(err)}`);
    return err;
  }
  assert.fail(`opening ${path} should fail`);
}

test('a healthy log passes the check and opens with nothing renamed', (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const store = EventStore.open(path);
  writePods(store, 10, 'p');
  const before = liveStates(store);
  store.close();
  assert.deepEqual(checkIntegrity(path).problems, []);
  assert.deepEqual(checkIntegrity(path, { thorough: true }).problems, []);
  const again = EventStore.open(path);
  try {
    assert.deepEqual(liveStates(again), before);
  } finally {
    again.close();
  }
  assert.deepEqual(readdirSync(dir), ['state.db']);
});

test('a damaged events page: kept aside with its WAL, no fresh start over it, the readable events salvaged', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const first = EventStore.open(path);
  writeInterleaved(first, 40, 'p');
  first.close();
  // A second connection stays open while more events commit, so they are still in the WAL when
  // the damage is found, as after a crash: the WAL must travel with the kept copy.
  const holder = new Database(path, { readonly: true });
  t.after(() => holder.close());
  const inMainFile = holder.prepare('SELECT COUNT(*) FROM events').pluck().get() as number;
  const second = EventStore.open(path);
  writePods(second, 3, 'late');
  const states = liveStates(second);
  second.close();
  const original = eventRows(holder);
  holder.close();
  assert.ok(existsSync(`${path}-wal`), 'events are still in the WAL');

  const leaves = pagesOf(path, 'events', 'leaf');
  const victim = leaves[Math.floor(leaves.length / 2)]!;
  overwrite(path, (victim - 1) * PAGE, Buffer.alloc(PAGE, 0xa5));
  const hashes = companions.map((c) => sha(path + c));

  const err = openFailure(path);
  const [kept] = keptAsideCopies(path);
  assert.ok(kept, 'a kept-aside copy exists');
  assert.match(kept, /\/state\.db\.damaged-\d{8}T\d{6}Z$/);
  assert.ok(err.message.includes(`${path} failed its integrity check`), err.message);
  assert.match(err.message, /SQLite reported: SQLITE_CORRUPT/);
  assert.ok(err.message.includes(`kept aside, nothing deleted, as ${kept} (with its -wal, -shm)`), err.message);
  assert.ok(err.message.includes(`crisp salvage --from ${kept} --root ${dir}`), err.message);
  assert.deepEqual(companions.map((c) => existsSync(path + c)), [false, false, false]);
  assert.deepEqual(companions.map((c) => sha(kept + c)), hashes, 'the kept files are the damaged files, byte for byte');

  const refused = openFailure(path);
  assert.match(refused.message, /will not start with an empty event log/);
  assert.ok(refused.message.includes(kept) && refused.message.includes('move the damaged copies'), refused.message);
  assert.ok(!existsSync(path), 'no empty state.db was created');

  const { stdout } = await crisp('salvage', '--from', kept, '--root', dir);
  const recoveredRows = (() => {
    const db = new Database(path, { readonly: true });
    try {
      return eventRows(db);
    } finally {
      db.close();
    }
  })();
  const recoveredSeqs = new Set(recoveredRows.map((r) => r.seq));
  const lost = original.filter((r) => !recoveredSeqs.has(r.seq));
  assert.ok(lost.length > 0 && recoveredRows.length > original.length / 2, `lost ${lost.length} of ${original.length}`);
  // One page holds a run of consecutive seqs.
  assert.equal(lost.at(-1)!.seq - lost[0]!.seq + 1n, BigInt(lost.length));
  assert.deepEqual(recoveredRows, original.filter((r) => recoveredSeqs.has(r.seq)), 'recovered rows are unchanged');
  assert.ok(original.slice(inMainFile).every((r) => recoveredSeqs.has(r.seq)), 'the events only the WAL held were recovered');
  assert.match(stdout, new RegExp(`^salvaged ${recoveredRows.length} events from ${kept} into ${path}$`, 'm'));
  assert.match(stdout, new RegExp(`^${lost.length} rows could not be read`, 'm'));
  const damagedStreams = new Set(lost.map((r) => r.stream_id));
  const expected = expectedLosses(original, recoveredSeqs);
  for (const line of expected.lines) assert.ok(stdout.split('\n').includes(line), `reported: ${line}\n${stdout}`);
  assert.ok(expected.lines.some((l) => l.startsWith('  runtime runtime: missing versions')), 'a hole inside the daemon stream');
  assert.ok(expected.headless.length > 0, 'a stream lost its first events');
  const refusedPart = stdout.slice(stdout.indexOf('did not take'));
  for (const id of expected.headless) assert.ok(refusedPart.includes(id), `events of ${id} after its lost head are named`);
  for (const id of states.keys()) if (!damagedStreams.has(id)) assert.ok(!stdout.includes(id), `intact stream ${id} is not named`);
  assert.match(stdout, /^the damaged copy is kept at .*; crisp can start again$/m);
  assert.deepEqual(companions.map((c) => sha(kept + c)), hashes, 'salvage only read the kept copy');

  const reopened = EventStore.open(path);
  try {
    const now = liveStates(reopened);
    for (const [id, state] of states) if (!damagedStreams.has(id)) assert.deepEqual(now.get(id), state, `stream ${id}`);
    // Replay went through the refused events: the stream stays where its machine starts.
    for (const id of expected.headless) assert.equal(now.get(id)?.value, 'new', `stream ${id}`);
    const next = reopened.append({ kind: 'sandbox', streamId: hexId(), expectedVersion: 0, events: [sandboxRun('after')] });
    assert.ok(BigInt(next[0]!.seq) > original.at(-1)!.seq, 'seqs keep growing past the salvaged ones');
  } finally {
    reopened.close();
  }

  const again = await fails('salvage', '--from', kept, '--root', dir);
  assert.equal(again.code, 1);
  assert.ok(again.stderr.includes(`${path} already holds`), again.stderr);
});

test('a damaged index page is reported by quick_check, and every event survives the salvage', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const store = EventStore.open(path);
  writePods(store, 40, 'p');
  const states = liveStates(store);
  const original = eventRows(store.db);
  store.close();
  // The index behind UNIQUE (stream_id, version): the events table's one index.
  const [victim] = pagesOf(path, 'sqlite_autoindex_events_1', 'leaf');
  assert.ok(victim !== undefined);
  // Cell pointers that point outside the page: a structural fault, not a read error.
  overwrite(path, (victim - 1) * PAGE + 8, Buffer.from([0xff, 0xf0, 0x00, 0x10]));

  const err = openFailure(path);
  assert.ok(err.message.includes(`page ${victim}`), `the problem SQLite reported is quoted: ${err.message}`);
  const [kept] = keptAsideCopies(path);
  assert.ok(kept);

  const { stdout } = await crisp('salvage', '--from', kept, '--root', dir);
  assert.match(stdout, new RegExp(`^salvaged ${original.length} events`, 'm'));
  assert.match(stdout, /^every event row could be read$/m);
  assert.match(stdout, /^no stream has lost history$/m);
  const reopened = EventStore.open(path);
  try {
    assert.deepEqual(eventRows(reopened.db), original);
    assert.deepEqual(liveStates(reopened), states);
    assert.deepEqual(checkIntegrity(path, { thorough: true }).problems, []);
  } finally {
    reopened.close();
  }
});

test('a file that is not a database is kept aside; salvaging it writes nothing', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const garbage = randomBytes(3 * PAGE);
  writeFileSync(path, garbage);
  const err = openFailure(path);
  assert.match(err.message, /SQLITE_NOTADB/);
  const [kept] = keptAsideCopies(path);
  assert.ok(kept);
  assert.deepEqual(readFileSync(kept), garbage);
  assert.ok(!existsSync(path));

  const failed = await fails('salvage', '--from', kept, '--root', dir);
  assert.match(failed.stderr, /no event could be read from .*nothing was written/);
  assert.deepEqual(readdirSync(dir).sort(), [kept.slice(dir.length + 1)], 'nothing written, nothing removed');
  assert.match(openFailure(path).message, /will not start with an empty event log/);

  // The operator's other way forward: move the damaged copy out, and crisp starts empty.
  const elsewhere = stateDir(t);
  renameSync(kept, join(elsewhere, 'state.db.damaged'));
  const fresh = EventStore.open(path);
  fresh.close();
});

test('salvage refuses a --from that is missing or is the live database', async (t) => {
  const dir = stateDir(t);
  const missing = await fails('salvage', '--from', join(dir, 'nope'), '--root', dir);
  assert.match(missing.stderr, /--from .*nope: no such file/);
  const store = EventStore.open(join(dir, 'state.db'));
  store.close();
  const itself = await fails('salvage', '--from', join(dir, 'state.db'), '--root', dir);
  assert.match(itself.stderr, /is the live database itself/);
  assert.match((await crisp('salvage', '--help')).stdout, /--from PATH/);
});

test('keepAside never overwrites: a second copy in the same second gets its own name', (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const when = new Date('2026-11-22T10:15:00.123Z');
  assert.equal(compactUtcStamp(when), '20261122T101500Z');
  writeFileSync(path, 'one');
  writeFileSync(`${path}-wal`, 'one-wal');
  const a = keepAside(path, when);
  writeFileSync(path, 'two');
  const b = keepAside(path, when);
  assert.equal(a.kept, `${path}.damaged-20261122T101500Z`);
  assert.deepEqual(a.moved, [a.kept, `${a.kept}-wal`]);
  assert.equal(b.kept, `${path}.damaged-20261122T101500Z-2`);
  assert.equal(readFileSync(a.kept, 'utf8'), 'one');
  assert.equal(readFileSync(`${a.kept}-wal`, 'utf8'), 'one-wal');
  assert.equal(readFileSync(b.kept, 'utf8'), 'two');
  assert.deepEqual(keptAsideCopies(path), [a.kept, b.kept]);
  assert.equal(formatVersions([1, 2, 3, 7, 9, 10]), '1-3, 7, 9-10');
});
