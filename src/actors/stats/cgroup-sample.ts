// What the CRI stats report of one cgroup, read from its files at one moment: CPU time, memory
// (with page faults and swap), the process count and pressure. A stats call of a full node does
// this for every pod and every container, every ten seconds, so only the files those figures come
// from are read, and memory.stat (v1 builds it by walking the cgroup's subtree) is read once, its
// few wanted keys looked up in the text rather than the whole file parsed into numbers.
import { readCgroupFile, type CgroupPaths } from '../monitor/cgroups.js';
import { readCgroupPressure, type CgroupPressure } from './psi.js';

export interface CgroupSample {
  cpuNs?: bigint;
  memory?: {
    usageBytes: bigint;
    /** Undefined when unlimited. */
    limitBytes: bigint | undefined;
    workingSetBytes: bigint;
    rssBytes: bigint | undefined;
    pageFaults: bigint | undefined;
    majorPageFaults: bigint | undefined;
  };
  swap?: {
    usageBytes: bigint;
    /** Undefined when swap is not limited (or not accounted). */
    limitBytes: bigint | undefined;
  };
  processes?: bigint;
  pressure: CgroupPressure;
}

// v1 writes "no limit" as the largest page-aligned int64
const V1_UNLIMITED = 0x7ffffffffffff000n;
const DIGITS = /^-?\d+$/;

/** A single-number file's value; `max` (no limit), junk and an absent file give undefined. */
export function cgroupNumber(text: string | undefined): bigint | undefined {
  const value = text?.trim();
  return value !== undefined && DIGITS.test(value) ? BigInt(value) : undefined;
}

/** The value of `key` in a `key value` per line file (memory.stat, cpu.stat), without parsing the rest. */
export function flatKeyedValue(text: string | undefined, key: string): bigint | undefined {
  if (text === undefined) return undefined;
  let at: number;
  if (text.startsWith(key) && text.charCodeAt(key.length) === 0x20) at = 0;
  else {
    at = text.indexOf(`\n${key} `);
    if (at < 0) return undefined;
    at += 1;
  }
  const start = at + key.length + 1;
  const end = text.indexOf('\n', start);
  return cgroupNumber(text.slice(start, end < 0 ? text.length : end));
}

// The directories are resolved (normal, no trailing slash): a template is all a path needs here,
// where path.join's normalising made a fifth of what a stats call allocated.
const fileOf = (dir: string | undefined, name: string): string | undefined => (dir === undefined ? undefined : readCgroupFile(`${dir}/${name}`));

/** The cgroup's figures; those of hierarchies or files that are absent are left out. */
export function readCgroupSample(paths: CgroupPaths): CgroupSample {
  const sample = paths.version === 2 ? readV2(paths.unified) : readV1(paths.controllers);
  sample.pressure = readCgroupPressure(paths.unified);
  return sample;
}

function readV1(controllers: Record<string, string>): CgroupSample {
  const sample: CgroupSample = { pressure: {} };
  const cpuNs = cgroupNumber(fileOf(controllers['cpuacct'], 'cpuacct.usage'));
  if (cpuNs !== undefined) sample.cpuNs = cpuNs;
  const memory = controllers['memory'];
  if (memory !== undefined) {
    const stat = fileOf(memory, 'memory.stat');
    const usage = cgroupNumber(fileOf(memory, 'memory.usage_in_bytes'));
    const limit = cgroupNumber(fileOf(memory, 'memory.limit_in_bytes'));
    if (usage !== undefined) {
      const inactiveFile = flatKeyedValue(stat, 'total_inactive_file') ?? 0n;
      sample.memory = {
        usageBytes: usage,
        limitBytes: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
        workingSetBytes: usage > inactiveFile ? usage - inactiveFile : 0n,
        rssBytes: flatKeyedValue(stat, 'total_rss'),
        pageFaults: flatKeyedValue(stat, 'total_pgfault'),
        majorPageFaults: flatKeyedValue(stat, 'total_pgmajfault'),
      };
    }
    // memsw counts memory + swap: without swap accounting the file is absent and swap is unknown
    const memsw = cgroupNumber(fileOf(memory, 'memory.memsw.limit_in_bytes'));
    if (memsw !== undefined) {
      const limited = limit !== undefined && memsw < V1_UNLIMITED && memsw >= limit;
      sample.swap = { usageBytes: flatKeyedValue(stat, 'total_swap') ?? 0n, limitBytes: limited ? memsw - limit : undefined };
    }
  }
  const processes = cgroupNumber(fileOf(controllers['pids'], 'pids.current'));
  if (processes !== undefined) sample.processes = processes;
  return sample;
}

function readV2(dir: string | undefined): CgroupSample {
  const sample: CgroupSample = { pressure: {} };
  if (dir === undefined) return sample;
  const usageUsec = flatKeyedValue(fileOf(dir, 'cpu.stat'), 'usage_usec');
  if (usageUsec !== undefined) sample.cpuNs = usageUsec * 1000n;
  const current = cgroupNumber(fileOf(dir, 'memory.current'));
  if (current !== undefined) {
    const stat = fileOf(dir, 'memory.stat');
    const inactiveFile = flatKeyedValue(stat, 'inactive_file') ?? 0n;
    sample.memory = {
      usageBytes: current,
      limitBytes: cgroupNumber(fileOf(dir, 'memory.max')),
      workingSetBytes: current > inactiveFile ? current - inactiveFile : 0n,
      rssBytes: flatKeyedValue(stat, 'anon'),
      pageFaults: flatKeyedValue(stat, 'pgfault'),
      majorPageFaults: flatKeyedValue(stat, 'pgmajfault'),
    };
  }
  const swap = cgroupNumber(fileOf(dir, 'memory.swap.current'));
  if (swap !== undefined) sample.swap = { usageBytes: swap, limitBytes: cgroupNumber(fileOf(dir, 'memory.swap.max')) };
  const processes = cgroupNumber(fileOf(dir, 'pids.current'));
  if (processes !== undefined) sample.processes = processes;
  return sample;
}
