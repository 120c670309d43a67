/**
 * `--max-rate ROWS_PER_SECOND`: a token bucket in front of the page reader. The backfill usually
 * runs against a database MongooseIM keeps serving from, so operators cap its load.
 *
 * The bucket computes waits; sleeping is the caller's job, so the arithmetic is testable without
 * timing. A batch larger than the bucket may go into debt: it waits until the debt is paid back,
 * which keeps the long-run rate exact for any batch size.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export const MONOTONIC_CLOCK: Clock = { now: () => performance.now() };

export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param ratePerSecond tokens added per second (> 0)
   * @param burst most tokens kept while idle; defaults to one second's worth
   */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number = ratePerSecond,
    private readonly clock: Clock = MONOTONIC_CLOCK,
  ) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) {
      throw new RangeError(`rate must be a positive number of records per second, got ${ratePerSecond}`);
    }
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes `count` tokens now and returns how many milliseconds to wait before using them. */
  reserve(count: number): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    this.tokens -= count;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSecond) * 1000;
  }
}
