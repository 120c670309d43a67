/**
 * The Elasticsearch / OpenSearch backend on the generic pipeline: partitions are `mam_id` ranges
 * (partition-plan.ts), pages come from `search_after` over the documents still without the walk's
 * field (page-reader.ts), a batch is one `_bulk` of partial updates (bulk-update.ts), and a
 * partition's place is kept after each write in our own checkpoint index (checkpoint-store.ts).
 *
 * One class for both walks: the sender's `from_jid` in the MUC archive (the default) and
 * `is_groupchat` in the one-to-one archive; what differs (field, sort key, answers, rules) is the
 * layout's walk target (walk-target.ts).
 */
import type {
  AnyAnswer,
  Backend,
  Decision,
  ExtractResult,
  Mismatch,
  Page,
  PageLimits,
  PlannedWrite,
  ScanPage,
  SchemaStatus,
  ShardSpec,
  SourceRecord,
  UnwrittenKeys,
  VerifySample,
  WriteOutcome,
} from '../../pipeline/types.js';
import { DEFAULT_BULK_RETRY, writeBulk, type BulkRetryPolicy, type BulkStats, type FieldWrite, type ReadVersion } from './bulk-update.js';
import { CHECKPOINT_INDEX, CheckpointStore, checkpointId, type SortCursor } from './checkpoint-store.js';
import { applyMapping, checkMapping, indexPath, targetOf, type IndexLayout } from './index-layout.js';
import { countPendingAfter, messageProblem, PageBudget, payloadOf, pendingQuery, readKeyedPage, type Hit } from './page-reader.js';
import { measurePlan, outsideRange, rangesOf, type MamIdRange, type PartitionPlan } from './partition-plan.js';
import { isTransientSearchError, type SearchHttp } from './search-http.js';
import { describeStored, type FieldValue, type WalkTarget } from './walk-target.js';

export { MAX_KEYWORD_BYTES } from './walk-target.js';

/** A document as `verify` sees it: with the walk's field as the walk compares it. */
interface DocumentSample extends VerifySample<string> {
  readonly value: FieldValue;
}

/** A page's document; `messageProblem` when `message` is not a string (its payload is then empty). */
interface DocumentRecord extends SourceRecord<string> {
  readonly messageProblem?: string;
}

function documentRecord(id: string, hit: Parameters<typeof payloadOf>[0]): DocumentRecord {
  const problem = messageProblem(hit);
  return problem === null ? { key: id, payload: payloadOf(hit) } : { key: id, payload: payloadOf(hit), messageProblem: problem };
}

export class ElasticsearchBackend<Answer extends AnyAnswer = ExtractResult> implements Backend<string, SortCursor, FieldWrite, MamIdRange, Answer> {
  readonly name = 'elasticsearch';
  readonly answers: Backend['answers'];
  private readonly target: WalkTarget<Answer>;
  readonly defaultFormat = 'xml' as const;
  readonly checkpointMode = 'after-write' as const;
  readonly bulkStats: BulkStats = { itemsRetried: 0, refusedByStatus: {}, conflicts: 0 };
  /**
   * The version each record of a page was read at, until its write is decided: by the record
   * itself, so nothing outlives the batch (the key stays the bare `_id` the report names).
   */
  private readonly readAt = new WeakMap<SourceRecord<string>, ReadVersion>();
  private readonly checkpoints: CheckpointStore;
  /** Measured by `partitions()` when no plan is stored yet (or it is unreadable); stored by `prepareCheckpoints()`. */
  private unsavedPlan: { plan: PartitionPlan; replacing?: { seqNo: number; primaryTerm: number } } | null = null;
  /** The plan this run walks (stored, or measured and not yet stored). */
  private plan: PartitionPlan | null = null;
  private readonly budget = new PageBudget();
  private shardPartitions: readonly MamIdRange[] = [];
  /** Checkpoints of this shard's partitions as this run found them (null: start over). */
  private found: Promise<Map<string, SortCursor | null>> | null = null;
  /** This run starts a finished walk over: these partitions' old checkpoints go at the first save. */
  private finishedWalk: string[] | null = null;
  private forgetting: Promise<void> | null = null;
  /** The field is mapped as text (checkSchema): values are written as the strings MongooseIM sends. */
  private valuesAsText = false;

