// Whether two RunPodSandbox (or CreateContainer) requests are the same request: kubelet retries a
// call that timed out with the very same config, and must get the first call's pod (or its error)
// whatever that call is doing. The config held in memory may have come from the request itself
// or from the log's JSON, so both are compared in one canonical form: keys sorted, fields at their
// protobuf default (empty, zero, false, null, absent) left out, numbers and 64-bit numbers (which
// arrive as strings) compared as text, bytes (a Buffer, or its JSON form) as base64. Pure: no I/O.

type Canonical = string | Canonical[] | { [key: string]: Canonical };

/** `value` in canonical form, or undefined when it is a protobuf default and so says nothing. */
export function canonical(value: unknown): Canonical | undefined {
  if (value === null || value === undefined || value === '' || value === false || value === 0 || value === '0') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return value.length === 0 ? undefined : Buffer.from(value).toString('base64');
  // A bytes field (KeyValue.value, an env value) as the log's JSON keeps it.
  if (isJsonBuffer(value)) return value.data.length === 0 ? undefined : Buffer.from(value.data).toString('base64');
  if (Array.isArray(value)) {
    // A repeated field keeps its order and its default elements: [a, '', b] is not [a, b].
    return value.length === 0 ? undefined : value.map((v) => canonical(v) ?? '');
  }
  if (typeof value === 'object') {
    const out: Record<string, Canonical> = {};
    for (const key of Object.keys(value).sort()) {
      const v = canonical((value as Record<string, unknown>)[key]);
      if (v !== undefined) out[key] = v;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return String(value);
}

function isJsonBuffer(value: unknown): value is { type: 'Buffer'; data: number[] } {
  const v = value as { type?: unknown; data?: unknown } | null;
  return typeof v === 'object' && v !== null && v.type === 'Buffer' && Array.isArray(v.data) && Object.keys(v).length === 2;
}

/**
 * The dotted path of the first field where `a` and `b` differ in canonical form (`root` for
 * the whole value), or undefined when they are the same request.
 */
export function differingField(a: unknown, b: unknown, root: string): string | undefined {
  return firstDifference(canonical(a), canonical(b), root);
}

function firstDifference(a: Canonical | undefined, b: Canonical | undefined, at: string): string | undefined {
  if (a === b) return undefined;
  if (typeof a === 'string' || typeof b === 'string') return at;
  // A side at its default is empty: name the first field the other side sets.
  if (a === undefined) a = Array.isArray(b) ? [] : {};
  if (b === undefined) b = Array.isArray(a) ? [] : {};
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return at;
    const length = Math.max(a.length, b.length);
    for (let i = 0; i < length; i++) {
      const d = firstDifference(a[i], b[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const key of keys) {
    const d = firstDifference(a[key], b[key], /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`);
    if (d) return d;
  }
  return undefined;
}
