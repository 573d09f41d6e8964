// A command run in a container for a streaming exec: `runc exec` in the foreground, with its
// stdio as pipes or, for a TTY, on a host pseudo-terminal that node-pty opens (CRI-O starts
// runc on a host pty the same way). runc makes the container's terminal, puts the host one in
// raw mode and copies between the two; on SIGWINCH it copies the host terminal's size to the
// container's. So a resize sets the host pty's window size: the kernel then signals runc, the
// foreground process of that terminal.
import { rmSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import type { IPty } from 'node-pty';
import { internal } from '../errors.js';
import { start } from '../host/run.js';
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
}

/** The terminal's end-of-file character (VEOF): what a user's ^D sends. */
const END_OF_INPUT = Buffer.from([4]);

/** The runtime's exec: the command, terminal and TERM are in the process file. */
export function runcExecArgs(o: Pick<ExecOptions, 'runcRoot' | 'containerId' | 'pidFile' | 'processFile'>): string[] {
  return ['--root', o.runcRoot, 'exec', '--pid-file', o.pidFile, '--process', o.processFile, o.containerId];
}

/** A window dimension as a terminal takes it: a whole number in 0..65535. */
export function clampSize(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.trunc(Number.isFinite(n) ? n : 0)));
}

/** What startExec needs of the process it started, pipes or pty alike. */
interface Started {
  pid: number | undefined;
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** Resolves with the exit code (128+n for a signal) once the process and its output ended. */
  ended: Promise<number>;
  running(): boolean;
  resize?(size: TerminalSize): void;
}

// node-pty (a native module, ~4 MiB of RSS) is loaded by the first TTY exec, not at start-up.
let nodePty: Promise<typeof import('node-pty')> | undefined;

export async function startExec(o: ExecOptions): Promise<StreamedProcess> {
  const args = runcExecArgs(o);
  const env = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  // The command's host pid, kept once runc has written it: runc can die first (its stdio torn
  // down by a client that left), and then only this pid reaches the command.
  let commandPid: number | null = null;
  const waitForCommand = async () => {
    for (let attempt = 0; attempt < 250; attempt++) {
      commandPid = await readPidFile(o.pidFile);
      if (commandPid !== null || !started.running()) return;
      await new Promise((r) => setTimeout(r, 20).unref());
    }
  };
  let commandStarted: Promise<void> | undefined;
  const onceCommandStarted = () => (commandStarted ??= waitForCommand());
  const spawnOnPty = o.tty ? (await (nodePty ??= import('node-pty'))).spawn : undefined;
  const started: Started = spawnOnPty ? onPty(spawnOnPty, o, args, env, onceCommandStarted) : onPipes(o, args, env);
  void onceCommandStarted();
  const exited = started.ended.finally(() => {
    rmSync(o.pidFile, { force: true });
    rmSync(o.processFile, { force: true });
  });
  exited.catch(() => undefined);
  return {
    stdin: started.stdin,
    stdout: started.stdout,
    stderr: started.stderr,
    exited,
    async resize(size) {
      if (started.running()) started.resize?.(size);
    },
    async kill() {
      // The command itself first, by the host pid runc recorded: if runc has already gone (or
      // the command was reparented inside the container), the tree under runc misses it.
      // runc starts the command through an intermediate process that exits, so the command is
      // not under runc in the process tree: without its pid (written a moment after it starts),
      // killing runc would orphan it. Give runc a short while to write it.
      let command = commandPid ?? (await readPidFile(o.pidFile));
      for (let waited = 0; command === null && waited < 3000 && started.running(); waited += 20) {
        await new Promise((r) => setTimeout(r, 20).unref());
        command = commandPid ?? (await readPidFile(o.pidFile));
      }
      if (command !== null) await killProcessTree(command);
      if (started.pid === undefined || !started.running()) return;
      await killProcessTree(started.pid);
      await exited.catch(() => undefined);
    },
  };
}

function onPipes(o: ExecOptions, args: string[], env: Record<string, string>): Started {
  const { child, exited, running } = start(o.runcPath, args, { stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env });
  return {
    pid: child.pid,
    stdin: child.stdin ?? null,
    stdout: child.stdout ?? null,
    stderr: child.stderr ?? null,
    ended: exited.catch((err: Error) => Promise.reject(internal(`cannot start exec in container ${o.containerId}: ${err.message}`, err))),
    running,
  };
}

/**
 * runc on a pty of its own. Its output is the terminal's (stdout only); the client's input goes
 * to the terminal, and when that input ends (or the client sent none) the terminal gets ^D once
 * runc has started the command, by when runc has put the host side in raw mode and passes the
 * ^D on to the container's terminal, where the command reads it as the end of its input.
 */
function onPty(
  spawnOnPty: typeof import('node-pty').spawn,
  o: ExecOptions,
  args: string[],
  env: Record<string, string>,
  commandStarted: () => Promise<void>,
): Started {
  let term: IPty;
  try {
    term = spawnOnPty(o.runcPath, args, { name: 'xterm', cols: 80, rows: 24, env, encoding: null });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { pid: undefined, stdin: null, stdout: null, stderr: null, ended: Promise.reject(internal(`cannot start exec in container ${o.containerId}: ${message}`, err)), running: () => false };
  }
  let running = true;
  const stdout = new Readable({ read: () => term.resume() });
  term.onData((data) => {
    if (!stdout.push(data as unknown as Buffer)) term.pause();
  });
  const ended = new Promise<number>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      running = false;
      stdout.push(null);
      resolve(signal ? 128 + signal : exitCode);
    });
  });
  const endInput = () => void commandStarted().then(() => running && term.write(END_OF_INPUT));
  const stdin = o.stdin
    ? new Writable({
        write(chunk: Buffer, _encoding, done) {
          if (running) term.write(chunk);
          done();
        },
        final(done) {
          endInput();
          done();
        },
      })
    : null;
  if (!stdin) endInput();
  return {
    pid: term.pid,
    stdin,
    stdout,
    stderr: null,
    ended,
    running: () => running,
    resize: (size) => term.resize(Math.max(1, clampSize(size.width)), Math.max(1, clampSize(size.height))),
  };
}