  constructor(
    private readonly http: SearchHttp,
    readonly layout: IndexLayout,
    /** How items refused for load are re-sent (tests shorten the pauses). */
    private readonly bulkRetry: BulkRetryPolicy = DEFAULT_BULK_RETRY,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.target = targetOf(layout) as WalkTarget<Answer>;
    this.answers = this.target.answers;
    this.checkpoints = new CheckpointStore(http, layout.index, bulkRetry, this.target.checkpointSuffix, this.target.keyField);
  }

  describeKey(key: string): Record<string, string> {
    return { _index: this.layout.index, _id: key };
  }

  describeCursor(cursor: SortCursor): string {
    if (cursor.done === true) return 'its end';
    return `mam_id ${cursor.mamId} (${this.target.keyField} ${cursor.room})`;
  }

  async checkSchema(): Promise<SchemaStatus> {
    const status = await checkMapping(this.http, this.layout);
    this.valuesAsText = status.mappedAs !== undefined && this.target.textTypes.includes(status.mappedAs);
    if (this.valuesAsText)
      this.log(`index '${this.layout.index}' maps ${this.target.field} as ${status.mappedAs}: writing "true"/"false" as MongooseIM sends them`);
    return status;
  }

  applySchema(): Promise<string[]> {
    return applyMapping(this.http, this.layout);
  }

  async partitions(shard: ShardSpec): Promise<MamIdRange[]> {
    const stored = await this.checkpoints.readPlan();
    let plan: PartitionPlan;
    if (stored.state === 'valid') {
      plan = stored.plan;
      this.unsavedPlan = null;
    } else {
      plan = await measurePlan(this.http, this.layout);
      if (stored.state === 'unreadable') {
        // Safe to replace: checkpoints name their plan, so none of the old one is applied to the new.
        this.log(
          `${this.checkpoints.planDocument()} is not a partition plan: cutting a new one (the ${this.target.field} walk of index '${this.layout.index}' starts over)`,
        );
        this.unsavedPlan = { plan, replacing: { seqNo: stored.seqNo, primaryTerm: stored.primaryTerm } };
      } else {
        this.unsavedPlan = { plan };
      }
    }
    this.plan = plan;
    this.checkpoints.planId = plan.id;
    this.shardPartitions = rangesOf(plan, shard);
    this.found = null;
    this.finishedWalk = null;
    this.forgetting = null;
    return [...this.shardPartitions];
  }

  async prepareCheckpoints(): Promise<void> {
    await this.checkpoints.prepare();
    if (this.unsavedPlan === null) return;
    const held = await this.checkpoints.storePlan(this.unsavedPlan.plan, this.unsavedPlan.replacing);
    if (held.id !== this.unsavedPlan.plan.id && sameCuts(held, this.unsavedPlan.plan)) {
      // `--shard K/N` processes started together on a fresh index measure the same ids: the
      // ranges this run already handed out are the stored plan's, so its id is ours too.
      this.plan = held;
      this.checkpoints.planId = held.id;
    } else if (held.id !== this.unsavedPlan.plan.id) {
      throw new Error(
        'another process stored a different partition plan at the same moment (shards started together on a fresh index): run again, it will use the stored plan',
      );
    }
    this.unsavedPlan = null;
  }

  /**
   * Resumes an interrupted walk. A walk that had reached its end everywhere starts over, so that
   * a re-run reports the documents that still cannot be decoded again (and writes nothing new).
   * Starting over only reads: the finished walk's checkpoints are removed by the first checkpoint
   * this run saves (never in a dry run, which saves none, so a dry run changes nothing at all).
   */
  async readCheckpoint(partition: MamIdRange): Promise<SortCursor | null> {
    this.found ??= this.readShardCheckpoints();
    return (await this.found).get(partition.name) ?? null;
  }

  private async readShardCheckpoints(): Promise<Map<string, SortCursor | null>> {
    const found = new Map<string, SortCursor | null>();
    for (const p of this.shardPartitions) found.set(p.name, await this.checkpointOf(p));
    if (found.size > 0 && (await this.walkFinished(found))) {
      this.finishedWalk = this.shardPartitions.map((p) => p.name);
      return new Map();
    }
    return found;
  }

