/**
 * Our own small index (never MongooseIM's): the partition plan of each walk of an archive index
 * and, per partition, the last (`mam_id`, key) whose batch is written, with the id of the plan it
 * belongs to. The sender walk's ids are `plan:<index>` and `<index>:<partition>`; another walk of
 * the same index adds its suffix to the index name (`messages:is_groupchat`), so no walk ever
 * reads another's place. Read by document id, which is real-time, so a checkpoint saved just before a
 * kill -9 is seen by the next run.
 */
import { backoffDelay, sleep } from '../../common/backoff.js';
import { DEFAULT_BULK_RETRY, type BulkRetryPolicy } from './bulk-update.js';
import { SearchHttpError, errorOf, isTransientResponse, type SearchHttp, type SearchResponse } from './search-http.js';
import type { PartitionPlan } from './partition-plan.js';
import { UNNAMED_PLAN, validPlan } from './partition-plan.js';

export const CHECKPOINT_INDEX = 'mim_sender_jid_checkpoint';

/** Where a partition's walk continues: after this (`mam_id`, key) in sort order. */
export interface SortCursor {
  /** Decimal: message ids exceed 2^53. '' in the partition of documents without mam_id. */
  readonly mamId: string;
  /** The key field's value: the `room` of the MUC archive, the `owner` of the one-to-one archive. */
  readonly room: string;
  /** The partition's walk reached its end (on an empty partition `mamId`/`room` are ''). */
  readonly done?: boolean;
}

/** A checkpoint as stored: its plan, and the place, not yet checked against the partition. */
export interface StoredCheckpoint {
  readonly plan: string;
  readonly mamId: unknown;
  readonly room: unknown;
  readonly done: boolean;
}

/** The stored plan: none, one that holds, or a document that is not a plan (with its version). */
export type StoredPlan =
  | { readonly state: 'absent' }
  | { readonly state: 'valid'; readonly plan: PartitionPlan }
  | { readonly state: 'unreadable'; readonly seqNo: number; readonly primaryTerm: number };

const docPath = (id: string): string => `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent(id)}`;

export function checkpointId(archiveIndex: string, partition: string): string {
  return `${archiveIndex}:${partition}`;
}

export class CheckpointStore {
  /** The plan whose checkpoints this store reads and writes (set once the plan is known). */
  planId: string = UNNAMED_PLAN;

  /** The walk's name in document ids: the index, with the walk's suffix. */
  readonly walk: string;

  constructor(
    private readonly http: SearchHttp,
    /** The archive index whose walk this is. */
    readonly archiveIndex: string,
    /** A request refused for load (429/503) is sent again with these pauses, not failed at once. */
    private readonly retry: BulkRetryPolicy = DEFAULT_BULK_RETRY,
    /** '' for the sender walk; another walk's own (`:is_groupchat`). */
    private readonly walkSuffix = '',
    /** The cursor's key as stored: `room`, or the one-to-one archive's `owner`. */
    private readonly keyField = 'room',
  ) {
    this.walk = `${archiveIndex}${walkSuffix}`;
  }

  async prepare(): Promise<void> {
    const exists = await this.http.request('HEAD', `/${CHECKPOINT_INDEX}`);
    if (exists.status === 200) return;
    const created = await this.withRetry(() =>
      this.http.request<{ error?: { type?: string } }>('PUT', `/${CHECKPOINT_INDEX}`, {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
      }),
    );
    // Another shard process may have created it a moment ago.
    if (created.status >= 300 && created.body?.error?.type !== 'resource_already_exists_exception') {
      throw new SearchHttpError(
        created.status,
        created.body?.error?.type ?? '',
        `cannot create checkpoint index ${CHECKPOINT_INDEX}: HTTP ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`,
      );
    }
  }

  planDocument(): string {
    return `${CHECKPOINT_INDEX}/plan:${this.walk}`;
  }

