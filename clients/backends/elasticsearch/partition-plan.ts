/**
 * Partitions of the archive: PARTITION_COUNT ranges of `mam_id`, cut once from the lowest and
 * highest ids the index held when the first run started, then kept in our checkpoint index so
 * that every later run (and every `--shard K/N` process) walks the same ranges and its
 * checkpoints stay valid, however the archive grows meanwhile. The first range is open below and
 * the last open above, so no document ever falls outside.
 */
import type { Partition, ShardSpec } from '../../pipeline/types.js';
import type { IndexLayout } from './index-layout.js';
import { indexPath } from './index-layout.js';
import type { SearchHttp } from './search-http.js';

/** Fixed: shards and checkpoints name these ranges (`p00` ... `p15`). */
export const PARTITION_COUNT = 16;

export interface PartitionPlan {
  /** PARTITION_COUNT - 1 cut points, decimal `mam_id` strings, ascending. */
  readonly cuts: readonly string[];
}

export interface MamIdRange extends Partition {
  readonly index: number;
  /** Inclusive lower bound, or undefined for the first range. */
  readonly from?: string;
  /** Exclusive upper bound, or undefined for the last range. */
  readonly to?: string;
}

export function partitionName(index: number): string {
  return `p${String(index).padStart(2, '0')}`;
}

interface Stats {
  aggregations?: { lowest?: { value: number | null }; highest?: { value: number | null } };
}

/** Cuts the ids the index holds now into PARTITION_COUNT equal ranges. */
export async function measurePlan(http: SearchHttp, layout: IndexLayout): Promise<PartitionPlan> {
  // From every shard: a plan cut from part of the ids would leave documents outside every range.
  const stats = await http.complete<Stats>(`${indexPath(layout)}/_search`, {
    size: 0,
    aggs: { lowest: { min: { field: 'mam_id' } }, highest: { max: { field: 'mam_id' } } },
  });
  // Aggregations answer in doubles: exactness does not matter for cut points, only stability.
  const lowest = BigInt(Math.floor(stats.aggregations?.lowest?.value ?? 0));
  const highest = BigInt(Math.ceil(stats.aggregations?.highest?.value ?? 0)) + 1n;
  const span = highest - lowest;
  const cuts: string[] = [];
  for (let i = 1; i < PARTITION_COUNT; i++) cuts.push(String(lowest + (span * BigInt(i)) / BigInt(PARTITION_COUNT)));
  return { cuts };
}

export function validPlan(value: unknown): PartitionPlan | null {
  const cuts = (value as { cuts?: unknown } | null)?.cuts;
  if (!Array.isArray(cuts) || cuts.length !== PARTITION_COUNT - 1 || !cuts.every((c) => typeof c === 'string' && /^-?\d+$/.test(c))) return null;
  return { cuts };
}

export function rangesOf(plan: PartitionPlan, shard: ShardSpec): MamIdRange[] {
  if (shard.count > PARTITION_COUNT) throw new Error(`--shard ${shard.index}/${shard.count}: Elasticsearch archives have ${PARTITION_COUNT} partitions, so at most ${PARTITION_COUNT} shards`);
  const ranges: MamIdRange[] = [];
  for (let i = 0; i < PARTITION_COUNT; i++) {
    if (i % shard.count !== shard.index) continue;
    ranges.push({
      name: partitionName(i),
      index: i,
      ...(i === 0 ? {} : { from: plan.cuts[i - 1] }),
      ...(i === PARTITION_COUNT - 1 ? {} : { to: plan.cuts[i] }),
    });
  }
  return ranges;
}

/** The query clause that keeps a range's documents (string bounds: ids exceed 2^53). */
export function rangeFilter(range: MamIdRange): object {
  return { range: { mam_id: { ...(range.from === undefined ? {} : { gte: range.from }), ...(range.to === undefined ? {} : { lt: range.to }) } } };
}
