// The process an exec runs, written out for `runc exec --process` / `crun exec --process`: the
// container's own process (user and groups, environment, working directory, capabilities,
// no_new_privileges, AppArmor profile, rlimits) with the exec's command. Runtimes differ in what a
// bare `exec` inherits (crun runs it as root, whatever user the container runs as), so every exec
// names all of it, as CRI-O does.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition } from '../../errors.js';

interface ProcessSpec {
  args?: string[];
  env?: string[];
  terminal?: boolean;
  consoleSize?: unknown;
  [key: string]: unknown;
}

/** The exec's process, from the bundle's config.json; TERM is set for a terminal as kubectl expects. */
export async function execProcess(bundle: string, cmd: string[], tty: boolean): Promise<ProcessSpec> {
  let spec: { process?: ProcessSpec };
  try {
    spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process?: ProcessSpec };
  } catch (err) {
    throw failedPrecondition(`the container's spec ${join(bundle, 'config.json')} cannot be read: ${(err as Error).message}`);
  }
  const { consoleSize: _size, ...base } = spec.process ?? {};
  const env = (base.env ?? []).filter((e) => !(tty && e.startsWith('TERM=')));
  return { ...base, args: cmd, terminal: tty, env: tty ? [...env, 'TERM=xterm'] : env };
}

/** Writes the exec's process to `file` (readable by root only: it holds the container's environment). */
export async function writeExecProcess(bundle: string, cmd: string[], tty: boolean, file: string): Promise<void> {
  await writeFile(file, JSON.stringify(await execProcess(bundle, cmd, tty)), { mode: 0o600 });
}
