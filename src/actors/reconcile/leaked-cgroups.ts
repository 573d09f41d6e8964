// Container cgroups the sweep may release. Cgroup parents (`/crisp`, kubelet's `kubepods`...)
// are shared with other runtimes and other crisp daemons, so a cgroup is never found by walking
// them: it is attributed to this daemon only by this daemon's own records (a runtime record's
// cgroupsPath, the config.json of a bundle crisp wrote), and only when its leaf is the one
// cgroupsPathFor gives that very id (`crisp-<id>`), so a damaged record cannot point elsewhere.
import { readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { failedPrecondition } from '../../errors.js';
import { cgroupDirs, cgroupExists, removeCgroupTree, resolveCgroupPaths, type CgroupLayout, type CgroupPaths } from '../monitor/cgroups.js';

const ID = /^[0-9a-f]{64}$/;
const KILL_ROUNDS = 50;
const KILL_ROUND_MS = 20;

/** The normalized cgroupsPath when it is the cgroup crisp made for container `id`; else null. */
export function attributedCgroup(id: string, cgroupsPath: unknown): string | null {
  if (typeof cgroupsPath !== 'string' || !cgroupsPath.startsWith('/') || cgroupsPath.split('/').includes('..')) return null;
  const normal = posix.normalize(cgroupsPath).replace(/\/+$/, '');
  return posix.basename(normal) === `crisp-${id}` && posix.dirname(normal) !== '/' ? normal : null;
}

/**
 * crisp's default pod cgroup (`/crisp/<sandbox id>`) a container cgroup sits in, or null when
 * kubelet chose the parent (kubelet removes its own).
 */
export function defaultPodCgroupOf(cgroupsPath: string): { path: string; sandboxId: string } | null {
  const parent = posix.dirname(cgroupsPath);
  const m = /^\/crisp\/([0-9a-f]{64})$/.exec(parent);
  return m ? { path: parent, sandboxId: m[1]! } : null;
}

/** `linux.cgroupsPath` of the bundle's config.json, or undefined when there is none to read. */
export async function bundleCgroupsPath(bundle: string): Promise<string | undefined> {
  try {
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: unknown } };
    const path = spec?.linux?.cgroupsPath;
    return typeof path === 'string' ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Every directory of the cgroup and its descendants, in every hierarchy. */
async function treeDirs(paths: CgroupPaths): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    out.push(dir);
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  for (const dir of cgroupDirs(paths)) await walk(dir);
  return out;
}

async function pidsIn(dirs: readonly string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const dir of dirs) {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  pids.delete(process.pid);
  return [...pids];
}

/** Writes a control file if the cgroup has it (freezer, cgroup.kill differ by kernel and version). */
async function writeControl(dir: string, file: string, value: string): Promise<void> {
  await writeFile(join(dir, file), value).catch(() => undefined);
}

/**
 * SIGKILLs every process in the cgroup tree until it is empty: thawed first (a frozen task
 * cannot die), with v2's cgroup.kill where the kernel has it. Throws if processes remain.
 */
export async function killCgroupProcesses(paths: CgroupPaths): Promise<number> {
  let killed = 0;
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const dirs = await treeDirs(paths);
    const pids = await pidsIn(dirs);
    if (pids.length === 0) return killed;
    for (const dir of dirs) {
      await writeControl(dir, 'freezer.state', 'THAWED');
      await writeControl(dir, 'cgroup.freeze', '0');
    }
    if (paths.unified !== undefined) await writeControl(paths.unified, 'cgroup.kill', '1');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        if (round === 0) killed++;
      } catch {
        // gone already
      }
    }
    await sleep(KILL_ROUND_MS);
  }
  throw failedPrecondition(`cgroup ${paths.cgroupsPath} still has processes after SIGKILL`);
}

/**
 * Kills what runs in the cgroup and removes its tree. Returns false when it did not exist
 * (nothing to release, nothing to record).
 */
export async function reclaimCgroup(layout: CgroupLayout, cgroupsPath: string): Promise<boolean> {
  const paths = resolveCgroupPaths(layout, cgroupsPath);
  if (!(await cgroupExists(paths))) return false;
  await killCgroupProcesses(paths);
  await removeCgroupTree(paths);
  return true;
}

/**
 * Removes crisp's default pod cgroup once empty (rmdir only: a child that is still there
 * belongs to someone and keeps it). Returns whether anything was removed.
 */
export async function removeEmptyPodCgroup(layout: CgroupLayout, podCgroup: string): Promise<boolean> {
  if (!ID.test(posix.basename(podCgroup))) return false;
  let removed = false;
  for (const dir of cgroupDirs(resolveCgroupPaths(layout, podCgroup))) {
    try {
      await rmdir(dir);
      removed = true;
    } catch {
      // absent, or not empty: left alone
    }
  }
  return removed;
}
