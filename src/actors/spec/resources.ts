// linux.resources and the process's OOM score: CRI's limits mapped to the OCI fields, with the
// values this host cannot honour clamped or left out (each leaving a warning).

import { invalidArgument } from '../../errors.js';
import { parseCpuList } from '../../machines/request-bounds.js';
import type { LinuxContainerResources__Output } from '../../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import type { HostFacts } from './input.js';
import type { OciResources } from './oci-types.js';

function int(value: string | undefined, field: string, min = Number.MIN_SAFE_INTEGER): number {
  if (value === undefined || value === '') return 0;
  if (!/^-?\d+$/.test(value)) throw invalidArgument(`${field}: "${value}" is not an integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw invalidArgument(`${field}: ${value} is out of range`);
  return n;
}

/** The smallest memory limit a container may have (CRI-O's minimum too). */
export const MEMORY_FLOOR = 12 * 1024 * 1024;

/** A cpuset list that parses and names only CPUs (or memory nodes) the node has online. */
function checkCpuset(list: string, online: string | undefined, field: string, what: string): string {
  const wanted = parseCpuList(list, field);
  if (online === undefined) return list;
  const have = parseCpuList(online, `the node's online ${what}`);
  const missing = [...wanted].filter((n) => !have.has(n));
  if (missing.length > 0) throw invalidArgument(`${field}: ${what} ${missing.slice(0, 8).join(',')}${missing.length > 8 ? ',…' : ''} are not online on this node (online: ${online})`);
  return list;
}

export interface ResourcePlan {
  resources: Omit<OciResources, 'devices'>;
  oomScoreAdj?: number;
  warnings: string[];
}

/**
 * A value below the daemon's own oom_score_adj needs CAP_SYS_RESOURCE to set, which this host's
 * bounding set may lack; raising it to the daemon's value keeps the container startable.
 */
export function clampOomScoreAdj(requested: number, daemon: number): { value: number; warning?: string } {
  if (requested < -1000 || requested > 1000) {
    throw invalidArgument(`resources.oom_score_adj: ${requested} is outside -1000..1000`);
  }
  if (requested < daemon) {
    return { value: daemon, warning: `oom_score_adj ${requested} raised to the daemon's own ${daemon}` };
  }
  return { value: requested };
}

export interface PlanOptions {
  pidsLimit?: number;
  /** The request field the resources came in, for messages (default linux.resources). */
  field?: string;
  /** A pod's overhead is no container: it may be smaller than MEMORY_FLOOR. */
  noMemoryFloor?: boolean;
}

export function planResources(res: LinuxContainerResources__Output | null, host: HostFacts, options: PlanOptions = {}): ResourcePlan {
  const { pidsLimit, field = 'linux.resources' } = options;
  const warnings: string[] = [];
  const out: ResourcePlan['resources'] = {};
  if (res) {
    const f = (name: string) => `${field}.${name}`;
    const shares = int(res.cpu_shares, f('cpu_shares'), 0);
    const quota = int(res.cpu_quota, f('cpu_quota'), -1);
    const period = int(res.cpu_period, f('cpu_period'), 0);
    const cpu: NonNullable<OciResources['cpu']> = {};
    if (shares > 0) cpu.shares = shares;
    if (quota !== 0) cpu.quota = quota;
    if (period > 0) cpu.period = period;
    if (res.cpuset_cpus !== '') cpu.cpus = checkCpuset(res.cpuset_cpus, host.cpus, f('cpuset_cpus'), 'CPUs');
    if (res.cpuset_mems !== '') cpu.mems = checkCpuset(res.cpuset_mems, host.mems, f('cpuset_mems'), 'memory nodes');
    if (Object.keys(cpu).length > 0) out.cpu = cpu;

    const limit = int(res.memory_limit_in_bytes, f('memory_limit_in_bytes'), 0);
    const swap = int(res.memory_swap_limit_in_bytes, f('memory_swap_limit_in_bytes'), -1);
    if (limit > 0) {
      // Below this a container's own runtime does not fit, and runc fails with a cgroup error.
      if (limit < MEMORY_FLOOR && !options.noMemoryFloor) throw invalidArgument(`${f('memory_limit_in_bytes')}: ${limit} is below the ${MEMORY_FLOOR}-byte (12 MiB) minimum`);
      out.memory = { limit };
      if (swap > 0 && swap < limit) {
        throw invalidArgument(`${f('memory_swap_limit_in_bytes')}: ${swap} is below memory_limit_in_bytes ${limit}`);
      }
      // OCI swap is memory+swap; CRI's field has the same meaning. Without swap accounting the
      // kernel rejects any swap limit, so it is left out.
      if (host.swapAccounting) out.memory.swap = swap !== 0 ? swap : limit;
      else if (swap !== 0) warnings.push('memory_swap_limit_in_bytes ignored: the host does not account swap');
    } else if (swap !== 0) {
      throw invalidArgument(`${f('memory_swap_limit_in_bytes')}: set without memory_limit_in_bytes`);
    }

    if (res.hugepage_limits.length > 0) {
      if (host.hugetlb) {
        out.hugepageLimits = res.hugepage_limits.map((h, i) => {
          if (!/^\d+[KMG]B$/.test(h.page_size)) {
            throw invalidArgument(`${f(`hugepage_limits[${i}].page_size`)}: "${h.page_size}" is not like 2MB or 1GB`);
          }
          return { pageSize: h.page_size, limit: int(h.limit, f(`hugepage_limits[${i}].limit`), 0) };
        });
      } else {
        warnings.push('hugepage_limits ignored: the host has no hugetlb cgroup controller');
      }
    }

    const unified = Object.entries(res.unified ?? {});
    if (unified.length > 0) {
      if (host.cgroupVersion === 2) {
        for (const [key] of unified) {
          if (!/^[a-z_]+\.[a-z0-9_.]+$/.test(key)) throw invalidArgument(`${f('unified')}: "${key}" is not a cgroup v2 file name`);
        }
        out.unified = Object.fromEntries(unified);
      } else {
        warnings.push('unified resources ignored: the host uses cgroup v1');
      }
    }
  }
  if (pidsLimit !== undefined) {
    if (!Number.isInteger(pidsLimit) || pidsLimit === 0 || pidsLimit < -1) {
      throw invalidArgument(`pidsLimit: ${pidsLimit} must be a positive integer or -1 (unlimited)`);
    }
    out.pids = { limit: pidsLimit };
  }

  const plan: ResourcePlan = { resources: out, warnings };
  if (res && res.oom_score_adj !== '') {
    const clamp = clampOomScoreAdj(int(res.oom_score_adj, `${field}.oom_score_adj`), host.oomScoreAdj);
    plan.oomScoreAdj = clamp.value;
    if (clamp.warning) warnings.push(clamp.warning);
  }
  return plan;
}

/** cgroupfs-driver path of a container: under the pod's parent, or crisp's own default one. */
export function cgroupsPathFor(cgroupParent: string, sandboxId: string, id: string): string {
  const parent = cgroupParent.trim() === '' ? `/crisp/${sandboxId}` : cgroupParent.trim();
  if (parent.endsWith('.slice')) {
    throw invalidArgument(`linux.cgroup_parent: "${parent}" is a systemd slice; crisp uses the cgroupfs driver`);
  }
  const abs = parent.startsWith('/') ? parent : `/${parent}`;
  if (abs.split('/').includes('..')) throw invalidArgument(`linux.cgroup_parent: "${parent}" must not contain ..`);
  return `${abs.replace(/\/+$/, '')}/crisp-${id}`;
}
