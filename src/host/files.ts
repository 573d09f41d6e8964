// Small filesystem primitives crisp leans on: atomic JSON files, tolerant reads and removal,
// durable renames, and waiting for a file to appear through inotify (fs.watch) rather than a
// polling loop.
//
// The files are a few hundred bytes on the runroot tmpfs, so they are read and written with
// the synchronous calls: measured on Node 20, fs/promises costs 300-500 µs of CPU per small
// file (a thread-pool round trip for each of open, stat, read and close) where the sync call
// costs 12-50 µs and returns sooner too. Most functions stay async for their callers; those a
// caller needs in one synchronous run (readJsonFile, statIfPresent, removeIfPresent) are not.
//
// Many of the files asked about are absent in the common case (an exit file before the exit, a
// temp file that was renamed). Node reports that by throwing, and the error, made with its
// stack, costs more than the system call: those paths are asked without one (existsSync,
// throwIfNoEntry) before they are read or removed.
import { existsSync, lstatSync, readFileSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, watch, writeFileSync, type Dirent, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as { code?: string }).code ?? undefined) : undefined;
}

/** A JSON file's value, or null when there is no file. */
export function readJsonFile<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Writes via a temp file and rename, so readers never see half a file after a crash. */
export async function writeJsonFileAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}

/**
 * What is at `path` (a symlink itself with `link`), or undefined when nothing is: no entry, or a
 * parent that is not a directory. Asked without the error Node makes for an absent path.
 */
export function statIfPresent(path: string, o: { link?: boolean } = {}): Stats | undefined {
  try {
    return o.link ? lstatSync(path, { throwIfNoEntry: false }) : statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (errCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

export async function exists(path: string): Promise<boolean> {
  return statIfPresent(path) !== undefined;
}

// Removing a tree. Node's rmSync and fs/promises' rm stat every entry (twice for a file) and
// learn that a directory is not empty from rmdir's error, made with its stack, before reading it;
// fs/promises does each of those as a thread-pool round trip. A pod's teardown removes five
// directories and a dozen files this way (perf, density 100 × 10: rmSync was 1 ms of the event
// loop's CPU per pod torn down). Here a directory is read once, with the entries' types, its
// files unlinked and its subdirectories emptied before its own rmdir: one system call per entry,
// and no error made unless something is wrong.

/**
 * Yields once per entry removed; the callers below decide how many entries go between two turns
 * of the event loop. A directory whose entry types the filesystem does not report is recognised
 * by unlink's EISDIR.
 */
function* removalOf(path: string, st: Stats | Dirent): Generator<void, void, undefined> {
  if (!st.isDirectory()) {
    if (unlinkEntry(path)) return;
  }
  for (const entry of entriesIfPresent(path)) {
    yield* removalOf(`${path}/${entry.name}`, entry);
    yield;
  }
  try {
    rmdirSync(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
}

/** Unlinks a non-directory; false when it is a directory after all. Gone already is fine. */
function unlinkEntry(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return true;
    if (errCode(err) === 'EISDIR') return false;
    throw err;
  }
}

/** A directory's entries, or none when it is absent (absent is an answer, not an error). */
function listingIfPresent<T>(dir: string, read: (dir: string) => T[]): T[] {
  try {
    return read(dir);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** A directory's entries with their types; none when it is absent. */
function entriesIfPresent(dir: string): Dirent[] {
  return listingIfPresent(dir, (d) => readdirSync(d, { withFileTypes: true }));
}

/** A directory's entry names; none when it is absent. */
export function namesIfPresent(dir: string): string[] {
  return listingIfPresent(dir, (d) => readdirSync(d));
}

/**
 * Entries a walk of a tree with synchronous calls (a removal, a disk-usage count) handles between
 * two turns of the event loop. Each costs a few microseconds, where fs/promises paid a thread-pool
 * round trip and a promise: a large tree never holds the loop for more than a millisecond or two.
 */
export const ENTRIES_PER_TURN = 256;

/** The removal of what is at `path` (a symlink itself, not what it points to); nothing when absent. */
function removalAt(path: string): Iterable<void> {
  const st = statIfPresent(path, { link: true });
  return st ? removalOf(path, st) : [];
}

/**
 * Removes a file, a symlink or a directory tree, if present, with a turn of the event loop every
 * ENTRIES_PER_TURN entries, so a container's large writable layer never holds the loop for long.
 */
export async function removePath(path: string): Promise<void> {
  let removed = 0;
  for (const _ of removalAt(path)) if (++removed % ENTRIES_PER_TURN === 0) await yieldToLoop();
}

/** removePath in one go, for a file or a small directory of the runroot. */
export function removeIfPresent(path: string): void {
  for (const _ of removalAt(path));
}

export class WaitAborted extends Error {}

/**
 * Resolves once `path` exists. The directory watch is armed before the first check, so a
 * file created in between is never missed. Rejects with WaitAborted when `signal` fires.
 */
export function waitForFile(path: string, signal?: AbortSignal): Promise<void> {
  const dir = dirname(path);
  const name = basename(path);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new WaitAborted('wait aborted'));
    let settled = false;
    const watcher = watch(dir, { persistent: true });
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      watcher.close();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      exists(path).then(
        (present) => present && finish(),
        (err: Error) => finish(err),
      );
    };
    const onAbort = () => finish(new WaitAborted('wait aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    watcher.on('change', (_event, filename) => {
      // some kernels/filesystems omit the name; then any event is worth a look
      if (filename === null || filename === undefined || filename.toString() === name) check();
    });
    watcher.on('error', (err) => finish(err));
    check();
  });
}

export function isMissing(err: unknown): boolean {
  return errCode(err) === 'ENOENT';
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** Makes a rename or create inside `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
