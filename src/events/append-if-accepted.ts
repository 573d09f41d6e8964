import type { EventStore } from './store.js';
import { accepts } from '../machines/index.js';
import type { EventsByKind, StreamKind } from '../machines/events.js';

/**
 * Appends one event to a live stream if its machine takes it now; false when it does not (or
 * the stream has ended). For observations, which are recorded only where they still mean something.
 */
export function appendIfAccepted<K extends StreamKind>(store: EventStore, kind: K, id: string, event: EventsByKind[K]): boolean {
  const live = store.stream(id);
  if (!live || !accepts(live.snapshot, event)) return false;
  store.append({ kind, streamId: id, expectedVersion: live.version, events: [event] });
  return true;
}
