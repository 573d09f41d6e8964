// cgroupfs helpers shared by the monitor (OOM detection, cleanup) and the stats code:
// find where a container's cgroupfs `cgroupsPath` lives on this host, read its files, and
// remove it once empty. Supports v1 (including the hybrid layout, where the v2 tree is
// mounted beside the v1 controllers but holds none of them) and pure v2.
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidArgument, failedPrecondition } from '../../errors.js';

export interface CgroupLayout {
  version: 1 | 2;
  /** Mount point of the cgroup2 hierarchy, if any (hybrid hosts have one without controllers). */
  unifiedMount?: string;
  /** v1 only: controller (or `name=systemd`) → mount point; co-mounted controllers share one. */
  v1Mounts: Record<string, string>;
}

/** Where one container's cgroup lives in each hierarchy. */
export interface CgroupPaths {
  version: 1 | 2;
  cgroupsPath: string;
  /** v2: the cgroup's directory; v1 hybrid: its twin in the unified tree (runc creates it too). */
  unified?: string;
  /** v1: controller → directory. Empty on v2. */
  controllers: Record<string, string>;
}

/** One line of /proc/PID/cgroup: the hierarchy's controllers ([] for the v2 tree) and the cgroup in it. */
export interface CgroupMembership {
  controllers: string[];
  path: string;
}

/** Parses /proc/PID/cgroup text: where the process sits in each hierarchy. */
export function parseProcCgroup(text: string): CgroupMembership[] {
  const out: CgroupMembership[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.+)$/.exec(line);
    if (m) out.push({ controllers: m[1] === '' ? [] : m[1]!.split(','), path: m[2]! });
  }
  return out;
}

/** Parses /proc/self/mountinfo text into the cgroup layout. */
export function parseCgroupLayout(mountinfo: string): CgroupLayout {
  const v1Mounts: Record<string, string> = {};
  let unifiedMount: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fsType, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const mountPoint = unescapeMountField(fields[4] ?? '');
    if (fsType === 'cgroup2') {
      unifiedMount ??= mountPoint;
    } else if (fsType === 'cgroup') {
      for (const opt of superOptions.split(',')) {
        if (opt === 'rw' || opt === 'ro' || opt.startsWith('release_agent=') || opt === 'clone_children'
          || opt === 'noprefix' || opt === 'xattr') continue;
        v1Mounts[opt] ??= mountPoint;
      }
    }
  }
  const hasV1Controllers = Object.keys(v1Mounts).some((k) => !k.startsWith('name='));
  if (!hasV1Controllers && unifiedMount === undefined) {
    throw failedPrecondition('no cgroup hierarchy is mounted (mountinfo lists neither cgroup nor cgroup2)');
  }
  return hasV1Controllers
    ? { version: 1, unifiedMount, v1Mounts }
    : { version: 2, unifiedMount, v1Mounts: {} };
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export async function detectCgroupLayout(mountinfoPath = '/proc/self/mountinfo'): Promise<CgroupLayout> {
  return parseCgroupLayout(readFileSync(mountinfoPath, 'utf8'));
}

/**
 * Resolves a cgroupfs-driver `cgroupsPath` (absolute, as crisp writes it) to directories.
 * systemd-driver paths (`slice:prefix:name`) and relative paths are rejected: crisp always
 * places containers itself, so anything else is a bug upstream.
 */
export function resolveCgroupPaths(layout: CgroupLayout, cgroupsPath: string): CgroupPaths {
  if (typeof cgroupsPath !== 'string' || cgroupsPath === '') {
    throw invalidArgument('linux.cgroupsPath must be a non-empty cgroupfs path');
  }
  if (!cgroupsPath.startsWith('/')) {
    throw invalidArgument(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)} must be absolute (cgroupfs driver)`);
  }
  const normal = posix.normalize(cgroupsPath).replace(/\/+$/, '');
  if (normal === '' || cgroupsPath.split('/').includes('..')) {
    throw invalidArgument(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)} must name a cgroup below the root`);
  }
  const unified = layout.unifiedMount === undefined ? undefined : join(layout.unifiedMount, normal);
  if (layout.version === 2) return { version: 2, cgroupsPath: normal, unified, controllers: {} };
  const controllers: Record<string, string> = {};
  for (const [controller, mount] of Object.entries(layout.v1Mounts)) controllers[controller] = join(mount, normal);
  return { version: 1, cgroupsPath: normal, unified, controllers };
}

