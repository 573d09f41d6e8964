import { closeSync, chmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations, migrate } from './migrate.js';
import { MIGRATIONS_DIR } from '../paths.js';
import { damagedDatabase, isDamageError, verifyBeforeOpen } from './integrity.js';
import { messageOf } from '../errors.js';

export type Db = Database.Database;

/**
 * Opens state.db for the one writer: created 0600 (the log holds pod specs), WAL so readers
 * (the CLI, a second connection) never block the writer, synchronous=NORMAL because WAL keeps
 * committed transactions safe across a process crash and only a power loss can cost the last few.
 */
export function openWriter(path: string, migrationsDir = MIGRATIONS_DIR): Db {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Before the file is created or touched: a damaged log is kept aside, never written over.
  verifyBeforeOpen(path);
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
  let db: Db;
  try {
    db = new Database(path);
  } catch (err) {
    if (isDamageError(err)) throw damagedDatabase(path, [messageOf(err)]);
    throw err;
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    migrate(db, loadMigrations(migrationsDir), path);
  } catch (err) {
    db.close();
    if (isDamageError(err)) throw damagedDatabase(path, [messageOf(err)]);
    throw err;
  }
  return db;
}

/** A read-only connection for the CLI, safe beside a running daemon. */
export function openReader(path: string, migrationsDir = MIGRATIONS_DIR): Db {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const latest = loadMigrations(migrationsDir).at(-1)?.version ?? 0;
  const row = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get() as { name: string } | undefined;
  const version = row ? (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v : 0;
  if (version > latest) {
    db.close();
    throw new Error(`${path} has schema version ${version}, newer than this crisp understands (${latest})`);
  }
  return db;
}
