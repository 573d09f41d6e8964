// Salvage of a damaged event log (`crisp salvage`): every event row that can still be read from
// a kept-aside copy is copied into a fresh state.db, stream by stream, stopping each stream where
// its history can no longer be replayed, and the report says what was lost. The start-up check
// that keeps a damaged file aside is integrity.ts.
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../log.js';
import { CrispError, failedPrecondition, invalidArgument, messageOf } from '../errors.js';
import { upcast } from './upcast.js';
import { accepts, initialSnapshot, next, type Snapshot } from '../machines/index.js';
import type { DomainEvent, StreamKind } from '../machines/events.js';
import { COMPANION_SUFFIXES, STREAM_KINDS, isAbsentOrEmpty, isDamageError, orphanCompanions } from './integrity.js';


interface RowRead<T> {
  rows: T[];
  /** Rowids whose lookup failed: at most this many rows are lost. */
  unreadable: number;
  /** The first failure, to say why. */
  firstError?: string;
}

/** More lookups than this would take minutes: the bound itself must have come from damaged bytes. */
const PROBE_LIMIT = 50_000_000n;

/**
 * Reads a rowid table as far as it can: one ordered scan, and when that fails part way, a lookup
 * per rowid not yet read, up to the highest rowid known (a damaged page then costs only the rows
 * on it). `upTo` is a bound the table itself may not be able to give (sqlite_sequence).
 */
function readRowsSalvaging<T>(db: Database.Database, table: string, columns: string, upTo?: bigint): RowRead<T & { rowid: bigint }> {
  const read = new Map<bigint, T & { rowid: bigint }>();
  const sorted = () => [...read.values()].sort((a, b) => (a.rowid < b.rowid ? -1 : a.rowid > b.rowid ? 1 : 0));
  let firstError: string;
  try {
    const scan = db.prepare(`SELECT rowid AS rowid, ${columns} FROM ${table} ORDER BY rowid`).safeIntegers(true);
    for (const row of scan.iterate() as IterableIterator<T & { rowid: bigint }>) if (!read.has(row.rowid)) read.set(row.rowid, row);
    return { rows: sorted(), unreadable: 0 };
  } catch (err) {
    if (!isDamageError(err)) throw err;
    firstError = messageOf(err);
  }
  let highest = upTo ?? 0n;
  try {
    const max = db.prepare(`SELECT MAX(rowid) FROM ${table}`).pluck().safeIntegers(true).get() as bigint | null;
    if (max !== null && max > highest && (upTo === undefined || max <= upTo)) highest = max;
  } catch (err) {
    if (!isDamageError(err)) throw err;
  }
  if (highest > PROBE_LIMIT) {
    return { rows: sorted(), unreadable: 0, firstError: `${firstError}; the highest rowid (${highest}) is implausible, rows after the failure were not looked for` };
  }
  let unreadable = 0;
  const probe = db.prepare(`SELECT rowid AS rowid, ${columns} FROM ${table} WHERE rowid = ?`).safeIntegers(true);
  for (let rowid = 1n; rowid <= highest; rowid++) {
    if (read.has(rowid)) continue;
    try {
      const row = probe.get(rowid) as (T & { rowid: bigint }) | undefined;
      if (row) read.set(rowid, row);
    } catch (err) {
      if (!isDamageError(err)) throw err;
      unreadable++;
    }
  }
  return { rows: sorted(), unreadable, firstError };
}

function tryRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (isDamageError(err) || (err as { code?: string }).code === 'SQLITE_ERROR') return undefined;
    throw err;
  }
}

interface EventRow {
  rowid: bigint;
  seq: bigint;
  stream_kind: unknown;
  stream_id: unknown;
  version: unknown;
  type: unknown;
  schema_version: unknown;
  data: unknown;
  ts: unknown;
}

/** Why a row read from a damaged page is not a well-formed event, or undefined when it is one. */
function malformation(row: EventRow): string | undefined {
  if (!STREAM_KINDS.includes(row.stream_kind as StreamKind)) return `stream_kind ${JSON.stringify(row.stream_kind)}`;
  if (typeof row.stream_id !== 'string' || row.stream_id === '') return 'stream_id';
  if (typeof row.version !== 'bigint' || row.version < 1n) return 'version';
  if (typeof row.schema_version !== 'bigint') return 'schema_version';
  if (typeof row.ts !== 'bigint') return 'ts';
  if (typeof row.type !== 'string' || typeof row.data !== 'string') return 'type/data';
  try {
    const data = JSON.parse(row.data) as unknown;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'data is not a JSON object';
    upcast(row.type, Number(row.schema_version), data as Record<string, unknown>);
  } catch (err) {
    return messageOf(err);
  }
  return undefined;
}

