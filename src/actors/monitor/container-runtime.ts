// Running containers: the OCI runtime of their handler (runc, crun) under conmon. Everything
// this class knows about a container is in files (the runtime's state dir, the pid, exit and oom
// files runc and conmon write, crisp's create journal in container-records.ts), so a new
// ContainerRuntime over the same directories re-adopts containers started by an earlier
// process: that is how crisp survives its own restarts.
import { open } from 'node:fs/promises';
import { constants as fsConstants, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Subject } from '../../rx.js';
import { crashPoint } from '../../crash-points.js';
import {
  alreadyExists,
  deadlineExceeded,
  failedPrecondition,
  internal,
  invalidArgument,
  isCrispError,
  notFound,
} from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { detectCgroupLayout, isFrozen, readOomKillCount, removeCgroupTree, resolveCgroupPaths, type CgroupLayout, type CgroupPaths } from './cgroups.js';
import { isConmonFor, launchConmon, type ConmonLifeline } from './conmon.js';
import { DEFAULT_MAX_EXEC_OUTPUT, execSyncWithRunc } from './exec-sync.js';
import { writeExecProcess } from './exec-process-file.js';
import { errCode, exists, removePath, waitForFile, WaitAborted, writeJsonFileAtomic } from '../../host/files.js';
import { readOomScoreAdj } from './oom-score.js';
import { readPidFile, processIdentity } from './process-tree.js';
import { Runc, runcErrorText, isNotExist } from './runc.js';
import { parseSignal } from './signals.js';
import type { ExitInfo, ExecSyncResult, LinuxResources, RuntimeState } from './types.js';
import { ConmonPlacer, type ConmonCgroupSetting } from './conmon-cgroup.js';
import type { RuntimeHandlerSpec } from './runtime-handlers.js';
import { ContainerFiles, validateId, type CreatedContainer, type CreateJournal, type RuntimeChoice } from './container-records.js';

export interface ContainerRuntimeOptions {
  /** The default handler's OCI runtime. */
  runtimePath: string;
  /** The default handler's --root */
  runtimeRoot: string;
  /** The other handlers (RuntimeClass): each runtime with a root of its own. */
  runtimes?: readonly RuntimeHandlerSpec[];
  conmonPath: string;
  /** Per-container dirs (pid files, conmon's persist dir, the create journal) and attach symlinks. */
  runDir: string;
  /** conmon writes `<exitsDir>/<id>` holding the exit status when a container exits. */
  exitsDir: string;
  logger?: Logger;
  /** How long conmon may take to report the container pid (runc create). Default 240 s. */
  createTimeoutSeconds?: number;
  /** After SIGKILL, how long to wait for conmon's exit file before giving up. Default 30 s. */
  killWaitSeconds?: number;
  /** Where conmons go, out of the daemon's cgroup (see conmon-cgroup.ts). Default "pod". */
  conmonCgroup?: ConmonCgroupSetting;
}

export interface CreateOptions {
  id: string;
  bundle: string;
  logPath: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  logSizeMax?: number;
  /** The pod's runtime handler; '' or absent is the default. */
  runtimeHandler?: string;
}

// conmon's ctl-fifo message to reopen log files (type 2; the two numbers are a window size it ignores)
const REOPEN_LOGS_MESSAGE = '2 0 0\n';
const REOPEN_WAIT_MS = 10_000;
const DELETE_EXIT_WAIT_MS = 10_000;
// exit status we report when conmon vanished without writing one (CRI-O and containerd do the same)
const UNKNOWN_EXIT_CODE = 255;
// How often crisp looks at a process whose conmon is gone (see adoptOrphan).
const ORPHAN_POLL_MS = 500;

/** What start-up finds when it looks at a container the log says has a process. */
export type MonitorCheck =
  | { status: 'exited'; exit: ExitInfo }
  | { status: 'monitored' }
  | { status: 'orphaned'; pid: number; conmonPid: number | null }
  | { status: 'unknown-id' };

/** A container whose conmon died while its process lives on; crisp watches it from then on. */
export interface OrphanNotice {
  id: string;
  pid: number;
  conmonPid: number | null;
}