/** Every distinct directory of the cgroup, across hierarchies. */
export function cgroupDirs(paths: CgroupPaths): string[] {
  const dirs = new Set(Object.values(paths.controllers));
  if (paths.unified !== undefined) dirs.add(paths.unified);
  return [...dirs];
}

// cgroup files are generated by the kernel in memory and read in microseconds; the async API's
// thread-pool round trip per file cost ~1 ms each and dominated stats of a full node.
// An options object, not the string 'utf8', which fs turns into a new object on every call.
const UTF8 = { encoding: 'utf8' } as const;

/** Reads a cgroup file: its text, or undefined when the file (or its controller) is absent. */
export function readCgroupFile(path: string): string | undefined {
  try {
    return readFileSync(path, UTF8);
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENODEV') || isCode(err, 'EOPNOTSUPP')) return undefined;
    throw err;
  }
}

/** `key value` lines (memory.events, memory.oom_control) → map. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value && /^-?\d+$/.test(value)) out.set(key, BigInt(value));
  }
  return out;
}

/** Whether the cgroup's freezer holds it (a paused container); false when the files are gone. */
export async function isFrozen(paths: CgroupPaths): Promise<boolean> {
  try {
    if (paths.version === 2) return readFileSync(join(paths.unified!, 'cgroup.freeze'), 'utf8').trim() === '1';
    const freezer = paths.controllers['freezer'];
    return freezer !== undefined && /FROZEN|FREEZING/.test(readFileSync(join(freezer, 'freezer.state'), 'utf8'));
  } catch {
    return false;
  }
}

/** How many processes the kernel OOM-killed in this cgroup; null when the cgroup is gone. */
export async function readOomKillCount(paths: CgroupPaths): Promise<number | null> {
  const file = paths.version === 2
    ? paths.unified && join(paths.unified, 'memory.events')
    : paths.controllers['memory'] && join(paths.controllers['memory'], 'memory.oom_control');
  if (!file) return null;
  const text = readCgroupFile(file);
  if (text === undefined) return null;
  return Number(parseFlatKeyed(text).get('oom_kill') ?? 0n);
}

export async function cgroupExists(paths: CgroupPaths): Promise<boolean> {
  for (const dir of cgroupDirs(paths)) {
    try {
      await access(dir);
      return true;
    } catch {
      // not in this hierarchy
    }
  }
  return false;
}

/**
 * Removes the cgroup and any children in every hierarchy. Idempotent. A cgroup that still
 * holds processes cannot be removed (EBUSY): after a short grace for exiting tasks this
 * throws FailedPrecondition naming the directory.
 */
export async function removeCgroupTree(paths: CgroupPaths, o: { busyRetries?: number } = {}): Promise<void> {
  for (const dir of cgroupDirs(paths)) await removeDirTree(dir, o.busyRetries ?? 20);
}

/**
 * Removes a cgroup and the cgroups below it. A cgroup directory lists dozens of control files,
 * yet rmdir succeeds on it as long as it has no child cgroup and no process: so rmdir comes
 * first (one syscall, the common case of a leaf), and the directory is read only when that
 * fails because of children, which are removed first. A container's cgroup is usually gone
 * already (runc delete removes it) in every hierarchy: that is asked without a failing rmdir,
 * whose error (made with its stack) cost more than the question.
 */
async function removeDirTree(dir: string, busyRetries: number): Promise<void> {
  if (!existsSync(dir)) return;
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return;
      if (!isCode(err, 'EBUSY') && !isCode(err, 'ENOTEMPTY')) throw err;
    }
    let children: string[];
    try {
      children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return;
      throw err;
    }
    if (children.length > 0) {
      for (const child of children) await removeDirTree(child, busyRetries);
      continue;
    }
    if (attempt >= busyRetries) throw failedPrecondition(`cgroup ${dir} still has processes; cannot remove it`);
    await sleep(25);
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
