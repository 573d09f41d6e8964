// What /proc says of a process the benches measure: its CPU and minor page faults (all its
// threads, or one), and how its main thread shared the cores (schedstat).
import { readFileSync } from 'node:fs';

/** /proc's clock ticks per second (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

export interface ProcStat {
  userMs: number;
  systemMs: number;
  /** Minor page faults: each costs ~10 µs of system time on this project's VM. */
  minorFaults: number;
}

/**
 * /proc/PID/stat, or /proc/PID/task/TID/stat for one thread. Fields are counted after the
 * command name's closing parenthesis, as the name itself may hold spaces and parentheses.
 */
export function procStat(path: string): ProcStat {
  const text = readFileSync(path, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { userMs: (Number(fields[11]) / CLK_TCK) * 1000, systemMs: (Number(fields[12]) / CLK_TCK) * 1000, minorFaults: Number(fields[7]) };
}

/** CPU ms of a process's own threads, user and system (its children excluded). */
export function cpuMsOf(pid: number): number {
  const { userMs, systemMs } = procStat(`/proc/${pid}/stat`);
  return userMs + systemMs;
}

/**
 * A thread's schedstat: its time on a core and its wait for one (run_delay), in ms, and how many
 * times it got a core. Finer than stat's ticks: a single call's CPU shows in it.
 */
export function schedStat(pid: number, tid = pid): { onCoreMs: number; waitedMs: number; slices: number } {
  const [onCoreNs, waitedNs, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { onCoreMs: onCoreNs! / 1e6, waitedMs: waitedNs! / 1e6, slices: slices! };
}
