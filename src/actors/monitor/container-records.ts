// What crisp keeps about each container it runs, under the runroot, so that any later process
// finds it again: the create intent (written before conmon is launched, so a create cut short
// still names what it may have made), the record (written once conmon reported the pid), the
// settled exit, conmon's own exit file, and the attach socket links. Paths and reads only; what
// the files mean is container-runtime.ts's business.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { invalidArgument } from '../../errors.js';
import { errCode, exists, readJsonFile } from '../../host/files.js';
import type { ExitReason } from './types.js';

/** Which OCI runtime (and its root) a container was made with; absent in records older than handlers. */
export interface RuntimeChoice {
  runtimePath?: string;
  runtimeRoot?: string;
}

/** What create() is about to make: enough for delete() to undo an attempt cut short. */
export interface CreateIntent extends RuntimeChoice {
  version: 1;
  id: string;
  bundle: string;
  cgroupsPath?: string;
}

/** What create() records about a container, so any later process can find it again. */
export interface ContainerRecord extends RuntimeChoice {
  version: 1;
  id: string;
  bundle: string;
  logPath: string;
  cgroupsPath?: string;
  pid: number;
  conmonPid: number;
  /** The cgroup conmon was moved to, when it was moved out of the daemon's. */
  conmonCgroup?: string;
}

/** An exit as first read (with the OOM counters of that moment), kept so later reads agree. */
export interface StoredExit {
  version: 1;
  exitCode: number;
  finishedAt: string;
  oomKilled: boolean;
  reason: ExitReason;
  message?: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const ATTACH_DIR = 'attach';

export function validateId(id: string): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id) || id === ATTACH_DIR) {
    throw invalidArgument(`container id ${JSON.stringify(id)} must be 1-128 characters of [A-Za-z0-9_.+-], starting with a letter or digit`);
  }
}

export class ContainerFiles {
  constructor(
    /** Per-container dirs (pid files, conmon's persist dir, these records) and attach symlinks. */
    private readonly runDir: string,
    /** conmon writes `<exitsDir>/<id>` holding the exit status when a container exits. */
    private readonly exitsDir: string,
  ) {}

  dir(id: string): string {
    return join(this.runDir, id);
  }
  recordFile(id: string): string {
    return join(this.dir(id), 'meta.json');
  }
  intentFile(id: string): string {
    return join(this.dir(id), 'intent.json');
  }
  storedExitFile(id: string): string {
    return join(this.dir(id), 'exit.json');
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

  /** The record create() wrote, or null for an unknown id. */
  async record(id: string): Promise<ContainerRecord | null> {
    validateId(id);
    return readJsonFile<ContainerRecord>(this.recordFile(id));
  }

  /** The record, or else the intent of a create cut short; null when neither exists. */
  async recordOrIntent(id: string): Promise<ContainerRecord | CreateIntent | null> {
    validateId(id);
    return (await readJsonFile<ContainerRecord>(this.recordFile(id))) ?? (await readJsonFile<CreateIntent>(this.intentFile(id)));
  }

  /** Ids of every container this run dir holds a record or a create intent for (for reconciliation at start-up). */
  async list(): Promise<string[]> {
    let entries: string[];
    try {
      entries = readdirSync(this.runDir);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return [];
      throw err;
    }
    const ids: string[] = [];
    for (const entry of entries) {
      if (entry === ATTACH_DIR || !ID_PATTERN.test(entry)) continue;
      if ((await exists(join(this.runDir, entry, 'meta.json'))) || (await exists(join(this.runDir, entry, 'intent.json')))) ids.push(entry);
    }
    return ids.sort();
  }
}
