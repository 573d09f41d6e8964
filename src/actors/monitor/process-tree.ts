// Host processes seen through /proc: pid files written by runc and conmon, and killing a
// process with everything it started, leaves first. A parent still alive reaps its killed
// child, whereas an orphan is handed to the container's init, which may never reap it.
import { readFile, readdir } from 'node:fs/promises';
import { silentLogger, type Logger } from '../../log.js';
import { errCode } from '../../host/files.js';

/** The pid a runc/conmon pid file holds, or null while it is missing, empty or not a pid. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function procStat(pid: number): Promise<{ state: string; ppid: number } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/**
 * The process's identity — pid plus start time in clock ticks since boot — or null once it is
 * gone or a zombie. Comparing identities tells "still that process" from "pid reused".
 */
export async function processIdentity(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after the comm field: state is field 3 of proc(5), starttime field 22
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return `${pid}@${fields[19]}`;
  } catch {
    return null;
  }
}

/** True while /proc/<pid> exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  const s = await procStat(pid);
  return s !== null && s.state !== 'Z';
}

/** [[root], [children], [grandchildren], ...] from the ppid links in /proc. */
async function descendantsByDepth(root: number): Promise<number[][]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await procStat(Number(entry));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(entry));
    children.set(s.ppid, list);
  }
  const levels: number[][] = [[root]];
  for (;;) {
    const next = levels.at(-1)!.flatMap((pid) => children.get(pid) ?? []);
    if (next.length === 0) return levels;
    levels.push(next);
  }
}

export interface KillTreeOptions {
  /**
   * Before killing the next level up, wait (briefly) until the killed level has been reaped
   * by its parents, i.e. left /proc, rather than only until it stopped running.
   */
  untilReaped?: boolean;
  /** Where kill failures other than "no such process" are reported. */
  logger?: Logger;
}

const LEVEL_WAIT_MS = 250;

/** SIGKILLs `root` and its descendants, deepest first, in up to five rounds while root lives. */
export async function killProcessTree(root: number, o: KillTreeOptions = {}): Promise<void> {
  const logger = o.logger ?? silentLogger;
  for (let round = 0; round < 5 && (await isAlive(root)); round++) {
    const levels = await descendantsByDepth(root);
    for (const level of levels.reverse()) {
      for (const pid of level) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (err) {
          if (errCode(err) !== 'ESRCH') logger.warn({ pid, err }, 'killing a process tree: kill failed');
        }
      }
      await settled(level, o.untilReaped ?? false);
    }
  }
}

async function settled(pids: number[], untilReaped: boolean): Promise<void> {
  const deadline = Date.now() + LEVEL_WAIT_MS;
  const pending = async (pid: number) => (untilReaped ? (await procStat(pid)) !== null : isAlive(pid));
  for (const pid of pids) {
    while ((await pending(pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5).unref());
  }
}
