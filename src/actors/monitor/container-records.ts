// What crisp keeps about each container it runs, under the runroot: one crash-safety journal,
// written before conmon is launched, naming what create() is about to make (bundle, log, cgroups,
// runtime), so that a create cut short can be undone and a later process finds what to delete.
// Everything learned afterwards is read where its writer left it, never copied: the pids from
// the pid files runc and conmon write in the container's directory, the exit from conmon's exit
// file (crisp writes that file itself only for a process nobody could reap), OOM from the cgroup
// and conmon's `oom` file, and the rest of the container's life from the event log.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalidArgument } from '../../errors.js';
import { errCode, readJsonFile } from '../../host/files.js';

/** Which OCI runtime (and its root) a container was made with; absent in journals older than handlers. */
export interface RuntimeChoice {
  runtimePath?: string;
  runtimeRoot?: string;
}

/** What create() is about to make: enough to undo an attempt cut short and to delete what it made. */
export interface CreateJournal extends RuntimeChoice {
  version: 1;
  id: string;
  bundle: string;
  /** conmon's log file; older crisp kept it in a second record (meta.json), read for their containers. */
  logPath?: string;
  cgroupsPath?: string;
  /** The cgroup conmon is moved to, when crisp moves it out of the daemon's. */
  conmonCgroup?: string;
}

/** The processes of a container runc has created, from the pid files runc and conmon wrote. */
export interface CreatedContainer {
  pid: number;
  conmonPid: number;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const ATTACH_DIR = 'attach';
const JOURNAL = 'intent.json';
/** The record older crisp wrote once conmon reported; only read, for the containers it made. */
const OLDER_RECORD = 'meta.json';

export function validateId(id: string): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id) || id === ATTACH_DIR) {
    throw invalidArgument(`container id ${JSON.stringify(id)} must be 1-128 characters of [A-Za-z0-9_.+-], starting with a letter or digit`);
  }
}

export class ContainerFiles {
  constructor(
    /** Per-container dirs (the journal, pid files, conmon's persist dir) and attach symlinks. */
    private readonly runDir: string,
    /** conmon writes `<exitsDir>/<id>` holding the exit status when a container exits. */
    private readonly exitsDir: string,
  ) {}

  dir(id: string): string {
    return join(this.runDir, id);
  }
  journalFile(id: string): string {
    return join(this.dir(id), JOURNAL);
  }
  /** runc writes the container's pid here (conmon passes it as --pid-file). */
  pidFile(id: string): string {
    return join(this.dir(id), 'pidfile');
  }
  conmonPidFile(id: string): string {
    return join(this.dir(id), 'conmon.pid');
  }
  /** conmon creates it when the container's memory cgroup reports an OOM kill. */
  oomFile(id: string): string {
    return join(this.dir(id), 'oom');
  }
  exitFile(id: string): string {
    return join(this.exitsDir, id);
  }
  socketDir(): string {
    return join(this.runDir, ATTACH_DIR);
  }
  /** conmon's attach socket (SOCK_SEQPACKET), reached through a short symlink to the bundle. */
  attachSocket(id: string): string {
    validateId(id);
    return join(this.socketDir(), id, 'attach');
  }

  /** The journal create() wrote, or null for an id crisp has not tried to create. */
  journal(id: string): CreateJournal | null {
    validateId(id);
    const journal = readJsonFile<CreateJournal>(this.journalFile(id));
    if (!journal || journal.logPath !== undefined) return journal;
    // made by an earlier crisp, which kept the log path and conmon's cgroup in a second record
    const older = readJsonFile<Pick<CreateJournal, 'logPath' | 'conmonCgroup'>>(join(this.dir(id), OLDER_RECORD));
    return older ? { ...journal, logPath: older.logPath, ...(older.conmonCgroup && { conmonCgroup: older.conmonCgroup }) } : journal;
  }

  /**
   * The container's pids once runc has created it, else null. conmon writes its pid file before
   * it runs the runtime's create, and runc writes the container's when the container exists.
   */
  created(id: string): CreatedContainer | null {
    validateId(id);
    const pid = readPid(this.pidFile(id));
    const conmonPid = pid === null ? null : readPid(this.conmonPidFile(id));
    return pid === null || conmonPid === null ? null : { pid, conmonPid };
  }

  /** Ids of every container this run dir holds a journal for (for reconciliation at start-up). */
  list(): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.runDir);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return [];
      throw err;
    }
    return entries.filter((entry) => entry !== ATTACH_DIR && ID_PATTERN.test(entry) && existsSync(join(this.runDir, entry, JOURNAL))).sort();
  }
}

function readPid(path: string): number | null {
  if (!existsSync(path)) return null;
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

