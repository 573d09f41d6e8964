import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { internal } from '../../errors.js';
import { describeFailure, run } from './exec.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  /** For nsfs mounts, e.g. `net:[4026532179]`. */
  root: string;
}

// mountinfo escapes space, tab, newline and backslash as octal.
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo content (see proc(5)). */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({
      root: unescapeMountPath(fields[3] ?? ''),
      mountPoint: unescapeMountPath(fields[4] ?? ''),
      fsType: fields[dash + 1] ?? '',
      source: unescapeMountPath(fields[dash + 2] ?? ''),
    });
  }
  return entries;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** The mounts stacked on `path`, topmost last. */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  const target = resolve(path);
  return (await readMounts()).filter((m) => m.mountPoint === target);
}

/** The topmost mount on every mount point now, for checking many paths against one read of the table. */
export async function topMounts(): Promise<Map<string, MountEntry>> {
  return new Map((await readMounts()).map((m) => [m.mountPoint, m]));
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsAt(path)).length > 0;
}

/**
 * Unmounts everything stacked on each of `paths`, with one umount call per round. Already
 * unmounted is success, so callers can re-drive a release after a crash.
 */
export async function unmountAll(...paths: string[]): Promise<void> {
  const targets = new Set(paths.map((p) => resolve(p)));
  // Bounded: a mount that survives umount would otherwise loop forever.
  for (let round = 0; round < 16; round++) {
    const mounted = [...new Set((await readMounts()).map((m) => m.mountPoint).filter((m) => targets.has(m)))];
    if (mounted.length === 0) return;
    const r = await run('umount', mounted);
    if (r.code !== 0) {
      const still = new Set((await readMounts()).map((m) => m.mountPoint));
      const stuck = mounted.filter((m) => still.has(m));
      if (stuck.length > 0) throw internal(`unmounting ${stuck.join(', ')} failed: ${describeFailure('umount', mounted, r)}`);
    }
  }
  throw internal(`unmounting ${[...targets].join(', ')} failed: still mounted after 16 attempts`);
}
