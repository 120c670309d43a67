/**
 * Partitions of the archive: PARTITION_COUNT ranges of `mam_id`, cut once from the lowest and
 * highest ids the index held when the first run started, then kept in our checkpoint index so
 * that every later run (and every `--shard K/N` process) walks the same ranges and its
 * checkpoints stay valid, however the archive grows meanwhile. The first range is open below and
 * the last open above, so no document with a `mam_id` falls outside; one more partition holds the
 * documents without any (`mam_id` missing or null, which MongooseIM never writes but a reindex
 * or a hand-made document can), so that no document is outside every partition.
 *
 * A plan has an id, and every checkpoint names the plan it was saved under: a checkpoint of
 * another plan (the plan document deleted or cut again meanwhile) is a place in ranges that no
 * longer exist, and is never applied.
 */
import { randomUUID } from 'node:crypto';
import type { Partition, ShardSpec } from '../../pipeline/types.js';
import type { IndexLayout } from './index-layout.js';
import { indexPath } from './index-layout.js';
import type { SearchHttp } from './search-http.js';

/** Fixed: shards and checkpoints name these ranges (`p00` ... `p15`). */
export const PARTITION_COUNT = 16;
/** The partition of documents without `mam_id`; walked by the shard that walks `p00`. */
export const NO_MAM_ID_PARTITION = 'no-mam-id';
/** Plans stored before plans had ids (their checkpoints have no plan either). */
export const UNNAMED_PLAN = 'unnamed';

export interface PartitionPlan {
  /** Checkpoints saved under this plan carry it. */
  readonly id: string;
  /** PARTITION_COUNT - 1 cut points, decimal `mam_id` strings, ascending. */
  readonly cuts: readonly string[];
}

export interface MamIdRange extends Partition {
  readonly index: number;
  /** Inclusive lower bound, or undefined for the first range. */
  readonly from?: string;
  /** Exclusive upper bound, or undefined for the last range. */
  readonly to?: string;
  /** The partition of documents without `mam_id` (then `from`/`to` are undefined). */
  readonly noMamId?: true;
}

export function partitionName(index: number): string {
  return `p${String(index).padStart(2, '0')}`;
}

interface Stats {
  aggregations?: { lowest?: { value: number | null }; highest?: { value: number | null } };
}

/** Cuts the ids the index holds now into PARTITION_COUNT equal ranges, under a new plan id. */
export async function measurePlan(http: SearchHttp, layout: IndexLayout): Promise<PartitionPlan> {
  // From every shard: a plan cut from part of the ids would leave documents outside every range.
  const stats = await http.complete<Stats>(`${indexPath(layout)}/_search`, {
    size: 0,
    aggs: { lowest: { min: { field: 'mam_id' } }, highest: { max: { field: 'mam_id' } } },
  });
  // Aggregations answer in doubles: exactness does not matter for cut points, only stability.
  // A double rounds 2^63 - 1 up to 2^63, which a `long` range query refuses: cuts stay in range.
  const lowest = clampToLong(BigInt(Math.floor(stats.aggregations?.lowest?.value ?? 0)));
  const highest = clampToLong(BigInt(Math.ceil(stats.aggregations?.highest?.value ?? 0)) + 1n);
  const span = highest - lowest;
  const cuts: string[] = [];
  for (let i = 1; i < PARTITION_COUNT; i++) cuts.push(String(lowest + (span * BigInt(i)) / BigInt(PARTITION_COUNT)));
  return { id: randomUUID(), cuts };
}

const MIN_LONG = -(1n << 63n);
const MAX_LONG = (1n << 63n) - 1n;

function clampToLong(value: bigint): bigint {
  return value < MIN_LONG ? MIN_LONG : value > MAX_LONG ? MAX_LONG : value;
}

export function validPlan(value: unknown): PartitionPlan | null {
  const stored = value as { cuts?: unknown; id?: unknown } | null;
  const cuts = stored?.cuts;
  if (!Array.isArray(cuts) || cuts.length !== PARTITION_COUNT - 1 || !cuts.every((c) => typeof c === 'string' && /^-?\d+$/.test(c))) return null;
  for (let i = 1; i < cuts.length; i++) if (BigInt(cuts[i - 1]) > BigInt(cuts[i])) return null;
  if (stored?.id !== undefined && (typeof stored.id !== 'string' || stored.id === '')) return null;
  return { id: typeof stored?.id === 'string' ? stored.id : UNNAMED_PLAN, cuts };
}

export function rangesOf(plan: PartitionPlan, shard: ShardSpec): MamIdRange[] {
  if (shard.count > PARTITION_COUNT)
    throw new Error(`--shard ${shard.index}/${shard.count}: Elasticsearch archives have ${PARTITION_COUNT} partitions, so at most ${PARTITION_COUNT} shards`);
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
  if (shard.index === 0) ranges.push({ name: NO_MAM_ID_PARTITION, index: PARTITION_COUNT, noMamId: true });
  return ranges;
}

/** The query clause that keeps a range's documents (string bounds: ids exceed 2^53). */
export function rangeFilter(range: MamIdRange): object {
  if (range.noMamId === true) return { bool: { must_not: [{ exists: { field: 'mam_id' } }] } };
  // A plan stored by an older version may hold a cut of 2^63, which a `long` query refuses: a
  // bound above every long means no bound (`lt`) or no document (`gte`).
  if (range.from !== undefined && BigInt(range.from) > MAX_LONG) return { bool: { must_not: [{ match_all: {} }] } };
  const to = range.to === undefined || BigInt(range.to) > MAX_LONG ? undefined : range.to;
  return { range: { mam_id: { ...(range.from === undefined ? {} : { gte: range.from }), ...(to === undefined ? {} : { lt: to }) } } };
}

/** Why `mamId` cannot be a place in `range`, or null when it can. */
export function outsideRange(range: MamIdRange, mamId: string): string | null {
  if (range.noMamId === true) return mamId === '' ? null : `mam_id ${JSON.stringify(mamId)} in the partition of documents without mam_id`;
  if (!/^-?\d{1,20}$/.test(mamId)) return `mam_id ${JSON.stringify(mamId)} is not a decimal id`;
  const id = BigInt(mamId);
  if ((range.from !== undefined && id < BigInt(range.from)) || (range.to !== undefined && id >= BigInt(range.to))) {
    return `mam_id ${mamId} is outside the partition's range [${range.from ?? '-inf'}, ${range.to ?? '+inf'})`;
  }
  return null;
}
