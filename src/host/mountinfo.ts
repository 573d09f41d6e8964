// The kernel's mount table (/proc/self/mountinfo, see proc(5)), read whole for the sweeps and
// looked up by path on the hot paths. With a hundred pods the table has hundreds of lines;
// a pod's start and teardown look up a handful of paths, so a lookup finds the lines that name
// a path with the engine's string search and parses only those, instead of every line.
import { readFileSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { statIfPresent } from './files.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  /** For nsfs mounts, e.g. `net:[4026532179]`. */
  root: string;
}

const MOUNTINFO = '/proc/self/mountinfo';

// mountinfo escapes space, tab, newline and backslash as octal.
function unescapeMountPath(s: string): string {
  return s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))) : s;
}

function escapeMountPath(s: string): string {
  return s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

function parseLine(line: string): MountEntry | undefined {
  const fields = line.split(' ');
  const dash = fields.indexOf('-', 6);
  if (dash < 0 || fields.length < dash + 3) return undefined;
  return {
    root: unescapeMountPath(fields[3] ?? ''),
    mountPoint: unescapeMountPath(fields[4] ?? ''),
    fsType: fields[dash + 1] ?? '',
    source: unescapeMountPath(fields[dash + 2] ?? ''),
  };
}

/** Parses mountinfo content, every line. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const entry = parseLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

/** The mounts stacked on each of `paths` in mountinfo `text`, topmost last (absent: none). */
export function mountsOnIn(text: string, paths: readonly string[]): Map<string, MountEntry[]> {
  const found = new Map<string, MountEntry[]>();
  for (const path of new Set(paths)) {
    // Field 5 is the mount point, between single spaces; a match can only be that field or the
    // root (field 4), which parsing tells apart.
    const needle = ` ${escapeMountPath(path)} `;
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) {
      const start = text.lastIndexOf('\n', at) + 1;
      const end = text.indexOf('\n', at);
      const entry = parseLine(text.slice(start, end < 0 ? undefined : end));
      if (entry?.mountPoint === path) (found.get(path) ?? found.set(path, []).get(path)!).push(entry);
      if (end < 0) break;
      at = end - needle.length; // continue after this line
    }
  }
  return found;
}

// procfs makes the text in the kernel as it is read, in microseconds: the sync read costs
// ~50 µs of CPU here where fs/promises' thread-pool round trips cost ~500 µs.
async function readMountInfo(): Promise<string> {
  return readFileSync(MOUNTINFO, 'utf8');
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readMountInfo());
}

/** The mounts stacked on each of `paths` now, topmost last; one read of the table. */
export async function mountsOn(paths: readonly string[]): Promise<Map<string, MountEntry[]>> {
  return mountsOnIn(await readMountInfo(), paths.map((p) => resolve(p)));
}

/** The mounts stacked on `path`, topmost last. */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  const target = resolve(path);
  return (await mountsOn([target])).get(target) ?? [];
}

// ---- the cheap answers, for paths crisp mounted itself ------------------------------------------
//
// Reading mountinfo makes the kernel print every mount of the node (hundreds with a hundred pods,
// ~1 ms each time); a pod's start and teardown used to read it a dozen times. For the paths crisp
// mounts itself (overlay rootfs, shm tmpfs, pinned nsfs files) a stat answers the same question:
// each of those filesystems has a device of its own, so the path sits on another device than its
// parent directory exactly when something is mounted there. (A bind mount of a directory of the
// same filesystem would not show; crisp never makes one at these paths, and the sweeps that look
// for mounts crisp did not make read mountinfo.)

export const FS_MAGIC = { overlay: 0x794c7630, tmpfs: 0x01021994, nsfs: 0x6e736673 } as const;

/**
 * Whether a filesystem other than the parent directory's is mounted at `path`. `parentDevs`
 * keeps each parent's device for a caller asking about several paths in one directory (a pod's
 * pinned namespaces).
 */
export function mountedHere(path: string, parentDevs?: Map<string, number>): boolean {
  // An absent path is the common answer (a pod without an infra rootfs): no error is made for it.
  const here = statIfPresent(path);
  if (!here) return false;
  const dir = dirname(resolve(path));
  const parentDev = parentDevs?.get(dir) ?? statIfPresent(dir)?.dev;
  if (parentDev === undefined) return false;
  parentDevs?.set(dir, parentDev);
  return here.dev !== parentDev;
}

/** Whether `path` lies on a tmpfs (mounted there or above it). */
export function onTmpfs(path: string): boolean {
  return statfsSync(path).type === FS_MAGIC.tmpfs;
}

/** The filesystem kind mounted at `path` (of those crisp mounts), or undefined for none or another. */
export function ownMountAt(path: string, parentDevs?: Map<string, number>): keyof typeof FS_MAGIC | undefined {
  if (!mountedHere(path, parentDevs)) return undefined;
  const type = statfsSync(path).type;
  return (Object.keys(FS_MAGIC) as (keyof typeof FS_MAGIC)[]).find((k) => FS_MAGIC[k] === type);
}
