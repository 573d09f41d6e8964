// Finding a live stream by the id (or unique id prefix) a CRI request names: one lookup for
// pods and containers alike, as crictl lets users type a prefix of either.
import type { EventStore } from '../events/store.js';
import type { StreamKind } from '../machines/events.js';
import { invalidArgument } from '../errors.js';

/**
 * The live stream an id or unique id prefix names, or undefined when none does. An ambiguous
 * prefix is an InvalidArgument naming `field`.
 */
export function resolveStreamId(store: EventStore, kind: StreamKind, idOrPrefix: string, field: string): string | undefined {
  if (!idOrPrefix) throw invalidArgument(`${field} is required`);
  const exact = store.stream(idOrPrefix);
  if (exact) return exact.kind === kind ? idOrPrefix : undefined;
  const matches = store.liveStreams(kind).filter(([id]) => id.startsWith(idOrPrefix));
  if (matches.length > 1) throw invalidArgument(`${field}: prefix ${JSON.stringify(idOrPrefix)} matches ${matches.length} ${kind}es; give more characters`);
  return matches[0]?.[0];
}
