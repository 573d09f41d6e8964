// Finding this daemon's conmon processes by their command line. Several crisp daemons may run
// on one machine (tests do), so a conmon is ours only when it is the configured conmon binary
// AND writes exits into THIS daemon's exits dir: the exits dir is unique per runroot.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';

/** What the sweep needs from a conmon command line (as conmonCreateArgs builds it). */
export interface ConmonArgs {
  /** `-c`: the container (runtime) id. */
  id: string;
  exitDir?: string;
  bundle?: string;
  runtimePath?: string;
  /** From `--runtime-arg --root=<dir>`. */
  runtimeRoot?: string;
}

export interface DaemonConmon extends ConmonArgs {
  pid: number;
}

// conmon takes both `-c X` and `--cid X` / `--cid=X`; the long forms come from other callers.
const FLAGS: Record<string, 'id' | 'exitDir' | 'bundle' | 'runtimePath' | 'runtimeArg'> = {
  '-c': 'id', '--cid': 'id',
  '--exit-dir': 'exitDir',
  '-b': 'bundle', '--bundle': 'bundle',
  '-r': 'runtimePath', '--runtime': 'runtimePath',
  '--runtime-arg': 'runtimeArg',
};

/** The conmon options of an argv (argv[0] included); null when it names no container. */
export function parseConmonArgv(argv: readonly string[]): ConmonArgs | null {
  const found: Partial<Record<'id' | 'exitDir' | 'bundle' | 'runtimePath', string>> = {};
  let runtimeRoot: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = FLAGS[flag];
    if (key === undefined) continue;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) break;
    if (key === 'runtimeArg') {
      if (value.startsWith('--root=')) runtimeRoot = value.slice('--root='.length);
    } else {
      found[key] = value;
    }
  }
  if (!found.id) return null;
  return { ...found, id: found.id, ...(runtimeRoot !== undefined && { runtimeRoot }) };
}

/**
 * The argv's conmon options when it is a conmon of the daemon whose conmon binary is
 * `conmonPath` and whose exits dir is `exitsDir`; null for any other process. The binary
 * matches by path or by name (as isConmonFor does: conmon may be launched via PATH).
 */
export function daemonConmonArgs(argv: readonly string[], o: { conmonPath: string; exitsDir: string }): ConmonArgs | null {
  const exe = argv[0];
  if (!exe || (exe !== o.conmonPath && basename(exe) !== basename(o.conmonPath))) return null;
  const args = parseConmonArgv(argv);
  if (!args?.exitDir || resolve(args.exitDir) !== resolve(o.exitsDir)) return null;
  return args;
}

/**
 * Live (not zombie) conmon processes of this daemon, from /proc. Read synchronously: procfs
 * answers from memory in microseconds, where each async read would wait its turn in libuv's
 * thread pool behind the exit watches start-up arms at the same time.
 */
export async function findDaemonConmons(o: { conmonPath: string; exitsDir: string; procDir?: string }): Promise<DaemonConmon[]> {
  const proc = o.procDir ?? '/proc';
  const found: DaemonConmon[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const argv = readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.at(-1) === '') argv.pop();
      const args = daemonConmonArgs(argv, o);
      if (!args) continue;
      const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      found.push({ pid, ...args });
    } catch {
      // exited while we looked: not a leak any more
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}
