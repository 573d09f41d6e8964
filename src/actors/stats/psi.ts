// Pressure stall information (KEP-4205): how long a cgroup's tasks waited for CPU, memory or IO,
// from the cgroup v2 <resource>.pressure files. On a v1 hybrid host the same figures are in the
// cgroup's twin in the unified tree, which runc and crun create beside the v1 ones.
import { readCgroupFile } from '../monitor/cgroups.js';
import type { PsiStats } from '../../cri/proto/gen/runtime/v1/PsiStats.js';
import type { PsiData } from '../../cri/proto/gen/runtime/v1/PsiData.js';

export interface CgroupPressure {
  cpu?: PsiStats;
  memory?: PsiStats;
  io?: PsiStats;
}

/** One pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a "full" line). */
export function parsePressure(text: string): PsiStats | undefined {
  const out: PsiStats = {};
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const data = parseLine(text.slice(start, end).trim());
    if (data) {
      if (data.kind === 'some') out.Some = data.values;
      else out.Full = data.values;
    }
    start = end + 1;
  }
  return out.Some || out.Full ? out : undefined;
}

// A stats call parses three of these files per cgroup: fields are found by name in the line,
// without splitting it into arrays and maps.
function parseLine(line: string): { kind: 'some' | 'full'; values: PsiData } | undefined {
  const kind = line.startsWith('some ') ? 'some' : line.startsWith('full ') ? 'full' : undefined;
  if (kind === undefined) return undefined;
  const total = field(line, 'total');
  if (total === undefined || !/^\d+$/.test(total)) return undefined;
  return {
    kind,
    values: {
      // a number encodes without Long.fromString while a double holds it (~285 years of µs)
      Total: total.length < 16 ? Number(total) : total,
      Avg10: Number(field(line, 'avg10') ?? 0),
      Avg60: Number(field(line, 'avg60') ?? 0),
      Avg300: Number(field(line, 'avg300') ?? 0),
    },
  };
}

function field(line: string, name: string): string | undefined {
  let at = line.indexOf(` ${name}=`);
  if (at < 0) return undefined;
  at += name.length + 2;
  const end = line.indexOf(' ', at);
  return line.slice(at, end < 0 ? line.length : end);
}

// Read synchronously, as the other cgroup files are: a pressure file is one small kernel-made page,
// and a stats call over 110 pods would otherwise queue 660 reads on the thread pool.
function readPressure(file: string): PsiStats | undefined {
  try {
    const text = readCgroupFile(file);
    return text === undefined ? undefined : parsePressure(text);
  } catch {
    // no PSI in this kernel, or the cgroup is gone
    return undefined;
  }
}

/** The cgroup's CPU, memory and IO pressure; nothing when the kernel keeps none for it. */
export function readCgroupPressure(unifiedDir: string | undefined): CgroupPressure {
  if (!unifiedDir) return {};
  const out: CgroupPressure = {};
  // the directory is a resolved cgroup path: no join needed (see cgroup-sample.ts)
  const cpu = readPressure(`${unifiedDir}/cpu.pressure`);
  if (cpu) out.cpu = cpu;
  const memory = readPressure(`${unifiedDir}/memory.pressure`);
  if (memory) out.memory = memory;
  const io = readPressure(`${unifiedDir}/io.pressure`);
  if (io) out.io = io;
  return out;
}
