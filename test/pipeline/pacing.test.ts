/** Pure parts of the pipeline, the same for every backend: the rate limiter's computed waits, the backoff, the progress line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../clients/common/backoff.js';
import { describeProgress } from '../../clients/pipeline/progress.js';
import { TokenBucket } from '../../clients/pipeline/rate-limiter.js';

function fakeClock(): { now(): number; advance(ms: number): void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('token bucket: the burst is free, then records cost 1/rate seconds each', () => {
  const clock = fakeClock();
  const bucket = new TokenBucket(100, 50, clock);
  assert.equal(bucket.reserve(50), 0);
  assert.equal(bucket.reserve(10), 100); // 10 records in debt at 100/s
  clock.advance(100);
  assert.equal(bucket.reserve(10), 100);
  clock.advance(10_000); // idle: refills only up to the burst
  assert.equal(bucket.reserve(50), 0);
  assert.equal(bucket.reserve(1), 10);
});

test('token bucket: a long run averages the configured rate, whatever the batch size', () => {
  const clock = fakeClock();
  const bucket = new TokenBucket(2500, 1000, clock);
  let records = 0;
  for (let i = 0; i < 200; i++) {
    const wait = bucket.reserve(777);
    clock.advance(wait);
    records += 777;
  }
  const seconds = (clock.now() - 1000) / 1000;
  assert.ok(Math.abs(records / seconds - 2500) / 2500 < 0.01, `rate ${records / seconds}`);
});

test('token bucket refuses a rate that is not positive', () => {
  assert.throws(() => new TokenBucket(0), RangeError);
  assert.throws(() => new TokenBucket(Number.NaN), RangeError);
});

test('backoff grows exponentially with jitter and is capped', () => {
  const policy = { baseMs: 100, maxMs: 1000 };
  assert.equal(
    backoffDelay(1, policy, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(1, policy, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(3, policy, () => 1),
    400,
  );
  assert.equal(
    backoffDelay(10, policy, () => 1),
    1000,
  );
});

test('progress line: rate and ETA from the estimate', () => {
  const line = describeProgress({ records: 50_000, written: 49_000, reported: 1000, estimate: 100_000, elapsedMs: 10_000 }, true);
  assert.match(line, /^\[#{15}\.{15}\] 50,000 \/ ~100,000 records \(50\.0%\)/);
  assert.match(line, /5,000 records\/s/);
  assert.match(line, /ETA 0:10/);
});

test('progress line: the records without their write are named as in the summary', () => {
  const at = { records: 10, written: 7, estimate: 0, elapsedMs: 1000 };
  // A migration reports each one; verify --complete cannot tell yet which of them are reported.
  assert.match(describeProgress({ ...at, reported: 3 }, false), /10 records \(total unknown\), 7 written, 3 reported, /);
  assert.match(describeProgress({ ...at, notWritten: 3 }, false), /7 written, 3 not written, /);
});
