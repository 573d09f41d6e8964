import { Subject, type Observable } from '../rx.js';
import { openWriter, type Db } from './database.js';
import { upcast } from './upcast.js';
import { nowNs } from './clock.js';
import { assertNoSecrets } from './secrets.js';
import { compactEndedStreams } from './retention.js';
import { accepts, acceptedEventTypes, initialSnapshot, next, type Snapshot } from '../machines/index.js';
import { SCHEMA_VERSIONS, type DomainEvent, type StreamKind } from '../machines/events.js';
import { conflict, CrispError, diskFullAt, failedPrecondition, messageOf } from '../errors.js';
import { damagedDatabase, isDamageError } from './integrity.js';

export interface StoredEvent<E extends DomainEvent = DomainEvent> {
  seq: number;
  kind: StreamKind;
  streamId: string;
  version: number;
  schemaVersion: number;
  /** Nanoseconds since the epoch: when the fact was recorded, or happened (AppendRequest.at). */
  ts: bigint;
  event: E;
  /** On events delivered live (not read back): when the append that recorded them began. */
  appendStartNs?: bigint;
}

export interface AppendRequest {
  kind: StreamKind;
  streamId: string;
  /** The stream version the caller decided on: 0 for a new stream. */
  expectedVersion: number;
  events: DomainEvent[];
  /**
   * When each of `events` happened, for facts held back while a later step ran (the driver
   * records consecutive redoable steps in one append): the step's own time stays in the log.
   * An event without one is timed by the append.
   */
  at?: readonly (bigint | undefined)[];
  /** The caller's own fold of `events` (see Folded). */
  folded?: Folded;
}

/**
 * `to` is `from` with the request's events folded in, each one accepted, as the caller (the
 * driver, which plans from the state after its facts) already worked out. When `from` is still
 * the stream's live state, the same pure functions on the same input cannot answer differently,
 * so the append takes `to` instead of folding again; otherwise it checks and folds as always.
 */
export interface Folded {
  from: Snapshot;
  to: Snapshot;
}

export interface LiveStream {
  kind: StreamKind;
  version: number;
  snapshot: Snapshot;
}

interface EventRow {
  seq: bigint;
  stream_kind: StreamKind;
  stream_id: string;
  version: bigint;
  type: string;
  schema_version: bigint;
  data: string;
  ts: bigint;
}

/** As committed$ treats its subscribers: one that throws is reported, and the others still hear. */
function tell(listener: (e: StoredEvent) => void, e: StoredEvent): void {
  try {
    listener(e);
  } catch (err) {
    setTimeout(() => {
      throw err;
    });
  }
}

export function rowToEvent(row: EventRow): StoredEvent {
  return {
    seq: Number(row.seq),
    kind: row.stream_kind,
    streamId: row.stream_id,
    version: Number(row.version),
    schemaVersion: Number(row.schema_version),
    ts: row.ts,
    event: upcast(row.type, Number(row.schema_version), JSON.parse(row.data) as Record<string, unknown>),
  };
}

/**
 * The event log and the live machine state of every stream that has not ended. Appends are
 * checked twice before they commit: the stream must be at the version the caller expected
 * (optimistic concurrency), and its machine must accept each event in the state it is in, so
 * the log only ever holds legal histories. A batch commits in one transaction; subscribers see
 * events only after commit, in log order. The live states are the only derived view: the CRI
 * answers from them, and opening the log rebuilds them by replay.
 */
