import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * The daemon's root logger: JSON lines on stderr, so stdout stays free for CLI output. Written
 * asynchronously: a synchronous write blocks the event loop whenever the reader (journald, a
 * pipe) is slow, and under a wave of pods that cost 5 ms of the daemon's CPU per pod. Lines
 * logged while a write is in flight go out together; pino flushes what is left at exit.
 */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything, for unit tests and library defaults. */
export const silentLogger: Logger = pino({ level: 'silent' });