export class ContainerRuntime {
  private readonly runcs = new Map<string, Runc>();
  /** Each container's runtime, once known: it never changes, and start, stop, state and exec would otherwise each read the record for it. */
  private readonly runcById = new Map<string, Runc>();
  /**
   * The create journal and the pids runc and conmon wrote do not change while the container
   * exists: each is read from its file once and forgotten when the container is removed. A
   * container's life asked for them nine times (strace of a density run: the journal six times, the
   * pid files three), each a stat, a read and a parse. After a restart they are read afresh.
   */
  private readonly journals = new Map<string, { journal: CreateJournal; cgroup?: CgroupPaths }>();
  private readonly pids = new Map<string, CreatedContainer>();
  private readonly logger: Logger;
  private readonly lifelines = new Map<string, ConmonLifeline>();
  private readonly orphans = new Map<string, NodeJS.Timeout>();
  private layout?: Promise<CgroupLayout>;
  /** Each time crisp takes over watching a process whose conmon is gone. */
  readonly orphaned$ = new Subject<OrphanNotice>();

  private readonly conmonPlacer: ConmonPlacer;
  private readonly files: ContainerFiles;

  constructor(private readonly o: ContainerRuntimeOptions) {
    for (const key of ['runtimePath', 'runtimeRoot', 'conmonPath', 'runDir', 'exitsDir'] as const) {
      if (typeof o[key] !== 'string' || !isAbsolute(o[key])) throw invalidArgument(`${key} must be an absolute path, got ${JSON.stringify(o[key])}`);
    }
    for (const h of o.runtimes ?? []) {
      if (!isAbsolute(h.path) || !isAbsolute(h.root)) throw invalidArgument(`runtime handler ${JSON.stringify(h.name)}: path and root must be absolute`);
    }
    this.logger = (o.logger ?? silentLogger).child({ component: 'monitor' });
    this.files = new ContainerFiles(o.runDir, o.exitsDir);
    this.conmonPlacer = new ConmonPlacer(o.conmonCgroup ?? 'pod', () => this.cgroupLayout());
  }

  // ---- what the files say ------------------------------------------------------------------

  /** conmon's attach socket (SOCK_SEQPACKET), reached through a short symlink to the bundle. */
  attachSocketPath(id: string): string {
    return this.files.attachSocket(id);
  }

  /** The pids of a container the runtime has created, or null (unknown id, or a create cut short). */
  async created(id: string): Promise<CreatedContainer | null> {
    return this.createdOf(id);
  }

  private createdOf(id: string): CreatedContainer | null {
    const known = this.pids.get(id);
    if (known) return known;
    const made = this.files.created(id);
    if (made) this.pids.set(id, made);
    return made;
  }

  // Read and kept in one synchronous run, so a removal (which forgets once the files are gone)
  // cannot fall between the two and leave a journal of a removed container behind.
  private recordOf(id: string): { journal: CreateJournal; cgroup?: CgroupPaths } | undefined {
    let known = this.journals.get(id);
    if (!known) {
      const journal = this.files.journal(id);
      if (!journal) return undefined;
      this.journals.set(id, (known = { journal }));
    }
    return known;
  }

  private journalOf(id: string): CreateJournal | null {
    return this.recordOf(id)?.journal ?? null;
  }

  /** Forgets what was read of a container that is being removed. */
  private forget(id: string): void {
    this.journals.delete(id);
    this.pids.delete(id);
    this.runcById.delete(id);
  }

  /** The cgroupsPath the journal of a create (finished or cut short) names; null when none does. */
  async cgroupsPathOf(id: string): Promise<string | null> {
    return this.journalOf(id)?.cgroupsPath ?? null;
  }

  /** Ids of every container this run dir holds a create journal for (for reconciliation at start-up). */
  async list(): Promise<string[]> {
    return this.files.list();
  }

  /** The conmon binary this runtime launches (to tell its conmons from others'). */
  get conmonPath(): string {
    return this.o.conmonPath;
  }

  /** Where the container's cgroup lives on this host (for stats), or null without a cgroupsPath. */
  async cgroupPaths(id: string): Promise<CgroupPaths | null> {
    const layout = await this.cgroupLayout();
    const known = this.recordOf(id);
    const cgroupsPath = known?.journal.cgroupsPath;
    return cgroupsPath ? (known.cgroup ??= resolveCgroupPaths(layout, cgroupsPath)) : null;
  }

  private cgroupLayout(): Promise<CgroupLayout> {
    this.layout ??= detectCgroupLayout();
    return this.layout;
  }

  // ---- runtime handlers --------------------------------------------------------------------

  private runcAt(path: string, root: string): Runc {
    const key = `${path}\0${root}`;
    let runc = this.runcs.get(key);
    if (!runc) this.runcs.set(key, (runc = new Runc(path, root)));
    return runc;
  }

