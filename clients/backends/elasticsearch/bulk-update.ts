/**
 * One batch as one `_bulk` request of partial updates (`{"doc": {"from_jid": ...}}`, or
 * `is_groupchat` for the one-to-one archive's walk: the field is the layout's). Every item's
 * answer is read: items the node refused for load (429, 503) are sent again after a pause, other
 * refusals are reported for that one document.
 *
 * Each update applies only to the document as the walk read it (`if_seq_no`/`if_primary_term`),
 * that is, still without the field: like SQL's `... WHERE sender_id IS NULL`, a value someone else
 * wrote meanwhile is never overwritten. A document changed since the read answers 409, and what it
 * holds now decides: our value (another migration wrote it) is "written meanwhile by someone
 * else"; another value is left as it is and reported; still no value (another field changed)
 * is updated again under its new version; gone is reported as deleted meanwhile.
 */
import { PartlyWrittenError, type NotWrittenRecord, type PlannedWrite, type WriteOutcome } from '../../pipeline/types.js';
import { backoffDelay, sleep } from '../../common/backoff.js';
import { indexPath, targetOf, type IndexLayout } from './index-layout.js';
import type { FieldValue } from './walk-target.js';
import { SearchHttpError, StoreBlockedError, errorOf, isBlock, isTransientStatus, type SearchHttp } from './search-http.js';

/** How refused items are re-sent: pauses double from `firstPauseMs` up to `longestPauseMs` (with jitter). */
export interface BulkRetryPolicy {
  /** Rounds of re-sending refused items before the batch fails as transient (the pipeline retries it). */
  readonly rounds: number;
  readonly firstPauseMs: number;
  readonly longestPauseMs: number;
}

export const DEFAULT_BULK_RETRY: BulkRetryPolicy = Object.freeze({ rounds: 12, firstPauseMs: 50, longestPauseMs: 3_000 });

/** The version a document was read at (its sequence number and the primary term of that number). */
export interface ReadVersion {
  readonly seqNo: number;
  readonly primaryTerm: number;
}

/** What one document gets (its sender's bare JID, its is_groupchat), written only if it is still as read at `readAt`. */
export interface FieldWrite {
  readonly value: FieldValue;
  /** Absent when the read gave no version (the update is then unconditional: the old behaviour). */
  readonly readAt?: ReadVersion;
}

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
  /** Items answered 409: the document changed between the walk's read and the write. */
  conflicts: number;
}

export async function writeBulk(
  http: SearchHttp,
  layout: IndexLayout,
  writes: readonly PlannedWrite<string, FieldWrite>[],
  stats: BulkStats,
  policy: BulkRetryPolicy = DEFAULT_BULK_RETRY,
): Promise<WriteOutcome<string>> {
  const landed = { written: 0 };
  try {
    return await sendRounds(http, layout, writes, stats, policy, landed);
  } catch (error) {
    // Items answered 2xx before the batch gave up stay written: counted now, as the retry's read passes over them.
    if (landed.written > 0) throw new PartlyWrittenError(landed.written, error);
    throw error;
  }
}

