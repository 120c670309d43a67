/**
 * The one pause and the one backoff of every retry in the tool (the walk, the decoder client,
 * Riak's requests, Elasticsearch's bulk items and checkpoints). A leaf module: the decoder client
 * sits below the pipeline and uses it too.
 */

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Exponential with "equal jitter": the ceiling is base for `attempt` 1, doubling up to max, and the
 * wait is between half the ceiling and all of it: never near zero, so every retry gives the store
 * a pause, while retries of many processes still spread out.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects: the caller looks at the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