  /** The runtime of a handler by name ('' is the default). */
  private handlerRuntime(name = ''): { path: string; root: string } {
    if (name === '') return { path: this.o.runtimePath, root: this.o.runtimeRoot };
    const h = this.o.runtimes?.find((r) => r.name === name);
    if (!h) throw invalidArgument(`runtime handler ${JSON.stringify(name)} is not configured`);
    return { path: h.path, root: h.root };
  }

  /** Every runtime and root containers may live in (the leak sweep looks in each). */
  allRuntimes(): { name: string; path: string; root: string }[] {
    return [{ name: '', path: this.o.runtimePath, root: this.o.runtimeRoot }, ...(this.o.runtimes ?? []).map((h) => ({ name: h.name, path: h.path, root: h.root }))];
  }

  /** The runtime binary and root a container was made with (the default for unknown ids). */
  async runtimeOf(id: string): Promise<{ path: string; root: string }> {
    const runc = await this.runcOf(id);
    return { path: runc.path, root: runc.root };
  }

  private async runcOf(id: string): Promise<Runc> {
    validateId(id);
    const known = this.runcById.get(id);
    if (known) return known;
    const made: RuntimeChoice | null = this.journalOf(id);
    const r = made?.runtimePath && made.runtimeRoot ? { path: made.runtimePath, root: made.runtimeRoot } : this.handlerRuntime();
    const runc = this.runcAt(r.path, r.root);
    // Only a container crisp has a journal of is remembered: an unknown id is looked up again.
    if (made) this.runcById.set(id, runc);
    return runc;
  }

  // ---- create / start ------------------------------------------------------------------------

  async create(c: CreateOptions): Promise<{ pid: number; conmonPid: number }> {
    validateId(c.id);
    if (typeof c.bundle !== 'string' || !isAbsolute(c.bundle)) throw invalidArgument(`bundle must be an absolute path, got ${JSON.stringify(c.bundle)}`);
    if (typeof c.logPath !== 'string' || !isAbsolute(c.logPath)) throw invalidArgument(`logPath must be an absolute path, got ${JSON.stringify(c.logPath)}`);
    if (c.logSizeMax !== undefined && (!Number.isInteger(c.logSizeMax) || c.logSizeMax < 0)) {
      throw invalidArgument(`logSizeMax must be a non-negative integer, got ${c.logSizeMax}`);
    }
    if (!(await isDirectory(dirname(c.logPath)))) throw invalidArgument(`logPath ${c.logPath}: directory ${dirname(c.logPath)} does not exist`);
    const spec = await readBundleSpec(c.bundle);
    if (Boolean(spec.process?.terminal) !== Boolean(c.terminal)) {
      throw invalidArgument(`terminal=${Boolean(c.terminal)} disagrees with process.terminal=${Boolean(spec.process?.terminal)} in ${c.bundle}/config.json`);
    }
    const oomScoreAdj = spec.process?.oomScoreAdj;
    if (oomScoreAdj !== undefined) {
      const floor = await readOomScoreAdj();
      if (oomScoreAdj < floor) {
        throw invalidArgument(`process.oomScoreAdj ${oomScoreAdj} in ${c.bundle}/config.json is below this daemon's own oom_score_adj ${floor}; clamp it with clampOomScoreAdj`);
      }
    }
    const cgroupsPath = spec.linux?.cgroupsPath;
    const cgroup = cgroupsPath ? resolveCgroupPaths(await this.cgroupLayout(), cgroupsPath) : undefined;
    const handler = this.handlerRuntime(c.runtimeHandler);
    const choice: Required<RuntimeChoice> = { runtimePath: handler.path, runtimeRoot: handler.root };

    if (this.journalOf(c.id)) {
      if (this.createdOf(c.id)) throw alreadyExists(`container ${c.id} already exists`);
      // An earlier create of this id died before runc made the container (crisp was killed
      // mid-launch): undo whatever it made (conmon, cgroup, runc state) and start over.
      this.logger.warn({ id: c.id }, 'undoing a create that was cut short before the runtime made the container');
      await this.delete(c.id);
    } else if (await exists(join(handler.root, c.id, 'state.json'))) {
      // runc keeps each container's state in <root>/<id>/state.json: looking for it costs a
      // stat, where asking `runc state` costs a process spawn on every create.
      throw alreadyExists(`container ${c.id} already exists`);
    }
    const dir = this.files.dir(c.id);
    mkdirSync(this.o.exitsDir, { recursive: true });
    mkdirSync(this.files.socketDir(), { recursive: true });
    await removePath(dir); // leftovers of an earlier, half-cleaned attempt with this id
    await removePath(this.files.exitFile(c.id));
    mkdirSync(dir, { recursive: true });
    const conmonCgroup = await this.conmonPlacer.target(cgroup?.cgroupsPath, c.id);
    const journal: CreateJournal = {
      version: 1,
      id: c.id,
      bundle: c.bundle,
      logPath: c.logPath,
      ...(cgroup && { cgroupsPath: cgroup.cgroupsPath }),
      ...(conmonCgroup !== null && this.conmonPlacer.ownsCgroup(conmonCgroup) && { conmonCgroup }),
      ...choice,
    };
    await writeJsonFileAtomic(this.files.journalFile(c.id), journal);
    this.journals.set(c.id, { journal, ...(cgroup && { cgroup }) });
    const logExisted = await exists(c.logPath);

    const log = this.logger.child({ id: c.id });
    try {
      const launched = await launchConmon(
        {
          conmonPath: this.o.conmonPath,
          runtimePath: handler.path,
          runtimeRoot: handler.root,
          id: c.id,
          bundle: c.bundle,
          logPath: c.logPath,
          exitsDir: this.o.exitsDir,
          containerDir: dir,
          containerPidFile: this.files.pidFile(c.id),
          conmonPidFile: this.files.conmonPidFile(c.id),
          socketDir: this.files.socketDir(),
          terminal: c.terminal,
          stdin: c.stdin,
          stdinOnce: c.stdinOnce,
          logSizeMax: c.logSizeMax,
          // Out of the daemon's cgroup, so a restart of the daemon's service leaves it running.
          cgroupDirs: await this.conmonPlacer.dirs(conmonCgroup),
        },
        { timeoutMs: (this.o.createTimeoutSeconds ?? 240) * 1000, logger: log },
      );
      this.lifelines.set(c.id, launched.lifeline);
      launched.lifeline.once('close', () => this.lifelines.delete(c.id));
      // conmon and runc have made the container; the log does not know it yet.
      crashPoint('runtime:conmon-launched');
      log.info({ pid: launched.pid, conmonPid: launched.conmonPid }, 'container created');
      return { pid: launched.pid, conmonPid: launched.conmonPid };
    } catch (err) {
      log.warn({ err }, 'container create failed; cleaning up');
      await this.removeEverything(c.id, { runc: this.runcAt(handler.path, handler.root), bundle: c.bundle, cgroup, conmonCgroup: journal.conmonCgroup, logPath: logExisted ? undefined : c.logPath }).catch((cleanupErr: unknown) =>
        log.error({ err: cleanupErr }, 'cleanup after failed create was incomplete'),
      );
      throw err;
    }
  }

