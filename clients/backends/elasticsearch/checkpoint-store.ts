/**
 * Our own small index (never MongooseIM's): the partition plan of each archive index and, per
 * partition, the last (`mam_id`, `room`) whose batch is written. Read by document id, which is
 * real-time, so a checkpoint saved just before a kill -9 is seen by the next run.
 */
import { sleep } from '../../pipeline/rate-limiter.js';
import { DEFAULT_BULK_RETRY, type BulkRetryPolicy } from './bulk-update.js';
import { SearchHttpError, errorOf, isTransientStatus, type SearchHttp } from './search-http.js';
import type { PartitionPlan } from './partition-plan.js';
import { validPlan } from './partition-plan.js';

export const CHECKPOINT_INDEX = 'mim_sender_jid_checkpoint';

/** Where a partition's walk continues: after this (`mam_id`, `room`) in sort order. */
export interface SortCursor {
  /** Decimal: message ids exceed 2^53. */
  readonly mamId: string;
  readonly room: string;
  /** The partition's walk reached its end (on an empty partition `mamId`/`room` are ''). */
  readonly done?: boolean;
}

const docPath = (id: string): string => `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent(id)}`;

export class CheckpointStore {
  constructor(
    private readonly http: SearchHttp,
    /** The archive index whose walk this is. */
    private readonly archiveIndex: string,
    /** A checkpoint refused for load (429/503) is sent again with these pauses, not failed at once. */
    private readonly retry: BulkRetryPolicy = DEFAULT_BULK_RETRY,
  ) {}

  async prepare(): Promise<void> {
    const exists = await this.http.request('HEAD', `/${CHECKPOINT_INDEX}`);
    if (exists.status === 200) return;
    const created = await this.http.request<{ error?: { type?: string } }>('PUT', `/${CHECKPOINT_INDEX}`, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
    });
    // Another shard process may have created it a moment ago.
    if (created.status >= 300 && created.body?.error?.type !== 'resource_already_exists_exception') {
      throw new SearchHttpError(created.status, created.body?.error?.type ?? '', `cannot create checkpoint index ${CHECKPOINT_INDEX}: HTTP ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
    }
  }

  async readPlan(): Promise<PartitionPlan | null> {
    return validPlan(await this.get(`plan:${this.archiveIndex}`));
  }

  /**
   * Stores the plan unless one exists; answers the plan that holds (ours, or the one another
   * process stored first).
   */
  async createPlan(plan: PartitionPlan): Promise<PartitionPlan> {
    const response = await this.http.request('PUT', `${docPath(`plan:${this.archiveIndex}`)}?op_type=create&refresh=false`, { index: this.archiveIndex, cuts: plan.cuts });
    if (response.status === 409) {
      const stored = await this.readPlan();
      if (stored === null) throw new Error(`${CHECKPOINT_INDEX}: the partition plan of '${this.archiveIndex}' is unreadable; delete document plan:${this.archiveIndex} to cut a new one`);
      return stored;
    }
    if (response.status >= 300) throw new SearchHttpError(response.status, '', `cannot store the partition plan: HTTP ${response.status}`);
    return plan;
  }

  async read(partition: string): Promise<SortCursor | null> {
    const source = (await this.get(`${this.archiveIndex}:${partition}`)) as { mam_id?: unknown; room?: unknown } | null;
    if (source === null) return null;
    if (typeof source.mam_id !== 'string' || typeof source.room !== 'string') return null;
    return { mamId: source.mam_id, room: source.room, ...((source as { done?: unknown }).done === true ? { done: true } : {}) };
  }

  async save(partition: string, cursor: SortCursor): Promise<void> {
    const path = docPath(`${this.archiveIndex}:${partition}`);
    const body = {
      index: this.archiveIndex,
      partition,
      mam_id: cursor.mamId,
      room: cursor.room,
      done: cursor.done === true,
      saved_at: new Date().toISOString(),
    };
    for (let round = 0; ; round++) {
      const response = await this.http.request('PUT', path, body);
      if (response.status < 300) return;
      // Past the rounds the error goes up as transient, and the pipeline retries the batch.
      if (!isTransientStatus(response.status) || round >= this.retry.rounds) throw errorOf('PUT', path, response);
      await sleep(Math.min(this.retry.longestPauseMs, this.retry.firstPauseMs * 2 ** round) * (0.5 + Math.random() / 2));
    }
  }

  async delete(partition: string): Promise<void> {
    const response = await this.http.request('DELETE', docPath(`${this.archiveIndex}:${partition}`));
    if (response.status >= 300 && response.status !== 404) throw new SearchHttpError(response.status, '', `cannot delete checkpoint ${partition}: HTTP ${response.status}`);
  }

  private async get(id: string): Promise<unknown> {
    const response = await this.http.request<{ found?: boolean; _source?: unknown }>('GET', docPath(id));
    if (response.status === 404) return null; // no such document, or no checkpoint index yet
    if (response.status >= 300) throw new SearchHttpError(response.status, '', `cannot read ${CHECKPOINT_INDEX}/${id}: HTTP ${response.status}`);
    return response.body.found ? (response.body._source ?? null) : null;
  }
}
