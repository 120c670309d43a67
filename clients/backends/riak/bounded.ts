/** Small concurrency and retry helpers for the Riak backend's many independent HTTP requests. */
import { backoffDelay, sleep, type BackoffPolicy } from '../../common/backoff.js';

/** `work` on every item, at most `limit` at a time; results in the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly backoff: BackoffPolicy;
}

/**
 * One request again after a transient failure (503, reset, timeout): a single object's hiccup
 * should not send the whole partition back to the pipeline. What still fails is thrown.
 */
export async function retrying<R>(policy: RetryPolicy, isTransient: (e: unknown) => boolean, request: () => Promise<R>): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error)) throw error;
      await sleep(backoffDelay(attempt, policy.backoff));
    }
  }
}
