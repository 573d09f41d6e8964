// oom_score_adj rules: without CAP_SYS_RESOURCE a process may not lower its score below the
// floor it inherited (the kernel's oom_score_adj_min), so anything crisp spawns can at best
// match crisp's own value. Asking for less makes runc fail the whole container create.
import { readFileSync, writeFileSync } from 'node:fs';
import { invalidArgument } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';

const OOM_SCORE_ADJ_MIN = -1000;
const OOM_SCORE_ADJ_MAX = 1000;

/** The lowest score a child of a process whose own score is `daemonOwn` can be given. */
export function clampOomScoreAdj(requested: number, daemonOwn: number): number {
  if (!Number.isInteger(requested)) throw invalidArgument(`oomScoreAdj must be an integer, got ${requested}`);
  if (!Number.isInteger(daemonOwn)) throw invalidArgument(`daemon oom_score_adj must be an integer, got ${daemonOwn}`);
  const bounded = Math.min(OOM_SCORE_ADJ_MAX, Math.max(OOM_SCORE_ADJ_MIN, requested));
  return Math.max(bounded, daemonOwn);
}

/** /proc/<pid>/oom_score_adj; `self` by default. */
export async function readOomScoreAdj(pid: number | 'self' = 'self'): Promise<number> {
  const text = readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8');
  const value = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(value)) throw invalidArgument(`/proc/${pid}/oom_score_adj holds ${JSON.stringify(text)}`);
  return value;
}

/**
 * Sets a process's score, clamped to what this process may grant. Returns the value written,
 * or null when the process is gone or the kernel refused (logged; a score is never worth
 * failing a container over).
 */
export async function adjustOomScore(pid: number, requested: number, logger: Logger = silentLogger): Promise<number | null> {
  const value = clampOomScoreAdj(requested, await readOomScoreAdj());
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(value));
    return value;
  } catch (err) {
    logger.warn({ pid, value, err }, 'could not set oom_score_adj');
    return null;
  }
}
