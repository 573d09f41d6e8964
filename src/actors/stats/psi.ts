// Pressure stall information (KEP-4205): how long a cgroup's tasks waited for CPU, memory or IO,
// from the cgroup v2 <resource>.pressure files. On a v1 hybrid host the same figures are in the
// cgroup's twin in the unified tree, which runc and crun create beside the v1 ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const values = new Map(fields.map((f) => f.split('=') as [string, string]));
    const total = values.get('total');
    if (total === undefined || !/^\d+$/.test(total)) continue;
    const data: PsiData = {
      Total: total,
      Avg10: Number(values.get('avg10') ?? 0),
      Avg60: Number(values.get('avg60') ?? 0),
      Avg300: Number(values.get('avg300') ?? 0),
    };
    if (kind === 'some') out.Some = data;
    else out.Full = data;
  }
  return out.Some || out.Full ? out : undefined;
}

// Read synchronously, as the other cgroup files are: a pressure file is one small kernel-made page,
// and a stats call over 110 pods would otherwise queue 660 reads on the thread pool.
function readPressure(file: string): PsiStats | undefined {
  try {
    return parsePressure(readFileSync(file, 'utf8'));
  } catch {
    // no PSI in this kernel, or the cgroup is gone
    return undefined;
  }
}

/** The cgroup's CPU, memory and IO pressure; nothing when the kernel keeps none for it. */
export function readCgroupPressure(unifiedDir: string | undefined): CgroupPressure {
  if (!unifiedDir) return {};
  const [cpu, memory, io] = ['cpu', 'memory', 'io'].map((r) => readPressure(join(unifiedDir, `${r}.pressure`)));
  return { ...(cpu && { cpu }), ...(memory && { memory }), ...(io && { io }) };
}
