// Event log throughput and replay speed, each against a baseline measured in the same process:
// the same rows written/read with raw better-sqlite3 (no machine checks, no stream versions), so
// the ratio is crisp's overhead, whatever the machine's speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EventStore } from '../src/events/store.js';
import { containerLife, hexId, sandboxRun } from '../test/helpers/events.js';
import type { DomainEvent } from '../src/machines/events.js';

const PODS = Number(process.env.BENCH_PODS ?? 2000);

function timeIt(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function workload() {
  return Array.from({ length: PODS }, () => {
    const sandbox = hexId();
    return { sandbox, container: hexId(), sandboxEvents: [sandboxRun(), { type: 'SandboxReady' } as DomainEvent], containerEvents: containerLife(sandbox) as DomainEvent[] };
  });
}

function rawBaseline(path: string, pods: ReturnType<typeof workload>, batched: boolean): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream_kind TEXT, stream_id TEXT, version INTEGER,
    type TEXT, schema_version INTEGER, data TEXT, ts INTEGER, UNIQUE (stream_id, version))`);
  const insert = db.prepare('INSERT INTO events (stream_kind, stream_id, version, type, schema_version, data, ts) VALUES (?, ?, ?, ?, 1, ?, ?)');
  const write = (kind: string, id: string, events: DomainEvent[], from: number) =>
    events.forEach((e, i) => insert.run(kind, id, from + i + 1, e.type, JSON.stringify(e), Date.now()));
  const seconds = timeIt(() => {
    for (const p of pods) {
      if (batched) {
        db.transaction(() => write('sandbox', p.sandbox, p.sandboxEvents, 0))();
        db.transaction(() => write('container', p.container, p.containerEvents, 0))();
      } else {
        [...p.sandboxEvents.map((e) => ['sandbox', p.sandbox, e] as const), ...p.containerEvents.map((e) => ['container', p.container, e] as const)]
          .forEach(([kind, id, e], i, all) => db.transaction(() => write(kind, id, [e], all.slice(0, i).filter(([, other]) => other === id).length))());
      }
    }
  });
  db.close();
  return seconds;
}

function crispAppend(path: string, pods: ReturnType<typeof workload>, batched: boolean): number {
  const store = EventStore.open(path);
  const seconds = timeIt(() => {
    for (const p of pods) {
      if (batched) {
        store.append({ kind: 'sandbox', streamId: p.sandbox, expectedVersion: 0, events: p.sandboxEvents });
        store.append({ kind: 'container', streamId: p.container, expectedVersion: 0, events: p.containerEvents });
      } else {
        p.sandboxEvents.forEach((e, i) => store.append({ kind: 'sandbox', streamId: p.sandbox, expectedVersion: i, events: [e] }));
        p.containerEvents.forEach((e, i) => store.append({ kind: 'container', streamId: p.container, expectedVersion: i, events: [e] }));
      }
    }
  });
  store.close();
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'crisp-bench-'));
try {
  const pods = workload();
  const events = pods.length * (pods[0]!.sandboxEvents.length + pods[0]!.containerEvents.length);
  for (const batched of [false, true]) {
    const crisp: number[] = [];
    const raw: number[] = [];
    for (let run = 0; run < 3; run++) {
      raw.push(rawBaseline(join(dir, `raw-${batched}-${run}.db`), pods, batched));
      crisp.push(crispAppend(join(dir, `crisp-${batched}-${run}.db`), pods, batched));
    }
    const label = batched ? 'batched (one append per stream step group)' : 'single (one transaction per event)';
    console.log(`append ${label}: crisp ${Math.round(events / median(crisp))} events/s, raw sqlite ${Math.round(events / median(raw))} events/s, ratio ${(median(crisp) / median(raw)).toFixed(2)}x`);
  }
  // Replay: open (migrations check + fold of every row) against reading and parsing the same rows.
  const path = join(dir, 'crisp-true-0.db');
  const replay: number[] = [];
  const read: number[] = [];
  for (let run = 0; run < 3; run++) {
    read.push(timeIt(() => {
      const db = new Database(path, { readonly: true });
      for (const row of db.prepare('SELECT * FROM events ORDER BY seq').iterate() as IterableIterator<{ data: string }>) JSON.parse(row.data);
      db.close();
    }));
    replay.push(timeIt(() => EventStore.open(path).close()));
  }
  console.log(`replay of ${events} events: crisp ${Math.round(events / median(replay))} events/s, raw read+parse ${Math.round(events / median(read))} events/s, ratio ${(median(replay) / median(read)).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