interface LostHistory {
  streamId: string;
  kind: StreamKind;
  /** Versions missing between 1 and the highest recovered one. */
  missing: number[];
  /** How many events the kept copy's `streams` table says followed the last recovered one (0 if unknown). */
  lostTail: number;
}

export interface SalvageReport {
  from: string;
  to: string;
  /** Event rows copied into the new log. */
  recovered: number;
  /** Row lookups in the events table that failed: at most this many events were lost there. */
  unreadable: number;
  /** Rows that could be read but are not well-formed events (damaged bytes), by seq. */
  malformed: { seq: number; why: string }[];
  /** The first error SQLite gave while reading, if any. */
  firstError?: string;
  compactionCopied: boolean;
  /** Streams whose history has holes or a lost end. */
  gaps: LostHistory[];
  /** Streams the kept copy's `streams` table knew of, none of whose events could be read. */
  lostStreams: { streamId: string; kind: StreamKind; version: number }[];
  /** Events the stream's machine did not take in the state the recovered history left it in. */
  rejected: { streamId: string; kind: StreamKind; version: number; type: string }[];
  /** Events the new log replayed through their machines. */
  replayedEvents: number;
}

export interface SalvageOptions {
  /** The kept-aside copy (its -wal beside it, as renamed). */
  from: string;
  /** The live database path to create, `<root>/state.db`. */
  to: string;
  /**
   * Opens the new log and replays it, returning how many events it replayed; the caller passes
   * the event store's own open, so the replay is the one the daemon will run at start.
   */
  replay: (path: string) => number;
  /** Creates an empty, migrated database at a path and returns it open. */
  create: (path: string) => Database.Database;
  logger?: Logger;
}

function countEvents(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
    return table ? (db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number) : 0;
  } finally {
    db.close();
  }
}

function assertSalvageTarget(from: string, to: string): void {
  if (!existsSync(from)) throw invalidArgument(`--from ${from}: no such file`);
  if (!statSync(from).isFile()) throw invalidArgument(`--from ${from}: not a file`);
  if (resolve(from) === resolve(to)) throw invalidArgument(`--from ${from} is the live database itself; name a kept-aside copy`);
  if (!isAbsentOrEmpty(to)) {
    let events: number;
    try {
      events = countEvents(to);
    } catch (err) {
      throw failedPrecondition(
        `${to} already exists and cannot be read (${messageOf(err)}); start crisp once to have it checked and kept aside, or move it away, then salvage`,
      );
    }
    if (events > 0) {
      throw failedPrecondition(`${to} already holds ${events} events; salvaging over it would mix two logs. Move it away first if the kept copy is the one to keep`);
    }
  } else {
    const orphans = orphanCompanions(to);
    if (orphans.length) {
      throw failedPrecondition(`${orphans.join(', ')} exist without ${to}; they belong with a kept copy: move them beside it (as <kept>-wal/-shm) or out of ${dirname(to)}`);
    }
  }
}

function removeDatabaseFiles(path: string): void {
  for (const f of [path, ...COMPANION_SUFFIXES.map((s) => path + s)]) rmSync(f, { force: true });
}

/**
 * Copies every readable event of a kept-aside copy, in seq order and unchanged, into a fresh log
 * at `to`, with the compaction counts and rebuilt stream versions, and replays it. The new log is
 * built beside `to` and renamed into place only when complete. The kept copy is only read.
 */
