// Overlay mounts of layer stacks. The kernel takes mount options as one page (4096 bytes), and
// 64-hex-digit layer paths would exhaust it at a few dozen layers. So, as containers/storage
// does, each lower dir is reached through a short symlink in a link directory, and mount runs
// with that directory as its working directory, so lowerdir= holds only the short names.
// A name is derived from the lower dir's path, so any caller computes the same one and the
// link can be made and removed idempotently without shared bookkeeping.

import { createHash } from 'node:crypto';
import { mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { failedPrecondition, internal, invalidArgument, messageOf } from '../../errors.js';
import { isMissing, statIfPresent } from '../../host/files.js';
import { mount } from '../../host/syscalls.js';
import { ownMountAt } from '../../host/mountinfo.js';

export type OverlayMountOptions = {
  /** Lowest layer first, as image configs list them. */
  lowerDirs: string[];
  /** With `workDir`, the writable layer; without both, the mount is read-only by nature. */
  upperDir?: string;
  workDir?: string;
  target: string;
  readOnly?: boolean;
  /** Directory for the short links (LayerStore.linkDir). */
  linkDir: string;
};

const MOUNT_DATA_LIMIT = 4095; // one page, less the terminating NUL
/** Cannot clash with a short link name: those are 10 characters long. */
const EMPTY_LOWER = 'empty';

function shortLinkName(dir: string): string {
  return createHash('sha256').update(dir).digest('base64url').slice(0, 10);
}

/** Creates (or finds) the short link to `dir` and returns its name. */
async function ensureShortLink(linkDir: string, dir: string): Promise<string> {
  const name = shortLinkName(dir);
  const link = join(linkDir, name);
  // Every container after the first on a layer finds its link made: that is asked, not learnt
  // from an EEXIST. A link made meanwhile, or found, must point to `dir`.
  if (!statIfPresent(link, { link: true })) {
    try {
      symlinkSync(dir, link);
      return name;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        mkdirSync(linkDir, { recursive: true });
        return ensureShortLink(linkDir, dir);
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const existing = readlinkSync(link);
  if (existing !== dir) throw failedPrecondition(`short link ${link} points to ${existing}, not ${dir}`);
  return name;
}

export async function removeShortLink(linkDir: string, dir: string): Promise<void> {
  try {
    await unlink(join(linkDir, shortLinkName(dir)));
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

/**
 * Mounts the overlay at `target`. A target that already holds an overlay mount is taken as
 * this mount done before (a re-driven step after a crash) and left as it is.
 */
export async function mountOverlay(o: OverlayMountOptions): Promise<void> {
  if (o.lowerDirs.length === 0) throw invalidArgument('lowerDirs: an overlay needs at least one lower dir');
  o.lowerDirs.forEach((dir, i) => requireAbsolute(dir, `lowerDirs[${i}]`));
  requireAbsolute(o.target, 'target');
  requireAbsolute(o.linkDir, 'linkDir');
  if ((o.upperDir === undefined) !== (o.workDir === undefined)) {
    throw invalidArgument('upperDir and workDir: give both or neither');
  }
  for (const [field, dir] of [['upperDir', o.upperDir], ['workDir', o.workDir]] as const) {
    if (dir === undefined) continue;
    requireAbsolute(dir, field);
    if (/[,:]/.test(dir)) throw invalidArgument(`${field} ${dir} contains ',' or ':', which overlay options cannot carry`);
  }
  if (ownMountAt(o.target) === 'overlay') return;

  const names = [];
  // Without an upper dir the kernel wants two lowers at least; an empty one adds nothing.
  if (o.upperDir === undefined && o.lowerDirs.length === 1) {
    mkdirSync(join(o.linkDir, EMPTY_LOWER), { recursive: true });
    names.push(EMPTY_LOWER);
  }
  for (const dir of o.lowerDirs) names.push(await ensureShortLink(o.linkDir, dir));
  const options = [`lowerdir=${names.reverse().join(':')}`];
  if (o.upperDir !== undefined) options.push(`upperdir=${o.upperDir}`, `workdir=${o.workDir}`);
  if (o.readOnly) options.push('ro');
  const data = options.join(',');
  if (data.length > MOUNT_DATA_LIMIT) {
    throw invalidArgument(`lowerDirs: ${o.lowerDirs.length} layers need ${data.length} bytes of mount options, over the ${MOUNT_DATA_LIMIT} the kernel takes`);
  }
  try {
    await mount({ type: 'overlay', source: 'overlay', target: o.target, options, cwd: o.linkDir });
  } catch (err) {
    throw internal(messageOf(err), err);
  }
}

function requireAbsolute(path: string, field: string): void {
  if (!isAbsolute(path)) throw invalidArgument(`${field} ${JSON.stringify(path)} is not an absolute path`);
}
