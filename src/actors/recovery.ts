// Start-up recovery of many entities at once, each within a time bound: one container whose
// runtime hangs (a stuck `runc state`, a stop waiting out a long grace period) must not keep
// the node's runtime from serving. What exceeds the bound goes on in the background; the server
// opens without waiting for it, and the item is named in the log.
import type { Logger } from '../log.js';
import { messageOf } from '../errors.js';
import { mapLimit } from '../async.js';

export interface RecoveryBound {
  /** How long start-up waits for any one item. */
  itemTimeoutMs: number;
  /** How many items are worked on at once (they spawn runc and read /proc). */
  concurrency?: number;
  logger: Logger;
  /** What the items are, for the log ("container", "sandbox"). */
  what: string;
}

const DEFAULT_CONCURRENCY = 16;

/**
 * Runs `work` for every id, at most `concurrency` at a time. Resolves when each has finished
 * or overrun its bound; returns the ids still running then. A failure is logged and counted as
 * finished: recovery of the others goes on.
 */
export async function recoverEach(ids: string[], bound: RecoveryBound, work: (id: string) => Promise<void>): Promise<string[]> {
  const overran: string[] = [];
  await mapLimit(ids, bound.concurrency ?? DEFAULT_CONCURRENCY, async (id) => {
    const done = work(id).catch((err: unknown) => {
      bound.logger.error({ [bound.what]: id, error: messageOf(err) }, `recovering a ${bound.what} failed; it is retried at the next start`);
    });
    if (!(await within(done, bound.itemTimeoutMs))) {
      overran.push(id);
      bound.logger.warn({ [bound.what]: id, boundMs: bound.itemTimeoutMs }, `a ${bound.what} is still recovering; start-up goes on without it`);
    }
  });
  return overran;
}

/** True if `p` settled within `ms`. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