  async start(id: string): Promise<void> {
    validateId(id);
    await (await this.runcOf(id)).check(['start', id], `start container ${id}`);
  }

  async kill(id: string, signal: NodeJS.Signals | number): Promise<void> {
    validateId(id);
    const sig = parseSignal(signal);
    await (await this.runcOf(id)).check(['kill', id, String(sig)], `signal container ${id}`);
  }

  // ---- state and exits -----------------------------------------------------------------------

  /** runc's view of the container; null when runc does not know the id. */
  async state(id: string): Promise<RuntimeState | null> {
    validateId(id);
    const r = await (await this.runcOf(id)).run(['state', id]);
    if (r.code !== 0) {
      const text = runcErrorText(r.stderr);
      if (isNotExist(text)) return null;
      throw internal(`state of container ${id}: ${text}`);
    }
    const s = JSON.parse(r.stdout) as { status: string; pid: number };
    const status = s.status === 'creating' ? 'created' : s.status;
    if (status !== 'created' && status !== 'running' && status !== 'paused' && status !== 'stopped') {
      throw internal(`state of container ${id}: runc reported unknown status ${JSON.stringify(s.status)}`);
    }
    return { status, pid: s.pid };
  }

  /**
   * The container's exit, or null while it runs: conmon's exit file (its code, and its time as
   * the finish time), and OOM from the kernel's counters. The exit file crisp writes in conmon's
   * stead (a process nobody could reap) carries a second line, the reason the status is unknown.
   */
  async readExit(id: string): Promise<ExitInfo | null> {
    validateId(id);
    let text: string;
    let finishedAt: bigint;
    const exitFile = this.files.exitFile(id);
    if (!existsSync(exitFile)) return null; // still running, the common answer
    try {
      text = readFileSync(exitFile, 'utf8');
      finishedAt = statSync(exitFile, { bigint: true }).mtimeNs;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return null;
      throw err;
    }
    const newline = text.indexOf('\n');
    const exitCode = Number.parseInt(newline < 0 ? text : text.slice(0, newline), 10);
    const unknownBecause = newline < 0 ? '' : text.slice(newline + 1).trim();
    const oomKilled = await this.sawOomKill(id);
    return {
      exitCode: Number.isInteger(exitCode) ? exitCode : -1,
      finishedAt,
      oomKilled,
      reason: oomKilled ? 'OOMKilled' : unknownBecause ? 'Unknown' : exitCode === 0 ? 'Completed' : 'Error',
      ...(unknownBecause && { message: unknownBecause }),
    };
  }

