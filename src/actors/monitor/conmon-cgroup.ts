// Where each conmon lives, so that containers survive the daemon's service being restarted.
// conmon is started by the daemon and so begins in the daemon's own cgroup; systemd stops a
// service (KillMode=control-group) by killing every process of that cgroup, which would take
// every conmon with it. As CRI-O's conmon_cgroup does, each conmon is moved out: into a cgroup
// beside its pod's containers ("pod", the default), into one cgroup the operator names, or left
// where it is ("daemon"). It is moved only in the hierarchies where the daemon itself sits
// below the root (where a service manager would find it); a daemon run by hand at the root of
// every hierarchy moves nothing.
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { failedPrecondition } from '../../errors.js';
import { parseProcCgroup, type CgroupLayout } from './cgroups.js';

export type ConmonCgroupSetting = 'pod' | 'daemon' | `/${string}`;

export function parseConmonCgroup(value: string): ConmonCgroupSetting {
  if (value === 'pod' || value === 'daemon') return value;
  if (value.startsWith('/') && !value.split('/').includes('..')) return posix.normalize(value).replace(/(.)\/+$/, '$1') as `/${string}`;
  throw failedPrecondition(`conmon_cgroup = ${JSON.stringify(value)}: expected "pod", "daemon" or an absolute cgroupfs path`);
}

/**
 * The mount directories of the hierarchies in which this process's cgroup (from
 * /proc/self/cgroup) is not the root. v1 cpuset is left out: a new cpuset cgroup holds no CPUs
 * until it is given some, and no service manager tracks processes by it.
 */
export function hierarchiesBelowRoot(layout: CgroupLayout, procSelfCgroup: string): string[] {
  const mounts = new Set<string>();
  for (const { controllers: names, path } of parseProcCgroup(procSelfCgroup)) {
    if (path === '/') continue;
    if (names.length === 0) {
      if (layout.unifiedMount !== undefined) mounts.add(layout.unifiedMount);
      continue;
    }
    if (names.includes('cpuset')) continue;
    const mount = names.map((n) => layout.v1Mounts[n]).find((x) => x !== undefined);
    if (mount !== undefined) mounts.add(mount);
  }
  return [...mounts];
}

/** The cgroup (cgroupfs path) conmon of container `id` goes to, or null when it stays. */
export function conmonCgroupPath(setting: ConmonCgroupSetting, containerCgroupsPath: string | undefined, id: string): string | null {
  if (setting === 'daemon') return null;
  if (setting === 'pod') {
    const parent = containerCgroupsPath ? dirname(containerCgroupsPath) : '/crisp';
    return posix.join(parent, `crisp-conmon-${id}`);
  }
  return setting;
}

export class ConmonPlacer {
  private mounts: string[] | undefined;

  constructor(
    private readonly setting: ConmonCgroupSetting,
    private readonly layout: () => Promise<CgroupLayout>,
    private readonly procSelfCgroup = '/proc/self/cgroup',
  ) {}

  /**
   * Where a container's conmon will go: conmonCgroupPath's answer, or null when it stays where
   * it starts (the "daemon" setting, or a daemon at the root of every hierarchy: nothing to move
   * it out of).
   */
  async target(containerCgroupsPath: string | undefined, id: string): Promise<string | null> {
    const target = conmonCgroupPath(this.setting, containerCgroupsPath, id);
    if (target === null) return null;
    return (await this.hierarchies()).length > 0 ? target : null;
  }

  /**
   * The directories, one per hierarchy where the daemon sits below the root, that make up
   * `target` (what target() said): conmon is moved into each before it runs (see launchConmon).
   */
  async dirs(target: string | null): Promise<string[]> {
    if (target === null) return [];
    return (await this.hierarchies()).map((mount) => join(mount, target));
  }

  private async hierarchies(): Promise<string[]> {
    this.mounts ??= hierarchiesBelowRoot(await this.layout(), readFileSync(this.procSelfCgroup, 'utf8'));
    return this.mounts;
  }

  /** Whether the conmon cgroup of a container is one crisp made for it alone (and removes). */
  ownsCgroup(path: string): boolean {
    return posix.basename(path).startsWith('crisp-conmon-');
  }
}
