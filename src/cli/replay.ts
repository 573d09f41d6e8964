import { initialSnapshot, next } from '../machines/index.js';
import { formatNs } from '../events/clock.js';
import { openLog, parseSince, queryEvents, resolveStream } from './events.js';

export interface ReplayOptions {
  /** The state.db to read. */
  db: string;
  idOrPrefix: string;
  at?: string;
  seq?: number;
  out: (line: string) => void;
}

function formatDelta(ns: bigint): string {
  const ms = Number(ns) / 1e6;
  if (ms < 1) return `+${(ms * 1000).toFixed(0)}µs`;
  if (ms < 1000) return `+${ms.toFixed(1)}ms`;
  return `+${(ms / 1000).toFixed(2)}s`;
}

/**
 * Folds one stream through its machine exactly as the daemon does, printing every step:
 * the event, the state before and after, and the time since the previous step. With --at or
 * --seq it stops there and shows the state as it was at that moment.
 */
export function replay(o: ReplayOptions): void {
  const db = openLog(o.db);
  try {
    const { id, kind } = resolveStream(db, o.idOrPrefix);
    const untilNs = o.at !== undefined ? parseSince(o.at) : undefined;
    let snapshot = initialSnapshot(kind, id);
    let previous: bigint | undefined;
    o.out(`${kind} ${id}`);
    for (const e of queryEvents(db, { streamId: id })) {
      if (o.seq !== undefined && e.seq > o.seq) break;
      if (untilNs !== undefined && e.ts > untilNs) break;
      const from = JSON.stringify(snapshot.value);
      snapshot = next(kind, snapshot, e.event);
      const delta = previous === undefined ? '' : ` ${formatDelta(e.ts - previous)}`;
      o.out(`  #${e.seq} ${formatNs(e.ts)}${delta} ${e.event.type}: ${from} → ${JSON.stringify(snapshot.value)}`);
      previous = e.ts;
    }
    o.out(`state: ${JSON.stringify(snapshot.value)}`);
    o.out(JSON.stringify(snapshot.context, null, 2));
  } finally {
    db.close();
  }
}