  /**
   * The partition's checkpoint under this run's plan: one of another plan is a place in ranges
   * that are not these, and is ignored (overwritten by this run's first save); one that cannot be
   * a place in this partition is refused, never trusted (a walk after it would skip documents).
   */
  private async checkpointOf(range: MamIdRange): Promise<SortCursor | null> {
    const stored = await this.checkpoints.read(range.name);
    if (stored === null || stored.plan !== this.checkpoints.planId) return null;
    const { mamId, room, done } = stored;
    let problem: string | null = null;
    if (typeof mamId !== 'string' || typeof room !== 'string')
      problem = `mam_id ${JSON.stringify(mamId)} and ${this.target.keyField} ${JSON.stringify(room)} are not a place in the walk`;
    else if (!(done && mamId === '' && room === '')) problem = outsideRange(range, mamId);
    if (problem !== null) {
      throw new Error(
        `checkpoint ${CHECKPOINT_INDEX}/${checkpointId(this.checkpoints.walk, range.name)} is corrupt (${problem}): ` +
          `it cannot be trusted; run again with --reset to walk this shard from the start (documents already written are not written again)`,
      );
    }
    return { mamId: mamId as string, room: room as string, ...(done ? { done: true } : {}) };
  }

  /**
   * True when no partition has anything left after its checkpoint: each one is marked done, or
   * holds no document without the walk's field after its cursor (a partition whose last page came back
   * empty, or one that never had anything to do, keeps no `done` mark). Stops at the first
   * partition with work left, so a resumed walk costs one count.
   */
  private async walkFinished(found: Map<string, SortCursor | null>): Promise<boolean> {
    if ([...found.values()].every((c) => c === null)) return false; // never walked (or forgotten)
    for (const p of this.shardPartitions) {
      const cursor = found.get(p.name) ?? null;
      if (cursor?.done === true) continue;
      if ((await countPendingAfter(this.http, this.layout, p, cursor)) > 0) return false;
    }
    return true;
  }

  async saveCheckpoint(partition: MamIdRange, cursor: SortCursor): Promise<void> {
    if (this.finishedWalk !== null) {
      const forget = this.finishedWalk;
      this.forgetting ??= (async () => {
        for (const name of forget) await this.checkpoints.delete(name);
        this.finishedWalk = null;
      })();
      // Failed: the next save tries again.
      await this.forgetting.catch((error: unknown) => {
        this.forgetting = null;
        throw error;
      });
    }
    return this.checkpoints.save(partition.name, cursor);
  }

  deleteCheckpoint(partition: MamIdRange): Promise<void> {
    return this.checkpoints.delete(partition.name);
  }

  async estimate(partitions: readonly MamIdRange[]): Promise<number> {
    if (partitions.length === 0) return 0;
    const body = await this.http.complete<{ count: number }>(`${indexPath(this.layout)}/_count`, { query: pendingQuery(this.layout, partitions) });
    return body.count;
  }

  async readPage(partition: MamIdRange, after: SortCursor | null, limits: PageLimits): Promise<Page<string, SortCursor>> {
    const page = await readKeyedPage(this.http, this.layout, partition, after, limits, this.budget, { pending: true, source: ['message'] });
    const records = page.hits.map((hit) => {
      const record = documentRecord(hit._id, hit);
      if (typeof hit._seq_no === 'number' && typeof hit._primary_term === 'number')
        this.readAt.set(record, { seqNo: hit._seq_no, primaryTerm: hit._primary_term });
      return record;
    });
    return { records, cursor: page.cursor, end: page.end };
  }

  async scanPage(partition: MamIdRange, after: SortCursor | null, limits: PageLimits): Promise<ScanPage<string, SortCursor>> {
    const page = await readKeyedPage(this.http, this.layout, partition, after, limits, this.budget, {
      pending: false,
      source: ['message', this.target.field],
    });
    return {
      records: page.hits.map((hit) => {
        const sample = this.sampleOf(hit);
        return sample === null ? { key: hit._id, payload: payloadOf(hit), written: false, stored: '' } : { ...sample, written: true };
      }),
      cursor: page.cursor,
      end: page.end,
    };
  }

