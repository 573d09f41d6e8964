// Turning the monitor's view of an exit into the fact the log records.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { ExitFacts } from '../../machines/events.js';
import type { ExitInfo } from '../monitor/types.js';

// kubelet reads at most this much of a termination message; so do we.
const TERMINATION_MESSAGE_MAX = 4096;

// At most 4 KiB of a local file: read synchronously, as small files are everywhere in crisp.
function readHead(path: string, max: number): string {
  if (!existsSync(path)) return '';
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const buffer = Buffer.alloc(max);
    const bytesRead = readSync(fd, buffer, 0, max, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The exit as the log records it. `startedAt` (the container's start stamp, if it started) is a
 * floor for the finish time: the exit file's mtime comes from the kernel's coarse clock, which
 * may lag the start stamp of a process that exits at once.
 */
export async function exitFacts(exit: ExitInfo, terminationLog: string, startedAt?: string | null): Promise<ExitFacts> {
  const message = readHead(terminationLog, TERMINATION_MESSAGE_MAX) || exit.message;
  const finishedAt = startedAt != null && exit.finishedAt < BigInt(startedAt) ? startedAt : String(exit.finishedAt);
  return {
    exitCode: exit.exitCode,
    reason: exit.reason,
    ...(message ? { message } : {}),
    finishedAt,
  };
}