async function sendRounds(
  http: SearchHttp,
  layout: IndexLayout,
  writes: readonly PlannedWrite<string, FieldWrite>[],
  stats: BulkStats,
  policy: BulkRetryPolicy,
  landed: { written: number },
): Promise<WriteOutcome<string>> {
  const target = targetOf(layout);
  const field = target.field;
  let pending = writes;
  const refused: NotWrittenRecord<string>[] = [];
  for (let round = 0; pending.length > 0; round++) {
    if (round > 0) {
      if (round > policy.rounds) {
        throw new SearchHttpError(
          429,
          'es_rejected_execution_exception',
          `_bulk: ${pending.length} updates still refused for load or changed meanwhile after ${policy.rounds} rounds`,
        );
      }
      stats.itemsRetried += pending.length;
      await sleep(backoffDelay(round, { baseMs: policy.firstPauseMs, maxMs: policy.longestPauseMs }));
    }
    const lines: unknown[] = [];
    for (const w of pending) {
      const type = layout.type === undefined ? {} : { _type: layout.type };
      const readAt = w.write.readAt;
      // The node refuses `retry_on_conflict` with a condition: a conflict comes back to us.
      const condition = readAt === undefined ? { retry_on_conflict: 3 } : { if_seq_no: readAt.seqNo, if_primary_term: readAt.primaryTerm };
      lines.push({ update: { _id: w.key, ...type, ...condition } });
      lines.push({ doc: { [field]: w.write.value } });
    }
    const path = `${indexPath(layout)}/_bulk`;
    const response = await http.request<BulkBody>('POST', path, undefined, lines);
    if (response.status >= 300) throw errorOf('POST', path, response);
    const items = response.body.items;
    if (items.length !== pending.length) throw new Error(`_bulk answered ${items.length} items for ${pending.length} updates`);
    const again: PlannedWrite<string, FieldWrite>[] = [];
    const changed: PlannedWrite<string, FieldWrite>[] = [];
    let blocked: string | undefined;
    items.forEach((item, i) => {
      const result = item.update;
      if (result === undefined) throw new Error(`_bulk item ${i} is not an update answer: ${JSON.stringify(item).slice(0, 200)}`);
      if (result.status < 300) {
        // `noop`: it already held this value (a batch written again after a restart).
        landed.written++;
      } else if (isBlock(result.error?.type, result.error?.reason)) {
        // A block is the whole index's, not this document's, and not load: stop before the checkpoint moves.
        blocked ??= `${result.error?.type}: ${result.error?.reason ?? ''}`;
      } else if (result.status === 409 && result.error?.type === 'version_conflict_engine_exception') {
        changed.push(pending[i]);
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
    if (changed.length > 0) {
      stats.conflicts += changed.length;
      const now = await readValues(
        http,
        layout,
        changed.map((w) => w.key),
      );
      for (const w of changed) {
        const doc = now.get(w.key);
        if (doc === undefined) {
          refused.push({ key: w.key, reason: 'write_refused', detail: '_bulk update HTTP 409: document deleted meanwhile' });
        } else if (doc.value === target.normalise(w.write.value)) {
          // Another migration (or MongooseIM) wrote the same value: written meanwhile, like SQL's skipped rows.
        } else if (doc.value !== undefined) {
          refused.push({
            key: w.key,
            reason: 'write_refused',
            detail: `_bulk update HTTP 409: ${field} set meanwhile by another writer to ${JSON.stringify(doc.value)} (this message gives ${typeof w.write.value === 'string' ? `'${w.write.value}'` : String(w.write.value)}): left as it is`,
          });
        } else {
          again.push({ key: w.key, write: { value: w.write.value, ...(doc.version === undefined ? {} : { readAt: doc.version }) } });
        }
      }
    }
    pending = again;
  }
  return { written: landed.written, refused };
}

interface MgetBody {
  docs: { _id: string; found?: boolean; _seq_no?: number; _primary_term?: number; _source?: Record<string, unknown> }[];
}

/** What `ids` hold now (real-time): the walk's field (any JSON value but null, as the walk compares it) and the version; absent: no such document. */
async function readValues(http: SearchHttp, layout: IndexLayout, ids: readonly string[]): Promise<Map<string, { value?: FieldValue; version?: ReadVersion }>> {
  const target = targetOf(layout);
  const path = `${indexPath(layout)}/_mget`;
  const docs = ids.map((id) => ({ _id: id, ...(layout.type === undefined ? {} : { _type: layout.type }), _source: [target.field] }));
  const response = await http.request<MgetBody>('POST', path, { docs });
  if (response.status >= 300) throw errorOf('POST', path, response);
  const found = new Map<string, { value?: FieldValue; version?: ReadVersion }>();
  for (const doc of response.body.docs) {
    if (doc.found !== true) continue;
    const value = target.normalise(doc._source?.[target.field]);
    const version =
      typeof doc._seq_no === 'number' && typeof doc._primary_term === 'number' ? { seqNo: doc._seq_no, primaryTerm: doc._primary_term } : undefined;
    found.set(doc._id, {
      ...(value === undefined ? {} : { value }),
      ...(version === undefined ? {} : { version }),
    });
  }
  return found;
}
