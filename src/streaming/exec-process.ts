// A command run in a container for a streaming exec: `runc exec` in the foreground with its
// stdio as pipes, or, for a TTY, `runc exec --tty` on a host pseudo-terminal that util-linux
// `script` opens (CRI-O starts runc on a host pty the same way). Node cannot open a pty
// itself. runc makes the container's terminal, puts the host one in raw mode and copies
// between the two; on SIGWINCH it copies the host terminal's size to the container's. So a
// resize is `stty -F <host pty> rows R cols C`: the kernel then signals runc, the foreground
// process of that terminal.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink, rm } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { internal } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { killProcessTree, readPidFile } from '../actors/monitor/process-tree.js';

export interface TerminalSize {
  width: number;
  height: number;
}

/** A process whose stdio a streaming session carries. */
export interface StreamedProcess {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  resize(size: TerminalSize): Promise<void>;
  /** Ends the process and what it started; resolves once they are gone. */
  kill(): Promise<void>;
  /** Its exit code, 128+n for a signal. */
  exited: Promise<number>;
}

export interface ExecOptions {
  runcPath: string;
  runcRoot: string;
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  /** Where runc writes the command's host pid (removed when it ends). */
  pidFile: string;
  /** The process to run, the container's own with this command (removed when it ends). */
  processFile: string;
  logger?: Logger;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

/** Single-quotes a word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The runtime's exec: the command, terminal and TERM are in the process file. */
export function runcExecArgs(o: Pick<ExecOptions, 'runcRoot' | 'containerId' | 'pidFile' | 'processFile'>): string[] {
  return ['--root', o.runcRoot, 'exec', '--pid-file', o.pidFile, '--process', o.processFile, o.containerId];
}

export function startExec(o: ExecOptions): StreamedProcess {
  const logger = o.logger ?? silentLogger;
  const runcArgs = runcExecArgs(o);
  const env = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', SHELL: '/bin/sh' };
  let child: ChildProcess;
  if (o.tty) {
    // script's stdin is the client's; with none, script sees EOF at once and passes ^D on
    const command = ['exec', ...[o.runcPath, ...runcArgs].map(shellQuote)].join(' ');
    child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], {
      stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'ignore'],
      env,
    });
  } else {
    child = spawn(o.runcPath, runcArgs, { stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env });
  }
  child.stdin?.on('error', () => undefined); // the command closed its stdin; later input is moot
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(internal(`cannot start exec in container ${o.containerId}: ${err.message}`, err)));
    child.once('close', (code, signal) => {
      void rm(o.pidFile, { force: true });
      void rm(o.processFile, { force: true });
      resolve(code ?? 128 + (signal ? (SIGNALS[signal] ?? 9) : 0));
    });
  });
  exited.catch(() => undefined);
  // The command's host pid, kept once runc has written it: runc can die first (its stdio torn
  // down by a client that left), and then only this pid reaches the command.
  let commandPid: number | null = null;
  void (async () => {
    for (let attempt = 0; attempt < 250 && commandPid === null && child.exitCode === null && child.signalCode === null; attempt++) {
      commandPid = await readPidFile(o.pidFile);
      if (commandPid === null) await new Promise((r) => setTimeout(r, 20).unref());
    }
  })();
  let ptyPath: string | undefined;
  return {
    stdin: child.stdin ?? null,
    stdout: child.stdout ?? null,
    stderr: child.stderr ?? null,
    exited,
    async resize(size) {
      if (!o.tty || child.pid === undefined || child.exitCode !== null) return;
      ptyPath ??= await findPty(child.pid);
      if (!ptyPath) return;
      const rows = clampSize(size.height);
      const cols = clampSize(size.width);
      const ok = await runQuiet('stty', ['-F', ptyPath, 'rows', String(rows), 'cols', String(cols)]);
      if (!ok) logger.debug({ ptyPath }, 'exec: resizing the pty failed');
    },
    async kill() {
      // The command itself first, by the host pid runc recorded: if runc has already gone (or
      // the command was reparented inside the container), the tree under runc misses it.
      // runc starts the command through an intermediate process that exits, so the command is
      // not under runc in the process tree: without its pid (written a moment after it starts),
      // killing runc would orphan it. Give runc a short while to write it.
      let command = commandPid ?? (await readPidFile(o.pidFile));
      for (let waited = 0; command === null && waited < 3000 && child.exitCode === null && child.signalCode === null; waited += 20) {
        await new Promise((r) => setTimeout(r, 20).unref());
        command = commandPid ?? (await readPidFile(o.pidFile));
      }
      if (command !== null) await killProcessTree(command);
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      await killProcessTree(child.pid);
      await exited.catch(() => undefined);
    },
  };
}

function clampSize(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.trunc(Number.isFinite(n) ? n : 0)));
}

/** The pty slave that script's child (runc) runs on. */
async function findPty(scriptPid: number): Promise<string | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const children = (await readFile(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
      for (const pid of children) {
        const target = await readlink(`/proc/${pid}/fd/0`).catch(() => '');
        if (target.startsWith('/dev/pts/')) return target;
      }
    } catch {
      return undefined; // script has ended
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

function runQuiet(file: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(file, args, { stdio: 'ignore' });
    p.once('error', () => resolve(false));
    p.once('close', (code) => resolve(code === 0));
  });
}
