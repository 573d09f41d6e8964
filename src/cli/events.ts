import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openReader, type Db } from '../events/database.js';
import { rowToEvent, type StoredEvent } from '../events/store.js';
import { formatNs } from '../events/clock.js';
import { parseDuration } from '../config/load.js';
import { compactionSummary } from '../events/retention.js';
import type { StreamKind } from '../machines/events.js';

const KINDS: StreamKind[] = ['sandbox', 'container', 'image', 'pull', 'runtime'];

/** Opens the event log read-only: a database file (--db), or the one under a state dir. */
export function openLog(dbPath: string): Db {
  return openReader(dbPath);
}

/** --db FILE, else <--root or the configured root>/state.db. */
export function logPath(values: { db?: string }, root: () => string): string {
  return values.db ?? join(root(), 'state.db');
}

/** A stream id from an id or a unique prefix of one, as crictl accepts. */
export function resolveStream(db: Db, idOrPrefix: string): { id: string; kind: StreamKind } {
  const rows = db
    .prepare("SELECT stream_id AS id, stream_kind AS kind FROM streams WHERE stream_id = ? OR stream_id LIKE ? ESCAPE '\\' LIMIT 3")
    .all(idOrPrefix, `${idOrPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) as { id: string; kind: StreamKind }[];
  const exact = rows.find((r) => r.id === idOrPrefix);
  if (exact) return exact;
  if (rows.length === 0) throw new Error(`no stream matches ${JSON.stringify(idOrPrefix)}${compactionNote(db)}`);
  if (rows.length > 1) throw new Error(`${JSON.stringify(idOrPrefix)} matches more than one stream: ${rows.map((r) => r.id).join(', ')}`);
  return rows[0]!;
}

/** Says that (and how much) history retention has dropped, or nothing when it has dropped none. */
function compactionNote(db: Db): string {
  const summary = compactionSummary(db);
  if (summary.length === 0) return '';
  const streams = summary.reduce((n, k) => n + k.streams, 0);
  const events = summary.reduce((n, k) => n + k.events, 0);
  const last = summary.reduce((t, k) => (k.lastAt > t ? k.lastAt : t), 0n);
  return ` (the history of ${streams} ended streams, ${events} events, has been compacted by retention; last at ${formatNs(last)})`;
}

/** "2026-11-22T10:00:00Z", or a duration ago such as "5m". */
export function parseSince(text: string): bigint {
  const ago = parseDuration(text);
  if (ago !== undefined) return BigInt(Date.now() - ago) * 1_000_000n;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Error(`--since ${JSON.stringify(text)}: expected an RFC 3339 time or a duration such as 10m`);
  // int64 nanoseconds end in 2262; a later time matches nothing either way.
  const ns = BigInt(ms) * 1_000_000n;
  return ns > INT64_MAX ? INT64_MAX : ns;
}

const INT64_MAX = 2n ** 63n - 1n;

export interface EventQuery {
  streamId?: string;
  kind?: StreamKind;
  sinceNs?: bigint;
  afterSeq?: number;
}

export function queryEvents(db: Db, q: EventQuery): StoredEvent[] {
  const where: string[] = [];
  const args: (string | number | bigint)[] = [];
  const and = (clause: string, arg: string | number | bigint) => {
    where.push(clause);
    args.push(arg);
  };
  if (q.streamId) and('stream_id = ?', q.streamId);
  if (q.kind) and('stream_kind = ?', q.kind);
  if (q.sinceNs !== undefined) and('ts >= ?', q.sinceNs);
  if (q.afterSeq !== undefined) and('seq > ?', q.afterSeq);
  const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`;
  return (db.prepare(sql).safeIntegers(true).all(...args) as Parameters<typeof rowToEvent>[0][]).map(rowToEvent);
}

function formatEvent(e: StoredEvent, json: boolean): string {
  if (json) {
    return JSON.stringify({ seq: e.seq, time: formatNs(e.ts), kind: e.kind, stream: e.streamId, version: e.version, schema: e.schemaVersion, event: e.event });
  }
  const { type, ...data } = e.event;
  const summary = JSON.stringify(data, (key, value) => (key === 'config' ? '…' : value));
  return `${String(e.seq).padStart(6)} ${formatNs(e.ts)} ${e.kind.padEnd(9)} ${e.streamId.slice(0, 13).padEnd(13)} v${String(e.version).padEnd(3)} ${type} ${summary === '{}' ? '' : summary}`;
}

export interface EventsOptions {
  /** The state.db to read. */
  db: string;
  stream?: string;
  kind?: string;
  since?: string;
  follow: boolean;
  json: boolean;
  out: (line: string) => void;
  /** Where to say that retention compacted history (stderr, so output stays parseable). */
  note?: (line: string) => void;
  signal?: AbortSignal;
  pollMs?: number;
}

export async function printEvents(o: EventsOptions): Promise<void> {
  if (o.kind !== undefined && !KINDS.includes(o.kind as StreamKind)) {
    throw new Error(`--kind ${JSON.stringify(o.kind)}: expected one of ${KINDS.join(', ')}`);
  }
  const db = openLog(o.db);
  try {
    const query: EventQuery = {
      streamId: o.stream ? resolveStream(db, o.stream).id : undefined,
      kind: o.kind as StreamKind | undefined,
      sinceNs: o.since ? parseSince(o.since) : undefined,
    };
    const note = compactionNote(db);
    if (note) o.note?.(`crisp:${note}`);
    let last = 0;
    for (;;) {
      for (const e of queryEvents(db, { ...query, afterSeq: last })) {
        o.out(formatEvent(e, o.json));
        last = e.seq;
      }
      if (!o.follow || o.signal?.aborted) return;
      // Another process writes the log; a read-only connection can only poll it.
      await sleep(o.pollMs ?? 250, undefined, { signal: o.signal }).catch(() => undefined);
      if (o.signal?.aborted) return;
    }
  } finally {
    db.close();
  }
}
