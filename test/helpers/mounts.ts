import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { mountsAt, readMounts } from '../../src/host/mountinfo.js';

const run = promisify(execFile);

/** Whether anything is mounted at `path`, by the mount table (what a test checks a release against). */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsAt(path)).length > 0;
}

/**
 * A tmpfs of its own at `dir`, as /run is on a node: the benches keep a runroot there (on this VM
 * /tmp is an ext4 without a journal, where every new inode first scans past the recently deleted
 * ones). unmountAllUnder takes it down with whatever was mounted inside it.
 */
export async function mountTmpfs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);
}

/** Detaches every mount at or below `dir`, the deepest first; what is already gone is skipped. */
export async function unmountAllUnder(dir: string): Promise<void> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const mounts = (await readMounts()).map((m) => m.mountPoint).filter((m) => m === dir || m.startsWith(prefix));
  for (const m of mounts.sort().reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}