export function salvageLog(options: SalvageOptions): SalvageReport {
  const { from, to } = options;
  const logger = options.logger ?? silentLogger;
  assertSalvageTarget(from, to);

  let source: Database.Database;
  try {
    source = new Database(from, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw failedPrecondition(`--from ${from} cannot be opened (${messageOf(err)}); no events can be salvaged from it`);
  }
  const building = `${to}.salvaging`;
  // A previous salvage that died part way left only its own derived output here.
  removeDatabaseFiles(building);
  let report: Omit<SalvageReport, 'replayedEvents'>;
  let oldStreams: Map<string, { kind: StreamKind; version: number }>;
  try {
    const sequence = tryRead(() => source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().safeIntegers(true).get() as bigint | undefined);
    let events: RowRead<EventRow>;
    try {
      events = readRowsSalvaging<EventRow>(source, 'events', 'seq, stream_kind, stream_id, version, type, schema_version, data, ts', sequence);
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_ERROR' && !isDamageError(err)) throw err;
      events = { rows: [], unreadable: 0, firstError: messageOf(err) };
    }
    logger.info({ from, rows: events.rows.length, unreadable: events.unreadable }, 'read the kept copy');
    const compaction = tryRead(() => readRowsSalvaging<{ stream_kind: string; streams: bigint; events: bigint; last_at: bigint }>(
      source, 'compaction', 'stream_kind, streams, events, last_at'));
    const streams = tryRead(() => readRowsSalvaging<{ stream_id: unknown; stream_kind: unknown; version: unknown }>(
      source, 'streams', 'stream_id, stream_kind, version'));
    oldStreams = new Map();
    for (const s of streams?.rows ?? []) {
      if (typeof s.stream_id === 'string' && STREAM_KINDS.includes(s.stream_kind as StreamKind) && typeof s.version === 'bigint') {
        oldStreams.set(s.stream_id, { kind: s.stream_kind as StreamKind, version: Number(s.version) });
      }
    }

    const malformed: { seq: number; why: string }[] = [];
    const good: EventRow[] = [];
    const seen = new Set<string>();
    for (const row of events.rows) {
      const why = malformation(row);
      const key = `${String(row.stream_id)}\0${String(row.version)}`;
      if (why !== undefined) malformed.push({ seq: Number(row.rowid), why });
      else if (seen.has(key)) malformed.push({ seq: Number(row.rowid), why: `a second version ${row.version} of stream ${row.stream_id}` });
      else {
        seen.add(key);
        good.push(row);
      }
    }
    if (good.length === 0) {
      throw failedPrecondition(
        `no event could be read from ${from}${events.firstError ? ` (SQLite: ${events.firstError})` : ''}; nothing was written. ` +
          `The copy stays where it is. To start with an empty log, move the damaged copies out of ${dirname(to)}`,
      );
    }

    const target = options.create(building);
    try {
      const insert = target.prepare(
        'INSERT INTO events (seq, stream_kind, stream_id, version, type, schema_version, data, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertCompaction = target.prepare('INSERT INTO compaction (stream_kind, streams, events, last_at) VALUES (?, ?, ?, ?)');
      target.transaction(() => {
        for (const r of good) insert.run(r.rowid, r.stream_kind, r.stream_id, r.version, r.type, r.schema_version, r.data, r.ts);
        for (const c of compaction?.rows ?? []) {
          if (STREAM_KINDS.includes(c.stream_kind as StreamKind)) insertCompaction.run(c.stream_kind, c.streams, c.events, c.last_at);
        }
        // Seqs handed out before retention removed the newest rows are never handed out again.
        if (sequence !== undefined) target.prepare("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'").run(sequence);
        target.exec(
          `INSERT INTO streams (stream_id, stream_kind, version)
           SELECT stream_id, stream_kind, MAX(version) FROM events GROUP BY stream_id`,
        );
      })();
    } finally {
      target.close();
    }
    report = {
      from, to, recovered: good.length, unreadable: events.unreadable, malformed, firstError: events.firstError,
      compactionCopied: compaction !== undefined && compaction.unreadable === 0,
      ...historyLosses(good, oldStreams),
    };
  } catch (err) {
    removeDatabaseFiles(building);
    throw err;
  } finally {
    source.close();
  }

  let replayedEvents: number;
  try {
    replayedEvents = options.replay(building);
  } catch (err) {
    throw new CrispError(
      'FailedPrecondition',
      `the salvaged log at ${building} does not replay (${messageOf(err)})` +
        (report.gaps.length ? `; streams with lost history: ${report.gaps.map((g) => g.streamId).join(', ')}` : '') +
        `. ${to} was not created; the kept copy ${from} is untouched`,
      { cause: err },
    );
  }
  // An empty log at `to` (checked above) holds nothing; its companions must not pair with the new file.
  removeDatabaseFiles(to);
  renameSync(building, to);
  logger.info({ from, to, recovered: report.recovered }, 'salvaged the event log');
  return { ...report, replayedEvents };
}

/** Gaps and lost ends per stream, and the events a machine refused because of them. */
function historyLosses(rows: EventRow[], oldStreams: Map<string, { kind: StreamKind; version: number }>) {
  const versions = new Map<string, { kind: StreamKind; versions: number[] }>();
  const rejected: SalvageReport['rejected'] = [];
  const live = new Map<string, Snapshot>();
  for (const r of rows) {
    const streamId = r.stream_id as string;
    const kind = r.stream_kind as StreamKind;
    const version = Number(r.version);
    const entry = versions.get(streamId) ?? { kind, versions: [] };
    entry.versions.push(version);
    versions.set(streamId, entry);
    const event = upcast(r.type as string, Number(r.schema_version), JSON.parse(r.data as string) as Record<string, unknown>) as DomainEvent;
    const current = live.get(streamId) ?? initialSnapshot(kind, streamId);
    let after: Snapshot | undefined;
    try {
      if (accepts(current, event)) after = next(kind, current, event);
    } catch {
      // A machine that throws on what a gap left behind is reported like one that refuses.
    }
    if (after === undefined) rejected.push({ streamId, kind, version, type: event.type });
    else if (after.status === 'done') live.delete(streamId);
    else live.set(streamId, after);
  }
  const gaps: LostHistory[] = [];
  for (const [streamId, { kind, versions: vs }] of versions) {
    vs.sort((a, b) => a - b);
    const missing: number[] = [];
    let expected = 1;
    for (const v of vs) {
      for (; expected < v; expected++) missing.push(expected);
      expected = v + 1;
    }
    const recordedEnd = oldStreams.get(streamId)?.version ?? 0;
    const lostTail = Math.max(0, recordedEnd - (vs.at(-1) ?? 0));
    if (missing.length || lostTail) gaps.push({ streamId, kind, missing, lostTail });
  }
  const lostStreams = [...oldStreams]
    .filter(([id]) => !versions.has(id))
    .map(([streamId, s]) => ({ streamId, kind: s.kind, version: s.version }));
  return { gaps, lostStreams, rejected };
}

/** `[1,2,3,7,9,10]` → `1-3, 7, 9-10` */
export function formatVersions(versions: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < versions.length; ) {
    let j = i;
    while (j + 1 < versions.length && versions[j + 1] === versions[j]! + 1) j++;
    parts.push(i === j ? `${versions[i]}` : `${versions[i]}-${versions[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/** The salvage outcome as the operator reads it. */
export function describeSalvage(r: SalvageReport): string[] {
  const lines = [`salvaged ${r.recovered} events from ${r.from} into ${r.to}`];
  lines.push(r.unreadable === 0 && r.malformed.length === 0
    ? 'every event row could be read'
    : `${r.unreadable} rows could not be read` + (r.malformed.length ? `, ${r.malformed.length} were damaged and skipped (seq ${r.malformed.map((m) => m.seq).join(', ')})` : '') +
      (r.firstError ? ` (SQLite: ${r.firstError})` : ''));
  if (!r.compactionCopied) lines.push('the compaction counts could not be read in full: `crisp events` may not say where retention removed history');
  if (r.gaps.length === 0 && r.lostStreams.length === 0) lines.push('no stream has lost history');
  else {
    lines.push('streams with lost history (their state may be behind what really happened):');
    for (const g of r.gaps) {
      const what = [g.missing.length ? `missing versions ${formatVersions(g.missing)}` : '', g.lostTail ? `its last ${g.lostTail} events lost` : '']
        .filter(Boolean).join(', ');
      lines.push(`  ${g.kind} ${g.streamId}: ${what}`);
    }
    for (const s of r.lostStreams) lines.push(`  ${s.kind} ${s.streamId}: lost entirely (it had ${s.version} events)`);
  }
  if (r.rejected.length) {
    lines.push('events their machine did not take after a gap (kept in the log, skipped on replay):');
    const byStream = new Map<string, SalvageReport['rejected']>();
    for (const e of r.rejected) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e]);
    for (const [id, events] of byStream) {
      const shown = events.slice(0, 3).map((e) => `v${e.version} ${e.type}`).join(', ');
      lines.push(`  ${events[0]!.kind} ${id}: ${shown}${events.length > 3 ? ` and ${events.length - 3} more` : ''}`);
    }
  }
  lines.push(`the new log replays: ${r.replayedEvents} events`);
  lines.push(`the damaged copy is kept at ${r.from}; crisp can start again`);
  return lines;
}
