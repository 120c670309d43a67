/**
 * One batch as one `_bulk` request of partial updates (`{"doc": {"from_jid": ...}}`). Every item's
 * answer is read: items the node refused for load (429, 503) are sent again after a pause, other
 * refusals are reported for that one document.
 */
import type { NotWrittenRecord, PlannedWrite, WriteOutcome } from '../../pipeline/types.js';
import { backoffDelay, sleep } from '../../common/backoff.js';
import { indexPath, type IndexLayout } from './index-layout.js';
import { SearchHttpError, StoreBlockedError, errorOf, isBlock, isTransientStatus, type SearchHttp } from './search-http.js';

/** How refused items are re-sent: pauses double from `firstPauseMs` up to `longestPauseMs` (with jitter). */
export interface BulkRetryPolicy {
  /** Rounds of re-sending refused items before the batch fails as transient (the pipeline retries it). */
  readonly rounds: number;
  readonly firstPauseMs: number;
  readonly longestPauseMs: number;
}

export const DEFAULT_BULK_RETRY: BulkRetryPolicy = Object.freeze({ rounds: 12, firstPauseMs: 50, longestPauseMs: 3_000 });

interface BulkItem {
  update?: { _id: string; status: number; result?: string; error?: { type?: string; reason?: string } };
}

interface BulkBody {
  errors: boolean;
  items: BulkItem[];
}

export interface BulkStats {
  /** Items re-sent after a 429/503 refusal, over the backend's life. */
  itemsRetried: number;
  /** Items refused for load, by HTTP status (`429`, `503`, ...), over the backend's life. */
  readonly refusedByStatus: Record<number, number>;
}

export async function writeBulk(
  http: SearchHttp,
  layout: IndexLayout,
  writes: readonly PlannedWrite<string, string>[],
  stats: BulkStats,
  policy: BulkRetryPolicy = DEFAULT_BULK_RETRY,
): Promise<WriteOutcome<string>> {
  let pending = writes;
  let written = 0;
  const refused: NotWrittenRecord<string>[] = [];
  for (let round = 0; pending.length > 0; round++) {
    if (round > 0) {
      if (round > policy.rounds) {
        throw new SearchHttpError(
          429,
          'es_rejected_execution_exception',
          `_bulk: ${pending.length} updates still refused for load after ${policy.rounds} rounds`,
        );
      }
      stats.itemsRetried += pending.length;
      await sleep(backoffDelay(round, { baseMs: policy.firstPauseMs, maxMs: policy.longestPauseMs }));
    }
    const lines: unknown[] = [];
    for (const w of pending) {
      // A concurrent change between the update's read and write is retried by the node itself.
      lines.push({ update: { _id: w.key, ...(layout.type === undefined ? {} : { _type: layout.type }), retry_on_conflict: 3 } });
      lines.push({ doc: { from_jid: w.write } });
    }
    const path = `${indexPath(layout)}/_bulk`;
    const response = await http.request<BulkBody>('POST', path, undefined, lines);
    if (response.status >= 300) throw errorOf('POST', path, response);
    const items = response.body.items;
    if (items.length !== pending.length) throw new Error(`_bulk answered ${items.length} items for ${pending.length} updates`);
    const again: PlannedWrite<string, string>[] = [];
    let blocked: string | undefined;
    items.forEach((item, i) => {
      const result = item.update;
      if (result === undefined) throw new Error(`_bulk item ${i} is not an update answer: ${JSON.stringify(item).slice(0, 200)}`);
      if (result.status < 300) {
        // `noop`: it already held this value (a batch written again after a restart).
        written++;
      } else if (isBlock(result.error?.type, result.error?.reason)) {
        // A block is the whole index's, not this document's, and not load: stop before the checkpoint moves.
        blocked ??= `${result.error?.type}: ${result.error?.reason ?? ''}`;
      } else if (result.status === 409 && result.error?.type === 'version_conflict_engine_exception') {
        // Still conflicting after the node's own retries: another writer keeps changing it (a
        // second migration writing the same value): written meanwhile, like SQL's skipped rows.
      } else if (isTransientStatus(result.status)) {
        stats.refusedByStatus[result.status] = (stats.refusedByStatus[result.status] ?? 0) + 1;
        again.push(pending[i]);
      } else {
        const why =
          result.error?.type === 'document_missing_exception'
            ? 'document deleted meanwhile'
            : `${result.error?.type ?? 'error'}: ${result.error?.reason ?? ''}`;
        refused.push({ key: pending[i].key, reason: 'write_refused', detail: `_bulk update HTTP ${result.status}: ${why}` });
      }
    });
    if (blocked !== undefined) {
      throw new StoreBlockedError(
        `index '${layout.index}' refuses writes: ${blocked.slice(0, 400)}. Nothing after the last checkpoint counts as done; lift the block (PUT /${layout.index}/_settings {"index.blocks.write": null, "index.blocks.read_only_allow_delete": null}, after freeing disk space for a flood-stage block) and run the same command again`,
      );
    }
    pending = again;
  }
  return { written, refused };
}
