// A damaged state.db must never be papered over. At start the file is checked before anything
// writes to it; a damaged one is renamed aside with its WAL (which holds committed transactions),
// never deleted, and crisp refuses to start empty beside it, because an empty log would make the
// leak sweep treat every running container as a leak. `salvageLog` (salvage.ts) is the way
// forward: it copies every event row that can still be read from the kept copy into a fresh state.db.
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { CrispError, failedPrecondition, messageOf } from '../errors.js';
import type { StreamKind } from '../machines/events.js';

/** What a kept-aside copy's name carries after the live file's name. */
const DAMAGED_MARK = '.damaged-';
/** The files SQLite keeps beside a database; each must travel with it. */
export const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;
export const STREAM_KINDS: readonly StreamKind[] = ['sandbox', 'container', 'image', 'pull', 'runtime'];
const PROBLEMS_SHOWN = 5;

/** SQLite's verdict that a file is not a sound database (any extended SQLITE_CORRUPT code, or not a db at all). */
export function isDamageError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'));
}

export interface IntegrityResult {
  /** Empty when the database is sound. */
  problems: string[];
  ms: number;
}

/**
 * Runs `PRAGMA quick_check` (or `integrity_check` when `thorough`) on a read-only connection:
 * a read-only connection never checkpoints its WAL into the file on close, so a damaged file is
 * left byte for byte as it was found. Errors that say nothing about the file's soundness
 * (permissions, a missing file) are rethrown.
 */
export function checkIntegrity(path: string, options: { thorough?: boolean; maxProblems?: number } = {}): IntegrityResult {
  const started = process.hrtime.bigint();
  const pragma = options.thorough ? 'integrity_check' : 'quick_check';
  const limit = options.maxProblems ?? PROBLEMS_SHOWN;
  let problems: string[];
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.prepare(`PRAGMA ${pragma}(${limit})`).pluck().all() as string[];
    // SQLite may pack several findings in one row, under a "*** in database main ***" heading.
    problems = rows.length === 1 && rows[0] === 'ok' ? [] : rows.flatMap((r) => r.split('\n')).filter((line) => line.trim() !== '' && !line.startsWith('***'));
  } catch (err) {
    if (!isDamageError(err)) throw err;
    problems = [`${(err as { code: string }).code}: ${messageOf(err)}`];
  } finally {
    db?.close();
  }
  return { problems, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

/** Kept-aside copies of `path` in its directory (main files only, not their companions), oldest first. */
export function keptAsideCopies(path: string): string[] {
  const dir = dirname(path);
  const prefix = basename(path) + DAMAGED_MARK;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((name) => name.startsWith(prefix) && !COMPANION_SUFFIXES.some((suffix) => name.endsWith(suffix)))
    .sort()
    .map((name) => join(dir, name));
}

/** 2026-11-22T10:15:00.123Z → 20261122T101500Z */
export function compactUtcStamp(when: Date): string {
  return when.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

/**
 * Renames `path` and whichever of its companions exist to `<path>.damaged-<UTC stamp>` (+ the
 * same suffixes). Nothing is ever overwritten: a name already taken gets a counter. The main
 * file moves first, so an interruption leaves no live-named file that lacks its WAL.
 */
export function keepAside(path: string, when = new Date()): { kept: string; moved: string[] } {
  const stamp = compactUtcStamp(when);
  let kept = `${path}${DAMAGED_MARK}${stamp}`;
  const taken = (candidate: string) => [candidate, ...COMPANION_SUFFIXES.map((s) => candidate + s)].some((f) => existsSync(f));
  for (let n = 2; taken(kept); n++) kept = `${path}${DAMAGED_MARK}${stamp}-${n}`;
  renameSync(path, kept);
  const moved = [kept];
  for (const suffix of COMPANION_SUFFIXES) {
    if (!existsSync(path + suffix)) continue;
    renameSync(path + suffix, kept + suffix);
    moved.push(kept + suffix);
  }
  return { kept, moved };
}

function salvageCommand(kept: string): string {
  return `crisp salvage --from ${kept} --root ${dirname(kept)}`;
}

/** Keeps a damaged database aside and returns the error that tells the operator what to do. */
export function damagedDatabase(path: string, problems: string[], when = new Date()): CrispError {
  const { kept, moved } = keepAside(path, when);
  const companions = moved.slice(1).map((f) => f.slice(kept.length));
  const shown = problems.slice(0, PROBLEMS_SHOWN).join('; ');
  return new CrispError(
    'FailedPrecondition',
    `${path} failed its integrity check (SQLite reported: ${shown}${problems.length > PROBLEMS_SHOWN ? '; …' : ''}). ` +
      `It was kept aside, nothing deleted, as ${kept}${companions.length ? ` (with its ${companions.join(', ')})` : ''}. ` +
      `To go on, salvage the event log into a fresh state.db with \`${salvageCommand(kept)}\`, then start crisp again.`,
  );
}

export function orphanCompanions(path: string): string[] {
  return COMPANION_SUFFIXES.map((s) => path + s).filter((f) => existsSync(f));
}

export function isAbsentOrEmpty(path: string): boolean {
  try {
    return statSync(path).size === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * Refuses to create a fresh, empty log where a damaged one was kept aside: starting empty must
 * be the operator's decision, never a side effect of a restart.
 */
function refuseFreshStartBesideKeptCopy(path: string): void {
  if (!isAbsentOrEmpty(path)) return;
  const kept = keptAsideCopies(path);
  if (kept.length === 0) return;
  const newest = kept.at(-1)!;
  const orphans = orphanCompanions(path);
  throw failedPrecondition(
    `${path} is ${existsSync(path) ? 'empty' : 'missing'} but a damaged copy was kept aside beside it (${kept.join(', ')}); ` +
      'crisp will not start with an empty event log over it, or every running container would look like a leak. ' +
      `Either salvage its events with \`${salvageCommand(newest)}\`, or, to really start empty, move the damaged copies ` +
      `(and their -wal/-shm files) out of ${dirname(path)}.` +
      (orphans.length ? ` ${orphans.join(', ')} ${orphans.length > 1 ? 'were' : 'was'} left without its database: it belongs with the kept copy.` : ''),
  );
}

/**
 * The writer's gate, before it creates or touches the file: refuses a fresh start beside a kept
 * copy, then checks an existing database and keeps it aside (throwing) when it is damaged.
 */
export function verifyBeforeOpen(path: string): IntegrityResult {
  refuseFreshStartBesideKeptCopy(path);
  if (isAbsentOrEmpty(path)) return { problems: [], ms: 0 };
  const result = checkIntegrity(path);
  if (result.problems.length > 0) throw damagedDatabase(path, result.problems);
  return result;
}