  async readPlan(): Promise<StoredPlan> {
    const doc = await this.get(`plan:${this.walk}`);
    if (doc === null) return { state: 'absent' };
    const plan = validPlan(doc.source);
    return plan === null ? { state: 'unreadable', seqNo: doc.seqNo, primaryTerm: doc.primaryTerm } : { state: 'valid', plan };
  }

  /**
   * Stores `plan` where there is none, or in place of the unreadable document `replacing` (only
   * if nobody changed it meanwhile); answers the plan that holds: ours, or the one another
   * process stored first.
   */
  async storePlan(plan: PartitionPlan, replacing?: { seqNo: number; primaryTerm: number }): Promise<PartitionPlan> {
    const condition = replacing === undefined ? 'op_type=create' : `if_seq_no=${replacing.seqNo}&if_primary_term=${replacing.primaryTerm}`;
    const response = await this.withRetry(() =>
      this.http.request('PUT', `${docPath(`plan:${this.walk}`)}?${condition}&refresh=false`, {
        index: this.archiveIndex,
        ...(this.walkSuffix === '' ? {} : { walk: this.walk }),
        id: plan.id,
        cuts: plan.cuts,
      }),
    );
    if (response.status === 409) {
      const stored = await this.readPlan();
      if (stored.state !== 'valid') throw new Error(`${this.planDocument()}: another process is replacing the partition plan at the same moment: run again`);
      return stored.plan;
    }
    if (response.status >= 300) throw errorOf('PUT', docPath(`plan:${this.walk}`), response);
    return plan;
  }

  /** The stored checkpoint of `partition` (of any plan), or null. */
  async read(partition: string): Promise<StoredCheckpoint | null> {
    const doc = await this.get(checkpointId(this.walk, partition));
    if (doc === null) return null;
    const source = (doc.source ?? {}) as Record<string, unknown>;
    return {
      plan: typeof source.plan === 'string' ? source.plan : UNNAMED_PLAN,
      mamId: source.mam_id,
      room: source[this.keyField],
      done: source.done === true,
    };
  }

  async save(partition: string, cursor: SortCursor): Promise<void> {
    const path = docPath(checkpointId(this.walk, partition));
    const body = {
      index: this.archiveIndex,
      ...(this.walkSuffix === '' ? {} : { walk: this.walk }),
      partition,
      plan: this.planId,
      mam_id: cursor.mamId,
      [this.keyField]: cursor.room,
      done: cursor.done === true,
      saved_at: new Date().toISOString(),
    };
    const response = await this.withRetry(() => this.http.request('PUT', path, body));
    // Past the rounds the error goes up as transient, and the pipeline retries the batch.
    if (response.status >= 300) throw errorOf('PUT', path, response);
  }

  async delete(partition: string): Promise<void> {
    const path = docPath(checkpointId(this.walk, partition));
    const response = await this.withRetry(() => this.http.request('DELETE', path));
    if (response.status >= 300 && response.status !== 404) throw errorOf('DELETE', path, response);
  }

  /** Sends again while the node refuses for load (never for a block: that is no load). */
  private async withRetry<T>(send: () => Promise<SearchResponse<T>>): Promise<SearchResponse<T>> {
    for (let round = 0; ; round++) {
      const response = await send();
      if (!isTransientResponse(response) || round >= this.retry.rounds) return response;
      await sleep(backoffDelay(round + 1, { baseMs: this.retry.firstPauseMs, maxMs: this.retry.longestPauseMs }));
    }
  }

  private async get(id: string): Promise<{ source: unknown; seqNo: number; primaryTerm: number } | null> {
    const response = await this.http.request<{ found?: boolean; _source?: unknown; _seq_no?: number; _primary_term?: number }>('GET', docPath(id));
    if (response.status === 404) return null; // no such document, or no checkpoint index yet
    if (response.status >= 300) throw errorOf('GET', docPath(id), response);
    if (!response.body.found) return null;
    return { source: response.body._source ?? null, seqNo: response.body._seq_no ?? 0, primaryTerm: response.body._primary_term ?? 0 };
  }
}