export class EventStore {
  private readonly committed = new Subject<StoredEvent>();
  readonly committed$: Observable<StoredEvent> = this.committed.asObservable();
  private readonly live = new Map<string, LiveStream>();
  /** The same streams by kind: a lookup of one kind (a pod's containers, an image by name) walks only that kind. */
  private readonly liveByKind = new Map<StreamKind, Map<string, LiveStream>>();
  private readonly pending: StoredEvent[] = [];
  private emitting = false;
  /**
   * Listeners of one stream each (see onStream). Every RPC waits on its own stream, ten or more at
   * once while pods start: a subscription of committed$ filtered by id would run each of them,
   * through rxjs's subscriber chain, for every event of every stream.
   */
  private readonly streamListeners = new Map<string, Set<(e: StoredEvent) => void>>();
  private readonly insertEvent;
  private readonly upsertStream;
  private readonly streamVersionOf;
  private readonly allRows;
  /** better-sqlite3 builds four wrapper functions per db.transaction() call: build them once. */
  private readonly inTransaction: (body: () => void) => void;

  private constructor(readonly db: Db, readonly path: string) {
    this.insertEvent = db.prepare(
      `INSERT INTO events (stream_kind, stream_id, version, type, schema_version, data, ts)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
    );
    this.upsertStream = db.prepare(
      `INSERT INTO streams (stream_id, stream_kind, version) VALUES (?, ?, ?)
       ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`,
    );
    this.streamVersionOf = db.prepare('SELECT version, stream_kind FROM streams WHERE stream_id = ?');
    this.allRows = db.prepare('SELECT * FROM events ORDER BY seq').safeIntegers(true);
    this.inTransaction = db.transaction((body: () => void) => body());
  }

  /** How many events the last open replayed. */
  replayedEvents = 0;

  /** Opens (creating and migrating) the log and replays every stream into its machine. */
  static open(path: string, migrationsDir?: string): EventStore {
    const store = new EventStore(openWriter(path, migrationsDir), path);
    try {
      store.replayedEvents = store.replay();
    } catch (err) {
      store.close();
      // Damage the start-up check did not report can still surface while the log is read.
      if (isDamageError(err)) throw damagedDatabase(path, [messageOf(err)]);
      throw err;
    }
    return store;
  }

  /** Folds the whole log into live machine states; ended streams are dropped as they end. */
  private replay(): number {
    let count = 0;
    this.live.clear();
    this.liveByKind.clear();
    for (const row of this.allRows.iterate() as IterableIterator<EventRow>) {
      const stored = rowToEvent(row);
      const current = this.live.get(stored.streamId)?.snapshot ?? initialSnapshot(stored.kind, stored.streamId);
      this.keep(stored.streamId, stored.kind, stored.version, next(stored.kind, current, stored.event));
      count++;
    }
    return count;
  }

  private keep(streamId: string, kind: StreamKind, version: number, snapshot: Snapshot): void {
    let ofKind = this.liveByKind.get(kind);
    if (!ofKind) this.liveByKind.set(kind, (ofKind = new Map()));
    if (snapshot.status === 'done') {
      this.live.delete(streamId);
      ofKind.delete(streamId);
    } else {
      const live = { kind, version, snapshot };
      this.live.set(streamId, live);
      ofKind.set(streamId, live);
    }
  }

  /** The live state of a stream, or undefined when it never existed or has ended. */
  stream(streamId: string): LiveStream | undefined {
    return this.live.get(streamId);
  }

  /**
   * Calls `listener` with each event of `streamId` committed from now on, after committed$'s
   * subscribers have seen it; the function returned stops it.
   */
  onStream(streamId: string, listener: (e: StoredEvent) => void): () => void {
    let listeners = this.streamListeners.get(streamId);
    if (!listeners) this.streamListeners.set(streamId, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.streamListeners.get(streamId) === listeners) this.streamListeners.delete(streamId);
    };
  }

  liveStreams(kind?: StreamKind): [string, LiveStream][] {
    return kind === undefined ? [...this.live] : [...(this.liveByKind.get(kind) ?? [])];
  }

  /** Appends one or more streams' events atomically; returns them as stored. */
  append(requests: AppendRequest | AppendRequest[]): StoredEvent[] {
    const batch = Array.isArray(requests) ? requests : [requests];
    const ts = nowNs();
    const staged = new Map<string, LiveStream>();
    const stored: StoredEvent[] = [];
    this.write(() => {
      for (const req of batch) {
        const current = staged.get(req.streamId) ?? this.currentFor(req);
        let { snapshot, version } = current;
        const folded = req.folded?.from === snapshot ? req.folded.to : undefined;
        for (let index = 0; index < req.events.length; index++) {
          const event = req.events[index]!;
          if (folded === undefined) {
            if (!accepts(snapshot, event)) {
              throw failedPrecondition(
                `${req.kind} ${req.streamId} is ${JSON.stringify(snapshot.value)} and cannot take ${event.type}` +
                  ` (it takes: ${acceptedEventTypes(snapshot).join(', ') || 'nothing, it has ended'})`,
              );
            }
            snapshot = next(req.kind, snapshot, event);
          }
          version++;
          const { type, ...data } = event;
          assertNoSecrets(type, data);
          const schemaVersion = SCHEMA_VERSIONS[type];
          const at = req.at?.[index] ?? ts;
          const row = this.insertEvent.get(req.kind, req.streamId, version, type, schemaVersion, JSON.stringify(data), at) as { seq: number };
          stored.push({ seq: row.seq, kind: req.kind, streamId: req.streamId, version, schemaVersion, ts: at, event, appendStartNs: ts });
        }
        if (folded !== undefined) snapshot = folded;
        this.upsertStream.run(req.streamId, req.kind, version);
        staged.set(req.streamId, { kind: req.kind, version, snapshot });
      }
    });
    for (const [id, s] of staged) this.keep(id, s.kind, s.version, s.snapshot);
    this.emit(stored);
    return stored;
  }

  /** Runs `body` in one transaction; a full disk is RESOURCE_EXHAUSTED naming the database. */
  private write(body: () => void): void {
    try {
      this.inTransaction(body);
    } catch (err) {
      throw diskFullAt(err, `the event log ${this.db.name}`);
    }
  }

  private currentFor(req: AppendRequest): LiveStream {
    const live = this.live.get(req.streamId);
    const row = live ? undefined : (this.streamVersionOf.get(req.streamId) as { version: number; stream_kind: StreamKind } | undefined);
    const version = live?.version ?? row?.version ?? 0;
    if (version !== req.expectedVersion) {
      throw conflict(`${req.kind} ${req.streamId} is at version ${version}, not ${req.expectedVersion}: someone else changed it first`);
    }
    if (live && live.kind !== req.kind) {
      throw new CrispError('Internal', `stream ${req.streamId} is a ${live.kind} stream, not ${req.kind}`);
    }
    if (live) return live;
    if (row) throw failedPrecondition(`${req.kind} ${req.streamId} has ended and takes no more events`);
    return { kind: req.kind, version: 0, snapshot: initialSnapshot(req.kind, req.streamId) };
  }

  // Subscribers may append while they are told of an event; queueing keeps the order every
  // subscriber sees equal to the log's order.
  private emit(events: StoredEvent[]): void {
    this.pending.push(...events);
    if (this.emitting) return;
    this.emitting = true;
    try {
      for (let e = this.pending.shift(); e; e = this.pending.shift()) {
        this.committed.next(e);
        const listeners = this.streamListeners.get(e.streamId);
        if (listeners) for (const listener of listeners) tell(listener, e);
      }
    } finally {
      this.emitting = false;
    }
  }

  readStream(streamId: string): StoredEvent[] {
    const rows = this.db.prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY version').safeIntegers(true).all(streamId);
    return (rows as EventRow[]).map(rowToEvent);
  }

  /** Drops the history of streams that ended more than `ageMs` ago (see retention.ts). */
  compact(ageMs: number): { streams: number; events: number } {
    const now = nowNs();
    return compactEndedStreams(this.db, now - BigInt(ageMs) * 1_000_000n, (id) => this.live.has(id), now);
  }

  close(): void {
    this.committed.complete();
    if (this.db.open) this.db.close();
  }
}
