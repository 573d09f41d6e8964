// Where the commands crisp runs get their CPU. Every short-lived command of a pod's life (runc,
// the CNI plugins, conmon until it is moved out) is started by the spawn helper
// (host/spawn-helper.ts), and a child starts in its parent's cgroup. Left in the daemon's cgroup,
// those commands and the daemon's event loop are one pool of tasks to the scheduler: while ten
// pods start on a 2-core node, a relist that needs the event loop for a millisecond waits behind
// a queue of runc and CNI processes. In a cgroup of their own, below the daemon's, the commands
// are one scheduling entity beside the daemon: they still get every core the daemon leaves idle,
// but the event loop is scheduled as soon as it wakes (density bench, 100 pods 10 at a time,
// daemon in a service cgroup: relist p50 while pods start 37-90 ms before, 15-21 ms after; pod
// start-up unchanged; ~1 ms more daemon CPU per pod torn down, its loop woken per reply).
//
// Only the cpu hierarchy matters, and only where the daemon sits below its root (a service
// cgroup, which with systemd's Delegate=yes is the daemon's to divide); a daemon run by hand at
// the root of the hierarchy moves nothing, as conmon placement does. On cgroup v1 the commands'
// cgroup is a child of the daemon's. On v2 a cgroup with children that use a controller may hold
// no processes itself, so the daemon first moves itself into a leaf of its own (crisp-daemon)
// and then turns the cpu controller on for its cgroup's children; a cgroup that holds processes
// other than the daemon's (a login session's) is left alone.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedPrecondition } from '../../errors.js';
import { parseProcCgroup, type CgroupLayout } from './cgroups.js';

/** A cgroup's name, made below the daemon's own; "daemon" leaves the commands in the daemon's cgroup. */
export type CommandsCgroupSetting = 'daemon' | { name: string };

/** The leaf the daemon moves itself into on cgroup v2, beside the commands' cgroup. */
const DAEMON_LEAF = 'crisp-daemon';

export function parseCommandsCgroup(value: string): CommandsCgroupSetting {
  if (value === 'daemon') return value;
  if (/^[A-Za-z0-9_.-]+$/.test(value) && value !== '.' && value !== '..' && value !== DAEMON_LEAF) return { name: value };
  throw failedPrecondition(`commands_cgroup = ${JSON.stringify(value)}: expected "daemon" or the name of one cgroup (letters, digits, ".", "_", "-"; not "${DAEMON_LEAF}") to make below the daemon's own`);
}

/** Where the commands go: a cgroup directory, or why they stay in the daemon's cgroup. */
export type CommandsPlacement = { dir: string } | { stays: string };

/**
 * Makes the commands' cgroup (on v2, after moving process `pid`, the daemon, into its leaf).
 * Throws only on an unexpected cgroupfs error; the expected reasons to leave the commands where
 * they are come back as `stays`.
 */
export function prepareCommandsCgroup(
  setting: CommandsCgroupSetting,
  layout: CgroupLayout,
  procSelfCgroup: string,
  pid = process.pid,
): CommandsPlacement {
  if (setting === 'daemon') return { stays: 'commands_cgroup = "daemon"' };
  const memberships = parseProcCgroup(procSelfCgroup);
  const own = (controllers: (names: string[]) => boolean) => memberships.find((m) => controllers(m.controllers))?.path;
  const v1Mount = layout.v1Mounts['cpu'];
  if (v1Mount !== undefined) {
    const path = own((names) => names.includes('cpu'));
    if (path === undefined || path === '/') return { stays: 'the daemon is at the root of the cpu hierarchy' };
    const dir = join(v1Mount, path, setting.name);
    mkdirSync(dir, { recursive: true });
    return { dir };
  }
  if (layout.unifiedMount === undefined) return { stays: 'no cpu controller is mounted' };
  const path = own((names) => names.length === 0);
  if (path === undefined || path === '/') return { stays: 'the daemon is at the root of the cgroup v2 hierarchy' };
  const leafOf = path.endsWith(`/${DAEMON_LEAF}`) ? path.slice(0, -DAEMON_LEAF.length - 1) : undefined;
  const parent = join(layout.unifiedMount, leafOf ?? path);
  const words = (file: string) => readFileSync(join(parent, file), 'utf8').split(/\s+/);
  if (!words('cgroup.controllers').includes('cpu')) {
    return { stays: `the cpu controller is not delegated to ${parent} (Delegate=yes in the service's unit)` };
  }
  if (!words('cgroup.subtree_control').includes('cpu')) {
    if (leafOf === undefined) {
      // A cgroup others live in too (a login session's, say) is not the daemon's to divide.
      const others = words('cgroup.procs').filter((p) => p !== '' && p !== String(pid));
      if (others.length > 0) return { stays: `${parent} is not the daemon's own: it holds other processes (${others.slice(0, 5).join(', ')})` };
      const leaf = join(parent, DAEMON_LEAF);
      mkdirSync(leaf, { recursive: true });
      writeFileSync(join(leaf, 'cgroup.procs'), String(pid));
    }
    try {
      writeFileSync(join(parent, 'cgroup.subtree_control'), '+cpu');
    } catch (err) {
      // EBUSY: processes other than the daemon's are in its cgroup, which only a leaf may hold.
      return { stays: `the cpu controller could not be enabled below ${parent}: ${(err as Error).message}` };
    }
  }
  const dir = join(parent, setting.name);
  mkdirSync(dir, { recursive: true });
  return { dir };
}

/** Moves process `pid` (the spawn helper, as it starts) into the commands' cgroup. */
export function placeInCommandsCgroup(placement: CommandsPlacement, pid: number): void {
  if ('dir' in placement) writeFileSync(join(placement.dir, 'cgroup.procs'), String(pid));
}
