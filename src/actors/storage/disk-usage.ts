import { lstatSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ENTRIES_PER_TURN, namesIfPresent } from '../../host/files.js';

export type Usage = { bytes: number; inodes: number };

/**
 * Space taken by a tree the way `du` counts it: allocated blocks, each inode once (hard links
 * are not counted twice). A missing root counts as empty, so callers need no existence check;
 * an entry removed while the walk runs counts as absent. Each entry is an lstat (and a readdir
 * for a directory) made synchronously, ENTRIES_PER_TURN of them between two turns of the event
 * loop: fs/promises' round trip and promise per entry had been most of a walk's CPU.
 */
export async function diskUsage(root: string): Promise<Usage> {
  // Only a file with more than one link can be met twice.
  const linked = new Set<string>();
  const total: Usage = { bytes: 0, inodes: 0 };
  const pending = [root];
  for (let seen = 1; pending.length > 0; seen++) {
    if (seen % ENTRIES_PER_TURN === 0) await yieldToLoop();
    const path = pending.pop()!;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) continue;
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (linked.has(key)) continue;
      linked.add(key);
    }
    total.bytes += st.blocks * 512;
    total.inodes += 1;
    if (st.isDirectory()) for (const name of namesIfPresent(path)) pending.push(`${path}/${name}`);
  }
  return total;
}
