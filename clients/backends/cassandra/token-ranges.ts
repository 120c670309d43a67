/**
 * The partitions of a Cassandra walk: the whole Murmur3 token ring cut into a fixed number of
 * equal ranges, named by index. They do not follow the cluster's own token ownership on purpose:
 * a checkpoint must keep naming the same rows when nodes join, leave or move tokens, and `--shard
 * K/N` must split the work the same way on every machine. Each range is read through whichever
 * coordinator the driver picks; replicas are found by the cluster, not by us.
 */
import type { Partition, ShardSpec } from '../../pipeline/types.js';

/** Murmur3Partitioner tokens: signed 64-bit; MIN is never a key's token (Murmur3 maps it to MAX). */
export const MIN_TOKEN = -(2n ** 63n);
export const MAX_TOKEN = 2n ** 63n - 1n;

/** Enough ranges for 64 walkers at once, and small enough to list in a log line. */
export const RANGE_COUNT = 64;

export interface TokenRange extends Partition {
  readonly index: number;
  /** Exclusive. */
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
}

function rangeName(index: number): string {
  return `range-${String(index).padStart(2, '0')}-of-${RANGE_COUNT}`;
}

export function tokenRange(index: number): TokenRange {
  const width = 2n ** 64n / BigInt(RANGE_COUNT);
  const start = MIN_TOKEN + BigInt(index) * width;
  const end = index === RANGE_COUNT - 1 ? MAX_TOKEN : start + width;
  return { name: rangeName(index), index, start, end };
}

/** Ranges `i` with `i % N == K`: disjoint across the N shards, together the whole ring. */
export function rangesOfShard(shard: ShardSpec): TokenRange[] {
  if (shard.count > RANGE_COUNT) {
    throw new RangeError(`--shard: Cassandra's ring is cut into ${RANGE_COUNT} ranges, so at most ${RANGE_COUNT} shards (got ${shard.count})`);
  }
  const ranges: TokenRange[] = [];
  for (let i = shard.index; i < RANGE_COUNT; i += shard.count) ranges.push(tokenRange(i));
  return ranges;
}
