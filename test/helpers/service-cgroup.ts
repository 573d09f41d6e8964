// A cgroup of the daemon's own, as a service manager makes one for crisp.service: in the
// hierarchies that track services (name=systemd on v1, the unified tree) and, when asked, in the
// cpu controller's. Pass `dirs` to startDaemon's cgroupDirs; remove() ends what is left in them
// (the daemon and what it started are all that can be there) and removes them, children first.
import { existsSync, readFileSync, readdirSync, rmdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCgroupLayout } from '../../src/actors/monitor/cgroups.js';

export interface ServiceCgroup {
  dirs: string[];
  /** The cgroup in the cpu hierarchy, when asked for. */
  cpuDir?: string;
  remove(): Promise<void>;
}

/** The processes in cgroup `dir` (none when it is gone). */
export const pidsIn = (dir: string): number[] => (existsSync(join(dir, 'cgroup.procs')) ? readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number) : []);

/** `dir` and the cgroups below it, deepest first. */
function subtree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => subtree(join(dir, e.name)));
  return [...children, dir];
}

export async function makeServiceCgroup(name: string, o: { cpu?: boolean } = {}): Promise<ServiceCgroup> {
  const layout = await detectCgroupLayout();
  const hierarchies = new Set<string>();
  if (layout.v1Mounts['name=systemd']) hierarchies.add(layout.v1Mounts['name=systemd']);
  if (layout.unifiedMount) hierarchies.add(layout.unifiedMount);
  const cpuMount = o.cpu ? layout.v1Mounts['cpu'] ?? layout.unifiedMount : undefined;
  if (cpuMount) hierarchies.add(cpuMount);
  const dirs = [...hierarchies].map((h) => join(h, name));
  for (const d of dirs) mkdirSync(d);
  return {
    dirs,
    ...(cpuMount && { cpuDir: join(cpuMount, name) }),
    async remove() {
      const all = () => dirs.flatMap(subtree);
      for (let i = 0; i < 50 && all().some((d) => pidsIn(d).length > 0); i++) {
        for (const pid of all().flatMap(pidsIn)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await sleep(100);
      }
      for (const d of all()) rmdirSync(d);
    },
  };
}