  /**
   * OOM is a fact the kernel counted in the container's memory cgroup, never a guess from
   * exit code 137. conmon's own `oom` file (it listens for memcg OOM events) backs the counter
   * up in case the cgroup is already gone.
   */
  private async sawOomKill(id: string): Promise<boolean> {
    const paths = await this.cgroupPaths(id);
    if (paths) {
      const kills = await readOomKillCount(paths);
      if (kills !== null && kills > 0) return true;
    }
    return existsSync(this.files.oomFile(id));
  }

  /**
   * Writes the exit file conmon would have written, for a process whose status nobody could
   * collect: the unknown code, then why (readExit reports it as reason Unknown). Whoever waits
   * for the file sees it like any other exit.
   */
  private settleUnknownExit(id: string, why: string): void {
    if (!existsSync(this.files.dir(id))) return; // deleted meanwhile
    const file = this.files.exitFile(id);
    writeFileSync(`${file}.tmp`, `${UNKNOWN_EXIT_CODE}\n${why}\n`);
    renameSync(`${file}.tmp`, file);
  }

  /** Resolves when the container has exited (watching conmon's exit file; no polling). */
  async waitExit(id: string, signal?: AbortSignal): Promise<ExitInfo> {
    validateId(id);
    const done = await this.readExit(id);
    if (done) return done;
    const made = this.createdOf(id);
    if (!made) throw notFound(`container ${id} not found`);
    if (!(await isConmonFor(made.conmonPid, id, this.o.conmonPath))) {
      const lost = await this.withoutConmon(id);
      if ('exit' in lost) return lost.exit;
      await this.adoptOrphan(id);
    }

    const local = new AbortController();
    const onOuterAbort = () => local.abort();
    // The caller may have given up during the awaits above; a listener added now would never
    // fire, and the exit-file watch would keep the process alive.
    if (signal?.aborted) throw deadlineExceeded(`waiting for container ${id} to exit was aborted`);
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      const lifeline = this.lifelines.get(id);
      const conmonDied = lifeline
        ? new Promise<'conmon-died'>((resolve) => lifeline.once('close', () => resolve('conmon-died')))
        : new Promise<never>(() => undefined);
      const outcome = await Promise.race([waitForFile(this.files.exitFile(id), local.signal).then(() => 'exited' as const), conmonDied]);
      if (outcome === 'conmon-died') {
        // conmon writes the exit file before it exits, so its absence now is final
        const lost = await this.withoutConmon(id);
        if ('exit' in lost) return lost.exit;
        if (!(await this.adoptOrphan(id))) throw failedPrecondition(`container ${id}: conmon exited and the container's process cannot be watched`);
        await waitForFile(this.files.exitFile(id), local.signal);
      }
      const exit = await this.readExit(id);
      if (!exit) throw internal(`container ${id}: exit file vanished while being read`);
      return exit;
    } catch (err) {
      if (err instanceof WaitAborted) throw deadlineExceeded(`waiting for container ${id} to exit was aborted`);
      throw err;
    } finally {
      local.abort();
      signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  /** conmon is known to be gone; then an exit is only missing while the conmon-less process runs. */
  private async exitIfConmonGone(id: string): Promise<ExitInfo | null> {
    const made = this.createdOf(id);
    if (!made || (await isConmonFor(made.conmonPid, id, this.o.conmonPath))) return null;
    const lost = await this.withoutConmon(id);
    return 'exit' in lost ? lost.exit : null;
  }

  /**
   * What conmon's absence means: the exit it wrote before leaving; or, when runc says the
   * container stopped and no exit file exists, the status is lost, settled now as 255 /
   * Unknown so the container can still be stopped and removed; or the process runs on (its pid).
   */
  private async withoutConmon(id: string): Promise<{ exit: ExitInfo } | { pid: number | null }> {
    const written = await this.readExit(id);
    if (written) return { exit: written };
    const st = await this.state(id);
    if (st && st.status !== 'stopped') return { pid: st.pid || null };
    const why = 'conmon is gone and runc says the container stopped, but no exit file was written; the exit status is unknown';
    this.logger.warn({ id }, why);
    this.settleUnknownExit(id, why);
    const exit = await this.readExit(id);
    if (!exit) throw notFound(`container ${id} was deleted while its exit was being settled`);
    return { exit };
  }

  /**
   * Start-up's look at a container the log says has a process: its exit if one was written
   * (or, with conmon gone and runc saying stopped, the unknown exit settled now), whether conmon
   * still watches it, or whether the process outlived its conmon.
   */
  async inspect(id: string): Promise<MonitorCheck> {
    validateId(id);
    const exit = await this.readExit(id);
    if (exit) return { status: 'exited', exit };
    const made = this.createdOf(id);
    if (!made) return { status: 'unknown-id' };
    if (await isConmonFor(made.conmonPid, id, this.o.conmonPath)) return { status: 'monitored' };
    const lost = await this.withoutConmon(id);
    if ('exit' in lost) return { status: 'exited', exit: lost.exit };
    return { status: 'orphaned', pid: lost.pid ?? made.pid, conmonPid: made.conmonPid };
  }

  /**
   * conmon is gone but the container's process lives: nobody will write its exit file, so crisp
   * watches the process itself (by pid and start time, so a reused pid is not mistaken for it)
   * and, when it ends, writes the exit conmon would have written, with the status unknown
   * (nobody could reap it). Waiters on the exit file then see it like any other exit.
   */
  async adoptOrphan(id: string): Promise<boolean> {
    validateId(id);
    if (this.orphans.has(id)) return true;
    const made = this.createdOf(id);
    const st = made && (await this.state(id));
    if (!made || !st || st.status === 'stopped' || !st.pid) return false;
    const identity = await processIdentity(st.pid);
    if (identity === null) return false;
    const log = this.logger.child({ id, pid: st.pid });
    log.warn({ conmonPid: made.conmonPid }, 'conmon is gone but the container runs on; crisp watches the process itself');
    let looking = false;
    const timer = setInterval(() => {
      if (looking) return;
      looking = true;
      processIdentity(st.pid)
        .then(async (now) => {
          if (now === identity) return;
          clearInterval(timer);
          this.orphans.delete(id);
          await this.settleOrphanExit(id);
        })
        .catch((err: unknown) => log.error({ err }, 'watching a container without its conmon failed'))
        .finally(() => {
          looking = false;
        });
    }, ORPHAN_POLL_MS);
    timer.unref();
    this.orphans.set(id, timer);
    this.orphaned$.next({ id, pid: st.pid, conmonPid: made.conmonPid });
    return true;
  }

  private async settleOrphanExit(id: string): Promise<void> {
    if (existsSync(this.files.exitFile(id))) return;
    this.settleUnknownExit(id, 'the process ended after its conmon was gone; nobody could collect its exit status');
  }

  /** Stops watching orphans (the daemon is shutting down; the next start adopts them again). */
  close(): void {
    for (const timer of this.orphans.values()) clearInterval(timer);
    this.orphans.clear();
    this.orphaned$.complete();
  }

  // ---- stop / delete ---------------------------------------------------------------------------

  /**
   * Sends the stop signal, waits up to timeoutSeconds, then SIGKILLs every process of the
   * container and waits for conmon to record the exit. Idempotent: a stopped container
   * returns its exit again. timeoutSeconds 0 kills at once.
   */
  async stop(id: string, o: { timeoutSeconds: number; signal?: string }): Promise<ExitInfo> {
    validateId(id);
    if (typeof o?.timeoutSeconds !== 'number' || !Number.isFinite(o.timeoutSeconds) || o.timeoutSeconds < 0) {
      throw invalidArgument(`timeoutSeconds must be a non-negative number, got ${o?.timeoutSeconds}`);
    }
    const stopSignal = parseSignal(o.signal ?? 'SIGTERM', 'stop signal');
    const done = await this.readExit(id);
    if (done) return done;
    if (!this.createdOf(id)) throw notFound(`container ${id} not found`);
    const log = this.logger.child({ id });

    // No `runc state` first (a process spawn per stop): the freezer says whether the container
    // is paused, and a container that already stopped or that runc no longer knows makes the
    // kills below fail in ways signalTolerant accepts.
    const paths = await this.cgroupPaths(id);
    const runc = await this.runcOf(id);
    if (paths && (await isFrozen(paths))) await this.signalTolerant(runc, ['resume', id], `resume container ${id}`);
    if (o.timeoutSeconds > 0 && stopSignal !== 9) {
      await this.signalTolerant(runc, ['kill', id, String(stopSignal)], `signal container ${id}`);
      const exit = await this.waitExitWithin(id, o.timeoutSeconds * 1000);
      if (exit) return exit;
      log.info({ timeoutSeconds: o.timeoutSeconds }, 'container ignored its stop signal; killing it');
    }
    await this.signalTolerant(runc, ['kill', '--all', id, '9'], `kill container ${id}`);
    const exit = await this.waitExitWithin(id, (this.o.killWaitSeconds ?? 30) * 1000);
    if (exit) return exit;
    const gone = await this.exitIfConmonGone(id);
    if (gone) return gone;
    throw deadlineExceeded(`container ${id} did not exit after SIGKILL`);
  }

  private async waitExitWithin(id: string, ms: number): Promise<ExitInfo | null> {
    try {
      return await this.waitExit(id, AbortSignal.timeout(ms));
    } catch (err) {
      if (isCrispError(err, 'DeadlineExceeded')) return null;
      throw err;
    }
  }

  /** runc kill/resume, where "already stopped" and "gone" are fine outcomes. */
  private async signalTolerant(runc: Runc, args: string[], what: string): Promise<void> {
    try {
      await runc.check(args, what);
    } catch (err) {
      if (isCrispError(err, 'NotFound') || isCrispError(err, 'FailedPrecondition')) return;
      throw err;
    }
  }

  /**
   * Forcibly removes the container and everything conmon and the runtime kept for it. Idempotent.
   * `runtimeHandler` names the runtime to ask when crisp holds no record of the id (the leak
   * sweep found it in that handler's root); otherwise the record's own runtime is used.
   */
  async delete(id: string, runtimeHandler?: string): Promise<void> {
    validateId(id);
    const made = this.journalOf(id);
    const cgroup = (await this.cgroupPaths(id)) ?? undefined;
    const runtime = made?.runtimePath && made.runtimeRoot ? { path: made.runtimePath, root: made.runtimeRoot } : this.handlerRuntime(runtimeHandler);
    const runc = this.runcAt(runtime.path, runtime.root);
    await this.removeEverything(id, { runc, bundle: made?.bundle, cgroup, conmonCgroup: made?.conmonCgroup });
    this.logger.info({ id }, 'container deleted');
  }

  private async removeEverything(
    id: string,
    o: { runc: Runc; bundle?: string; cgroup?: CgroupPaths; logPath?: string; conmonCgroup?: string },
  ): Promise<void> {
    const conmonPid = await readPidFile(this.files.conmonPidFile(id));
    const r = await o.runc.run(['delete', '--force', id]);
    if (r.code !== 0 && !isNotExist(runcErrorText(r.stderr))) {
      throw internal(`delete container ${id}: ${runcErrorText(r.stderr)}`);
    }
    if (conmonPid !== null && (await isConmonFor(conmonPid, id, this.o.conmonPath))) {
      // let conmon write its exit file and leave, so it cannot recreate files we remove below
      await waitForFile(this.files.exitFile(id), AbortSignal.timeout(DELETE_EXIT_WAIT_MS)).catch(() => undefined);
      if (await isConmonFor(conmonPid, id, this.o.conmonPath)) {
        try {
          process.kill(conmonPid, 'SIGKILL');
        } catch {
          // exited just now
        }
      }
    }
    this.lifelines.get(id)?.destroy();
    this.lifelines.delete(id);
    this.forget(id);
    if (o.cgroup) await removeCgroupTree(o.cgroup);
    if (o.conmonCgroup && this.conmonPlacer.ownsCgroup(o.conmonCgroup)) {
      await removeCgroupTree(resolveCgroupPaths(await this.cgroupLayout(), o.conmonCgroup));
    }
    await removePath(this.files.exitFile(id));
    await removePath(join(this.files.socketDir(), id));
    if (o.bundle) for (const f of ['ctl', 'winsz', 'attach']) await removePath(join(o.bundle, f));
    if (o.logPath) await removePath(o.logPath);
    await removePath(this.files.dir(id));
    this.forget(id); // again: a reader during the removal may have read them before they went
  }

  // ---- exec, logs, resources -------------------------------------------------------------------

  async execSync(
    id: string,
    cmd: string[],
    o: { timeoutSeconds: number; maxOutputBytes?: number },
  ): Promise<ExecSyncResult> {
    validateId(id);
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== 'string')) {
      throw invalidArgument('cmd must be a non-empty array of strings');
    }
    if (typeof o?.timeoutSeconds !== 'number' || !Number.isFinite(o.timeoutSeconds) || o.timeoutSeconds < 0) {
      throw invalidArgument(`timeoutSeconds must be a non-negative number, got ${o?.timeoutSeconds}`);
    }
    const maxOutputBytes = o.maxOutputBytes ?? DEFAULT_MAX_EXEC_OUTPUT;
    if (!Number.isInteger(maxOutputBytes) || maxOutputBytes <= 0) {
      throw invalidArgument(`maxOutputBytes must be a positive integer, got ${o.maxOutputBytes}`);
    }
    const st = await this.state(id);
    if (!st) throw notFound(`container ${id} not found`);
    if (st.status !== 'running') throw failedPrecondition(`container ${id} is ${st.status}, not running; cannot exec`);
    const made = this.journalOf(id);
    if (!made) throw notFound(`container ${id} not found`);
    const name = `exec-${randomBytes(6).toString('hex')}`;
    const processFile = join(this.files.dir(id), `${name}.json`);
    await writeExecProcess(made.bundle, cmd, false, processFile);
    return execSyncWithRunc({
      runc: await this.runcOf(id),
      id,
      cmd,
      timeoutSeconds: o.timeoutSeconds,
      maxOutputBytes,
      processFile,
      pidFile: join(this.files.dir(id), `${name}.pid`),
      logger: this.logger.child({ id }),
    });
  }

  /** Asks conmon to reopen the log (after kubelet rotated it); returns once the file exists. */
  async reopenLog(id: string): Promise<void> {
    const made = this.journalOf(id);
    if (!made || !this.createdOf(id)) throw notFound(`container ${id} not found`);
    if (!made.logPath) throw failedPrecondition(`container ${id}: its journal names no log file`);
    const logPath = made.logPath;
    const st = await this.state(id);
    if (st?.status !== 'running') throw failedPrecondition(`container ${id} is ${st?.status ?? 'gone'}, not running; cannot reopen its log`);
    const ctl = join(made.bundle, 'ctl');
    const appeared = waitForFile(logPath, AbortSignal.timeout(REOPEN_WAIT_MS));
    appeared.catch(() => undefined);
    let fifo;
    try {
      // non-blocking: with no reader (conmon gone) this fails with ENXIO instead of hanging
      fifo = await open(ctl, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      if (errCode(err) === 'ENXIO' || errCode(err) === 'ENOENT') {
        throw failedPrecondition(`container ${id}: conmon is not running, cannot reopen its log`);
      }
      throw err;
    }
    try {
      await fifo.write(REOPEN_LOGS_MESSAGE);
    } finally {
      await fifo.close();
    }
    try {
      await appeared;
    } catch (err) {
      if (err instanceof WaitAborted) throw deadlineExceeded(`container ${id}: conmon did not reopen ${logPath} within ${REOPEN_WAIT_MS} ms`);
      throw err;
    }
  }

  /** `runc update`: applies OCI linux.resources to the running container's cgroup. */
  async updateResources(id: string, r: LinuxResources): Promise<void> {
    validateId(id);
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw invalidArgument('resources must be an object (OCI linux.resources)');
    await (await this.runcOf(id)).check(['update', '--resources', '-', id], `update resources of container ${id}`, { input: JSON.stringify(r) });
  }
}

// ---- helpers -------------------------------------------------------------------------------------

interface BundleSpec {
  process?: { terminal?: boolean; oomScoreAdj?: number };
  linux?: { cgroupsPath?: string };
}

async function readBundleSpec(bundle: string): Promise<BundleSpec> {
  let text: string;
  try {
    text = readFileSync(join(bundle, 'config.json'), 'utf8');
  } catch (err) {
    throw invalidArgument(`bundle ${bundle}: cannot read config.json (${errCode(err) ?? String(err)})`);
  }
  try {
    const spec = JSON.parse(text) as BundleSpec;
    if (typeof spec !== 'object' || spec === null) throw new Error('not an object');
    return spec;
  } catch (err) {
    throw invalidArgument(`bundle ${bundle}: config.json is not valid JSON (${(err as Error).message})`);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (statSync(path)).isDirectory();
  } catch {
    return false;
  }
}

