// The memory figures kubelet's summary API wants beyond what the monitor's cgroup reader
// gives (page faults, swap). Read here rather than in the monitor's OOM path, which has no use
// for them.
import { join } from 'node:path';
import { cgroupFiles, parseFlatKeyed, readNumber, type CgroupFileReader, type CgroupPaths } from '../monitor/cgroups.js';

export interface MemoryExtras {
  pageFaults?: bigint;
  majorPageFaults?: bigint;
  swapUsageBytes?: bigint;
  /** Undefined when swap is not limited (or not accounted). */
  swapLimitBytes?: bigint;
}

// v1 writes "no limit" as the largest page-aligned int64
const V1_UNLIMITED = 0x7ffffffffffff000n;

/** With the reader of the same sample, memory.stat and the limits are read once for both. */
export async function readMemoryExtras(paths: CgroupPaths, read: CgroupFileReader = cgroupFiles()): Promise<MemoryExtras> {
  if (paths.version === 2) {
    const dir = paths.unified;
    if (!dir) return {};
    const stat = parseFlatKeyed(read(join(dir, 'memory.stat')) ?? '');
    return {
      pageFaults: stat.get('pgfault'),
      majorPageFaults: stat.get('pgmajfault'),
      swapUsageBytes: readNumber(read, join(dir, 'memory.swap.current')),
      swapLimitBytes: readNumber(read, join(dir, 'memory.swap.max')),
    };
  }
  const dir = paths.controllers['memory'];
  if (!dir) return {};
  const stat = parseFlatKeyed(read(join(dir, 'memory.stat')) ?? '');
  // memsw counts memory + swap: without swap accounting the files are absent and swap is unknown
  const memsw = readNumber(read, join(dir, 'memory.memsw.limit_in_bytes'));
  const mem = readNumber(read, join(dir, 'memory.limit_in_bytes'));
  const swapLimited = memsw !== undefined && mem !== undefined && memsw < V1_UNLIMITED && memsw >= mem;
  return {
    pageFaults: stat.get('total_pgfault'),
    majorPageFaults: stat.get('total_pgmajfault'),
    swapUsageBytes: memsw === undefined ? undefined : (stat.get('total_swap') ?? 0n),
    swapLimitBytes: swapLimited ? memsw - mem : undefined,
  };
}