  /** A document that holds the walk's field, as `verify` judges it (null: it holds none). */
  private sampleOf(hit: Hit): DocumentSample | null {
    const value = this.target.normalise(hit._source?.[this.target.field]);
    if (value === undefined) return null;
    return { key: hit._id, payload: payloadOf(hit), value, stored: describeStored(this.target, value) };
  }

  /**
   * The shard's documents still without the walk's field (its ranges, and the documents without mam_id
   * for the shard that walks them): a `_count`, then their ids by one scroll (a listing read
   * once, never resumed, so it needs no unique sort), at most `max`. Refreshes the index first.
   */
  async unwrittenKeys(shard: ShardSpec, max: number): Promise<UnwrittenKeys<string>> {
    if (this.plan === null) await this.partitions(shard);
    const query = pendingQuery(this.layout, rangesOf(this.plan!, shard));
    // A search sees writes only after a refresh (every second by default): without one, the
    // last batches' documents would count as unwritten.
    await this.http.ok('POST', `${indexPath(this.layout)}/_refresh`);
    const { count } = await this.http.complete<{ count: number }>(`${indexPath(this.layout)}/_count`, { query });
    const keys: string[] = [];
    if (count > 0 && max > 0) {
      type ScrollBody = { _scroll_id?: string; hits: { hits: { _id: string }[] } };
      let body = await this.http.complete<ScrollBody>(`${indexPath(this.layout)}/_search?scroll=1m`, {
        size: Math.min(max, 1000),
        query,
        _source: false,
        sort: ['_doc'],
      });
      try {
        while (body.hits.hits.length > 0 && keys.length < max) {
          for (const hit of body.hits.hits) if (keys.length < max) keys.push(hit._id);
          if (keys.length >= max || body._scroll_id === undefined) break;
          body = await this.http.complete<ScrollBody>('/_search/scroll', { scroll: '1m', scroll_id: body._scroll_id });
        }
      } finally {
        if (body._scroll_id !== undefined) await this.http.request('DELETE', '/_search/scroll', { scroll_id: body._scroll_id }).catch(() => {});
      }
    }
    return { keys, complete: count <= max };
  }

  decide(record: SourceRecord<string>, answer: Answer): Decision<FieldWrite> {
    const problem = (record as DocumentRecord).messageProblem;
    if (problem !== undefined) return { reason: 'malformed', detail: `${problem}: nothing to decode` };
    const decision = this.target.decide(answer);
    if (!('write' in decision)) return decision;
    const readAt = this.readAt.get(record);
    const value = this.valuesAsText ? String(decision.write) : decision.write;
    return { write: { value, ...(readAt === undefined ? {} : { readAt }) } };
  }

  async writeBatch(_partition: MamIdRange, writes: readonly PlannedWrite<string, FieldWrite>[]): Promise<WriteOutcome<string>> {
    // Partial updates are idempotent: no need to wait for earlier batches before sending.
    if (writes.length === 0) return { written: 0 };
    return writeBulk(this.http, this.layout, writes, this.bulkStats, this.bulkRetry);
  }

  async sampleForVerify(size: number): Promise<VerifySample<string>[]> {
    const field = this.target.field;
    const body = await this.http.complete<{ hits: { hits: Hit[] } }>(`${indexPath(this.layout)}/_search`, {
      size,
      query: { function_score: { query: { exists: { field } }, random_score: {} } },
      _source: ['message', field],
    });
    return body.hits.hits.flatMap((hit) => {
      const sample = this.sampleOf(hit);
      return sample === null ? [] : [sample];
    });
  }

  verifyAnswer(sample: VerifySample<string>, answer: Answer): Mismatch | null {
    const { value } = sample as DocumentSample;
    return this.target.verify(value, answer);
  }

  isTransient(error: unknown): boolean {
    return isTransientSearchError(error);
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

function sameCuts(a: PartitionPlan, b: PartitionPlan): boolean {
  return a.cuts.length === b.cuts.length && a.cuts.every((cut, i) => cut === b.cuts[i]);
}
