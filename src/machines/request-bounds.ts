// Bounds every RunPodSandbox and CreateContainer request must keep, checked before anything is
// recorded or acquired: names a Kubernetes object could have, label and annotation maps no larger
// than the API server lets through, no NUL byte anywhere (every string may end up in a path, an
// argv or an environment, all C strings), and cpuset lists that parse. Pure: no I/O.
import { clip, invalidArgument } from '../errors.js';

/**
 * A name a pod, a namespace, a pod uid or a container may have. Kubernetes object names are DNS
 * subdomains; critest's names carry capitals and kubelet's static pod uids are hex, so letters
 * of either case, digits, '.', '_' and '-', starting with a letter or digit (never '.' or '..').
 */
const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

export function requireObjectName(value: string | undefined, field: string): void {
  if (!value) throw invalidArgument(`${field} is required`);
  if (!OBJECT_NAME.test(value)) {
    throw invalidArgument(`${field}: ${quote(value)} must be 1 to 253 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** A short, safe quotation of a caller's value for an error message. */
export function quote(value: string, limit = 80): string {
  return JSON.stringify(clip(value, limit));
}

// The API server's limits: a label or annotation key is an optional DNS-subdomain prefix (253)
// and '/' and a name (63); all annotations of an object together hold at most 256 KiB.
const KEY_MAX = 253 + 1 + 63;
const MAP_BYTES_MAX = 256 * 1024;

/** Labels or annotations: non-empty keys of bounded length, at most 256 KiB in all. */
export function checkStringMap(map: Record<string, string> | null | undefined, field: string): void {
  let bytes = 0;
  for (const [key, value] of Object.entries(map ?? {})) {
    if (key === '') throw invalidArgument(`${field}: keys may not be empty`);
    if (key.length > KEY_MAX) throw invalidArgument(`${field}: key ${quote(key)} is longer than ${KEY_MAX} characters`);
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
    if (bytes > MAP_BYTES_MAX) throw invalidArgument(`${field}: keys and values together exceed ${MAP_BYTES_MAX} bytes`);
  }
}

/**
 * Throws naming the first field (as a dotted path) whose string holds a NUL byte. Every string a
 * request carries can end up in a path, an argument or an environment variable.
 */
export function rejectNul(value: unknown, field: string): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) throw invalidArgument(`${field}: contains a NUL byte`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => rejectNul(v, `${field}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('\0')) throw invalidArgument(`${field}: a key contains a NUL byte`);
      rejectNul(v, `${field}.${k}`);
    }
  }
}

/** An absolute path of clean segments: no '.' or '..', as every path crisp joins onto must be. */
export function requireCleanAbsolute(value: string, field: string): void {
  if (!value.startsWith('/')) throw invalidArgument(`${field}: ${quote(value)} must be an absolute path`);
  if (value.split('/').some((s) => s === '..' || s === '.')) throw invalidArgument(`${field}: ${quote(value)} must not contain "." or ".." segments`);
}

/** The kernel's largest CPU or memory-node number (CONFIG_NR_CPUS tops out at 8192). */
const CPU_MAX = 8191;

/**
 * Parses a cpuset list ("0-3,6", the kernel's list format) into its numbers. Throws naming the
 * field when the text is not such a list.
 */
export function parseCpuList(text: string, field: string): Set<number> {
  const out = new Set<number>();
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,9})(?:-(\d{1,9}))?\s*$/.exec(part);
    if (!m) throw invalidArgument(`${field}: ${quote(text)} is not a list like "0-3,6"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw invalidArgument(`${field}: range ${lo}-${hi} runs backwards`);
    if (hi > CPU_MAX) throw invalidArgument(`${field}: ${hi} is above ${CPU_MAX}, the largest number the kernel has`);
    for (let n = lo; n <= hi; n++) out.add(n);
  }
  return out;
}
