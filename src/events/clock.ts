// Nanosecond wall-clock timestamps. Date.now() has millisecond resolution and hrtime has no
// epoch, so anchor hrtime to the wall clock once and add the monotonic delta.
const anchorWallNs = BigInt(Date.now()) * 1_000_000n;
const anchorHr = process.hrtime.bigint();

export function nowNs(): bigint {
  return anchorWallNs + (process.hrtime.bigint() - anchorHr);
}

function nsToDate(ns: bigint | string): Date {
  return new Date(Number(BigInt(ns) / 1_000_000n));
}

/** RFC 3339 with nanoseconds, as CRI tools print times. */
export function formatNs(ns: bigint | string): string {
  const value = BigInt(ns);
  const iso = nsToDate(value).toISOString();
  const frac = (value % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}
