/**
 * Keys from the whole range each SQL store's columns allow, not only the shape MongooseIM writes:
 * the property tests of the sender and field walks draw from here.
 */
import fc from 'fast-check';
import { WHOLE_TABLE, type ShardSpec } from '../../clients/pipeline/types.js';

export interface KeyRange {
  readonly min: bigint;
  readonly max: bigint;
}

/**
 * MongooseIM's key columns (`room_id`/`user_id`, then `id`): PostgreSQL's `int` and `bigint`, signed
 * (negative keys and 0 included); MySQL's `int unsigned` and `bigint unsigned` (up to 2^32-1 and
 * 2^64-1).
 */
export const KEY_RANGES: Record<'postgres' | 'mysql', { readonly room: KeyRange; readonly id: KeyRange }> = {
  postgres: { room: { min: -(2n ** 31n), max: 2n ** 31n - 1n }, id: { min: -(2n ** 63n), max: 2n ** 63n - 1n } },
  mysql: { room: { min: 0n, max: 2n ** 32n - 1n }, id: { min: 0n, max: 2n ** 64n - 1n } },
};

/** A magnitude in [1, max], every digit count equally likely: short and long keys meet in one archive. */
function magnitude(max: bigint): fc.Arbitrary<bigint> {
  return fc.integer({ min: 1, max: max.toString().length }).chain((digits) => {
    const high = 10n ** BigInt(digits) - 1n;
    return fc.bigInt({ min: 10n ** BigInt(digits - 1), max: high < max ? high : max });
  });
}

/** An integer of the range: both signs where it has them, its two ends and 0 among the draws. */
export function integerIn(range: KeyRange): fc.Arbitrary<bigint> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(range.min, range.max, 0n) },
    { weight: 6, arbitrary: magnitude(range.max) },
    ...(range.min < 0n ? [{ weight: 6, arbitrary: magnitude(-range.min).map((m) => -m) }] : []),
  );
}

/** The shards a walk in `count` shards runs (the whole table when 1). */
export function shardsOf(count: number): ShardSpec[] {
  return count === 1 ? [WHOLE_TABLE] : Array.from({ length: count }, (_, index) => ({ index, count }));
}

/** Whether a row of this owner (room or user) is in the shard: its id mod N, never negative. */
export function inShard(shard: ShardSpec, owner: string): boolean {
  const n = BigInt(shard.count);
  return Number(((BigInt(owner) % n) + n) % n) === shard.index;
}
