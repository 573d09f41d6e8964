// Promise helpers every layer uses: a sleep that an abort ends, a pool that runs at most a few
// jobs at a time, and a gate that lets at most a few callers' jobs run at once.

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts (or at once if it has). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` over `items` with at most `limit` at a time, and returns the results in the items'
 * order. The first failure stops new starts; once the running ones have settled, it is thrown.
 * (A caller that wants every item run whatever happens catches inside `fn`.)
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

/**
 * A gate for jobs that come from many callers: at most `limit` run at a time, the others wait
 * their turn in the order they came. Each caller gets its own job's result or failure.
 */
export function concurrencyLimit(limit: number): <R>(job: () => Promise<R>) => Promise<R> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await job();
    } finally {
      // The slot passes straight to the next waiter, so a caller arriving meanwhile cannot take it.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
