/**
 * The backfill, for any backend: walk the shard's partitions (several at once), read each
 * partition page by page, decode each page as one batch, let the backend decide per answer what
 * to write, write each batch and keep the partition's place. Reading, decoding and writing
 * overlap: up to `concurrency` batches are in flight across partitions while the next pages are
 * read. Batches of one partition commit strictly in order, so a checkpoint never passes a batch
 * that is not written, and a restart resumes exactly where the last commit left off.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import { SILENT_PROGRESS, type ProgressReporter, type ProgressSnapshot } from './progress.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../common/backoff.js';
import { TokenBucket } from './rate-limiter.js';
import { ReportedInThisRun, type ReportedRecord, type ReportSink } from './report.js';
import { readReportedKeySet, removeReportedKeys } from './report-keys.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from './ordering.js';
import { DEFAULT_BACKOFF, isTransientDecodeError } from './retry.js';
import {
  PartlyWrittenError,
  WHOLE_TABLE,
  shardName,
  type AnyAnswer,
  type AnyBackend,
  type ExtractStream,
  type NotWrittenRecord,
  type OpenExtractStream,
  type Page,
  type Partition,
  type PlannedWrite,
  type ShardSpec,
  type SourceRecord,
} from './types.js';

export const DEFAULT_BATCH_SIZE = 2000;
export const DEFAULT_CONCURRENCY = 4;
/** `--max-retries`: the walk resumed from its checkpoints after a transient failure, at most this often per run. */
export const DEFAULT_MAX_RETRIES = 20;
/** Largest batch accepted: a batch is one write (one statement, one bulk request) and one decode request. */
export const MAX_BATCH_SIZE = 10_000;
/** Payload bytes one page may hold (`--max-batch-bytes`): bounds memory whatever the payload sizes. */
export const DEFAULT_MAX_BATCH_BYTES = 32 * 1024 * 1024;
export const MAX_CONCURRENCY = 64;
/**
 * Most `--shard` processes: Cassandra's ring is cut into this many ranges, and past it the
 * database, not the walk, is the limit for every backend. A backend may allow fewer
 * (`BackendDefinition.maxShards`).
 */
export const MAX_SHARDS = 64;
const SCHEMA_ATTEMPTS = 5;
/** Most keys the end-of-run accounting asks the store for (they are held in memory with their fields). */
export const ACCOUNTING_MAX_KEYS = 1_000_000;
/**
 * Without checkpoints, keys of the report file held so that records reported by earlier runs are
 * passed over instead of decoded again (beyond it they are decoded and reported again, as before).
 */
export const REPORTED_BEFORE_MAX_KEYS = 500_000;
/** Keys the summary names when records are neither written nor reported. */
const ACCOUNTING_EXAMPLES = 10;

export interface MigrationOptions {
  readonly backend: AnyBackend;
  readonly openStream: OpenExtractStream;
  /** Default: the backend's own (`eterm` for SQL and Cassandra, `xml` for Elasticsearch and Riak). */
  readonly format?: PayloadFormat;
  readonly batchSize?: number;
  readonly maxBatchBytes?: number;
  /** Batches in flight (decoding or writing), across partitions. */
  readonly concurrency?: number;
  /** Most records to walk in this run. */
  readonly limit?: number;
  readonly shard?: ShardSpec;
  /** Decode and report, write nothing (no checkpoint either). */
  readonly dryRun?: boolean;
  /** Records per second, averaged; undefined = uncapped. */
  readonly maxRate?: number;
  /** Run the upgrade guide's schema step when something is missing. */
  readonly applySchema?: boolean;
  /** Forget this shard's checkpoints and walk from the start. */
  readonly reset?: boolean;
  readonly report: ReportSink;
  /**
   * The file `report` appends to, read back at the end of the walk: records reported by earlier
   * runs of the shard count as reported in the end-of-run accounting.
   */
  readonly reportPath?: string;
  /** Most keys the end-of-run accounting lists (default `ACCOUNTING_MAX_KEYS`). */
  readonly accountingMaxKeys?: number;
  readonly progress?: ProgressReporter;
  /** Aborting stops reading; the batches in flight still commit. */
  readonly signal?: AbortSignal;
  readonly maxRetries?: number;
  readonly backoff?: BackoffPolicy;
  readonly log?: (line: string) => void;
}

export interface MigrationSummary {
  readonly backend: string;
  readonly shard: string;
  readonly dryRun: boolean;
  /** Records walked and accounted for in this run: written, skipped or reported. */
  readonly records: number;
  /** Records written (in a dry run: that would be written). */
  readonly written: number;
  /** Records decoded fine that someone else wrote meanwhile. */
  readonly skipped: number;
  /** Records left without their write, each with its line in the report; and by the line's reason. */
  readonly reported: number;
  readonly reportedByReason: Record<string, number>;
  readonly durationMs: number;
  readonly recordsPerSecond: number;
  readonly retries: number;
  /** True when the run stopped on the signal (Ctrl-C) before the end. */
  readonly interrupted: boolean;
  /** True when every partition was walked to its end (not stopped by --limit or the signal). */
  readonly reachedEnd: boolean;
  readonly partitions: number;
  /** Partitions that started from a saved checkpoint. */
  readonly resumedPartitions: number;
  /**
   * Without checkpoints (`none`): records read again that the report file already names, passed
   * over (not decoded, not reported again, not counted toward --limit).
   */
  readonly reportedBefore: number;
  /**
   * The end-of-run accounting: whether every record of the shard is written or reported. Absent
   * when the walk did not reach its end, and in a dry run.
   */
  readonly accounting?: Accounting;
}

/**
 * What the store says, after the walk, against what was written and reported:
 * - `complete`: every record still without its write is in the report (`rewalked`: records found
 *   neither written nor reported after the first walk and caught by a second one, e.g. rows that
 *   a MongooseIM 3.3 node archived behind the walk);
 * - `partly-counted`: the store lists only the first `listed` records without their write, all of
 *   them reported; it holds more;
 * - `unaccounted`: `count` records (at least, when `more`) are neither written nor reported, even
 *   after walking the shard a second time (or the second walk stopped before its end: `rechecked`
 *   false); the next run walks the shard again (the checkpoints are deleted, or are the second
 *   walk's);
 * - `not-counted`: the store cannot list them cheaply (`reason`); `verify --complete` can.
 */
export type Accounting =
  | { readonly kind: 'complete'; readonly rewalked: number }
  | { readonly kind: 'partly-counted'; readonly listed: number }
  | {
      readonly kind: 'unaccounted';
      readonly count: number;
      readonly more: boolean;
      readonly examples: readonly Record<string, string>[];
      /** False when the second walk stopped before its end (--limit, Ctrl-C): the count is the first walk's. */
      readonly rechecked: boolean;
    }
  | { readonly kind: 'not-counted'; readonly reason: string };

export class SchemaNotReadyError extends Error {
  constructor(
    readonly backendName: string,
    readonly missing: string[],
    readonly statements: string[],
    guide = "the MongooseIM 3.3.0 -> 3.4.0 upgrade guide's step 1",
  ) {
    super(
      `the ${backendName} archive is not ready for the backfill: ${missing.join('; ')}.\n` +
        `Run these statements (${guide}), or pass --apply-schema:\n` +
        statements.map((s) => `  ${s}`).join('\n'),
    );
    this.name = 'SchemaNotReadyError';
  }
}

class Counters {
  records = 0;
  written = 0;
  skipped = 0;
  reported = 0;
  readonly reportedByReason: Record<string, number> = {};

  /**
   * Writes that landed, counted as they land, whether their batch then commits or not: the walk
   * after a failure passes over records that have their write, so they are counted now or never.
   */
  landed(written: number, planned: number): void {
    this.records += planned;
    this.written += written;
    this.skipped += Math.max(0, planned - written);
  }

  /** The batch's reported records, once it committed (and every earlier batch of its partition). */
  committed(reported: number): void {
    this.records += reported;
  }

  /**
   * Records appended to the report for the first time in this run, counted as they are appended,
   * whether their batch commits or not: a batch that fails after its report lines were appended
   * is walked again, and its records are then not reported again (nor would they be counted).
   */
  countReported(records: readonly ReportedRecord[]): void {
    this.reported += records.length;
    for (const record of records) this.reportedByReason[record.reason] = (this.reportedByReason[record.reason] ?? 0) + 1;
  }
}

/** Bounds the batches in flight across every partition. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(count: number) {
    this.free = count;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free++;
  }
}

/**
 * `--limit`: records handed out to reads, across partitions read at the same time. A read holds
 * its records until its page comes back and gives back what the page did not fill (a partition's
 * end, a page full of bytes). A walker finding nothing left waits while reads in flight may still
 * give some back: `--limit N` walks N records whatever the partitions, never fewer because other
 * reads held the rest for a moment.
 */
class LimitBudget {
  private used = 0;
  private held = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly limit: number | undefined) {}

  /** Records the next read may ask for (at most `want`); 0 once the limit is walked or `stopped()`. */
  async reserve(want: number, stopped: () => boolean): Promise<number> {
    if (this.limit === undefined) return stopped() ? 0 : want;
    for (;;) {
      if (stopped()) return 0;
      const free = this.limit - this.used - this.held;
      if (free > 0) {
        const records = Math.min(want, free);
        this.held += records;
        return records;
      }
      if (this.held === 0) return 0;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** A read that held `held` records came back with `got` of them (0 when it failed). */
  settle(held: number, got: number): void {
    if (this.limit === undefined) return;
    this.held -= held;
    this.used += got;
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  /** True once the run walked its limit: no partition is worth starting. */
  get exhausted(): boolean {
    return this.limit !== undefined && this.used >= this.limit;
  }
}

interface PartitionState {
  readonly partition: Partition;
  /** The cursor after the last batch committed (or accounted, in a dry run). */
  committed: unknown;
  done: boolean;
}

/** Splits a batch's answers into planned writes and reported records, checking that they answer this batch. */
export function decideBatch<Key, Write>(
  backend: Pick<AnyBackend, 'decide'>,
  records: readonly SourceRecord<Key>[],
  answers: readonly AnyAnswer[],
): { writes: PlannedWrite<Key, Write>[]; notWritten: NotWrittenRecord<Key>[]; partly: NotWrittenRecord<Key>[] } {
  if (answers.length !== records.length) {
    throw new Error(`decoding answered ${answers.length} results for a batch of ${records.length} records`);
  }
  const writes: PlannedWrite<Key, Write>[] = [];
  const notWritten: NotWrittenRecord<Key>[] = [];
  // Written in part: in `writes` too, and reported for the rest.
  const partly: NotWrittenRecord<Key>[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const answer = answers[i];
    if (answer.key !== String(i)) throw new Error(`decoding answered key ${answer.key} at position ${i}: results out of order`);
    const decision = backend.decide(record, answer);
    if ('write' in decision) {
      writes.push({ key: record.key, write: decision.write as Write });
      if ('partly' in decision) partly.push({ key: record.key, reason: decision.partly.reason, detail: decision.partly.detail });
    } else notWritten.push({ key: record.key, reason: decision.reason, detail: decision.detail });
  }
  return { writes, notWritten, partly };
}

export async function runMigration(options: MigrationOptions): Promise<MigrationSummary> {
  const backend = options.backend;
  const shard = options.shard ?? WHOLE_TABLE;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const format = options.format ?? backend.defaultFormat;
  const dryRun = options.dryRun ?? false;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const progress = options.progress ?? SILENT_PROGRESS;
  const log = options.log ?? (() => {});
  const signal = options.signal;
  validateWalkOptions({ batchSize, maxBatchBytes, concurrency, shard, limit: options.limit, maxRate: options.maxRate });

  await prepareSchema(backend, options.applySchema === true, dryRun, log);
  const partitions = await backend.partitions(shard);
  // Before any checkpoint is read: a second process on the same shard stops here, at once.
  if (!dryRun) await backend.acquireShard?.(shard);
  const canCheckpoint = backend.checkpointMode !== 'none';
  if (!dryRun && canCheckpoint) {
    await backend.prepareCheckpoints?.().catch(async () => {
      // CREATE ... IF NOT EXISTS can still collide when shards start together: once more.
      await backend.prepareCheckpoints?.();
    });
    if (options.reset) for (const p of partitions) await backend.deleteCheckpoint?.(p);
  }
  const states: PartitionState[] = [];
  let resumedPartitions = 0;
  for (const partition of partitions) {
    const saved = options.reset || !canCheckpoint ? null : ((await backend.readCheckpoint?.(partition)) ?? null);
    if (saved !== null) {
      resumedPartitions++;
      if (partitions.length <= 4) log(`resuming partition ${partition.name} after ${backend.describeCursor(saved)}`);
    }
    states.push({ partition, committed: saved, done: false });
  }
  if (resumedPartitions > 0 && partitions.length > 4) log(`resuming ${resumedPartitions} of ${partitions.length} partitions from their checkpoints`);
  let estimate = await backend.estimate(partitions);
  if (options.limit !== undefined) estimate = Math.min(estimate, options.limit);

  const bucket = options.maxRate === undefined ? null : new TokenBucket(options.maxRate, Math.min(options.maxRate, batchSize));
  const counters = new Counters();
  const started = performance.now();
  const snapshot = (): ProgressSnapshot => ({
    records: counters.records,
    written: counters.written,
    reported: counters.reported,
    estimate,
    elapsedMs: performance.now() - started,
  });
  const budget = new LimitBudget(options.limit);
  let retries = 0;
  // Without checkpoints nothing marks a reported record done: the store hands it out again on
  // every run. Passed over here, a run's --limit goes to records not walked yet, so repeated
  // --limit runs progress however many records were reported at the front of the walk.
  const reportedEarlier =
    canCheckpoint || dryRun || options.reset || options.reportPath === undefined
      ? null
      : await readReportedKeySet(options.reportPath, REPORTED_BEFORE_MAX_KEYS);
  let reportedBefore = 0;
  const passOverReported = (page: Page<unknown, unknown>): Page<unknown, unknown> => {
    if (reportedEarlier === null || reportedEarlier.size === 0) return page;
    const records = page.records.filter((r) => !reportedEarlier.has(JSON.stringify(backend.describeKey(r.key))));
    reportedBefore += page.records.length - records.length;
    return records.length === page.records.length ? page : { ...page, records };
  };

  const reportedInThisRun = new ReportedInThisRun();
  const describe = (notWritten: readonly NotWrittenRecord<unknown>[]): ReportedRecord[] =>
    notWritten.map((r) => ({ key: r.key, fields: backend.describeKey(r.key), reason: r.reason, detail: r.detail }));
  // Before the batch commits: a crash may repeat a line on resume, never lose one.
  const report = (records: readonly ReportedRecord[]): void => {
    const first = records.filter((r) => reportedInThisRun.firstTime(r));
    options.report.append(first);
    counters.countReported(first);
  };

  const runOnce = async (stream: ExtractStream<AnyAnswer>): Promise<void> => {
    const slots = new Slots(concurrency);
    let firstError: { error: unknown } | null = null;
    const stopped = (): boolean => firstError !== null || signal?.aborted === true;
    const queue = states.filter((s) => !s.done);

    const processBatch = async (state: PartitionState, page: Page<unknown, unknown>, previous: Promise<void>): Promise<void> => {
      try {
        await commitBatch(state, page, previous);
      } catch (error) {
        // A batch that fails on its own (a write refused on every try) settles only once the
        // batches before it have: the walk waits for its last batch, so through this chain for
        // every one, and no retry starts while an earlier batch still writes what the retry
        // would find written and pass over (never counted).
        await previous.catch(() => {});
        throw error;
      }
    };

    const commitBatch = async (state: PartitionState, page: Page<unknown, unknown>, previous: Promise<void>): Promise<void> => {
      const records = page.records;
      const answers = records.length === 0 ? [] : await stream.extract(records.map((r, i) => ({ key: String(i), payload: r.payload })));
      const { writes, notWritten, partly } = decideBatch(backend, records, answers);
      report(describe([...notWritten, ...partly]));
      // Records written in part are reported: counted there, not among the writes.
      const whole = writes.length - partly.length;
      let refusedCount = 0;
      if (dryRun) {
        await awaitEarlierBatches(previous);
        counters.landed(whole, whole);
      } else {
        let outcome;
        try {
          outcome = await backend.writeBatch(state.partition, writes, page.cursor, previous);
        } catch (error) {
          if (!(error instanceof PartlyWrittenError)) throw error;
          counters.landed(error.written, error.written);
          throw error.causeError;
        }
        refusedCount = outcome.refused?.length ?? 0;
        counters.landed(outcome.written, whole - refusedCount);
        report(describe(outcome.refused ?? []));
        await awaitEarlierBatches(previous);
        if (backend.checkpointMode === 'after-write' && page.cursor !== null) await backend.saveCheckpoint!(state.partition, page.cursor);
      }
      counters.committed(notWritten.length + partly.length + refusedCount);
      state.committed = page.cursor;
      progress.update(snapshot());
    };

    const walk = async (state: PartitionState): Promise<void> => {
      let after = state.committed;
      let previous: Promise<void> = Promise.resolve();
      // Null when this run reads no more of the partition (--limit walked, or the run stops).
      const read = (): Promise<Page<unknown, unknown> | null> => {
        const from = after;
        const pending = budget.reserve(batchSize, stopped).then(async (records) => {
          if (records <= 0) return null;
          try {
            const page = passOverReported(await backend.readPage(state.partition, from, { records, bytes: maxBatchBytes }));
            budget.settle(records, page.records.length);
            return page;
          } catch (error) {
            budget.settle(records, 0);
            throw error;
          }
        });
        pending.catch(() => {}); // awaited below, or abandoned after a failure elsewhere
        return pending;
      };
      let next = read();
      try {
        for (;;) {
          const page = await next;
          if (page === null) break;
          if (page.records.length === 0 && page.end) {
            await previous;
            state.done = true;
            return;
          }
          if (bucket !== null && page.records.length > 0) await sleep(bucket.reserve(page.records.length), signal);
          after = page.cursor;
          await slots.acquire();
          const batch = processBatch(state, page, previous).finally(() => slots.release());
          batch.catch((error: unknown) => {
            firstError ??= { error };
          });
          previous = batch;
          if (page.end) {
            await batch;
            state.done = true;
            return;
          }
          // Read the next page while this partition's batches are decoded and written.
          next = read();
        }
        await previous;
      } catch (error) {
        // The batches already handed over finish (and are counted) before the walk is given up:
        // a retry must not start, nor the summary be made, while a batch of this walk still writes.
        await previous.catch(() => {});
        throw error;
      }
    };

    const walkers: Promise<void>[] = [];
    // A partition is taken only while records are left to walk: the ones not taken stay not done.
    const takeNext = async (): Promise<void> => {
      for (let state = budget.exhausted ? undefined : queue.shift(); state !== undefined && !stopped(); state = budget.exhausted ? undefined : queue.shift()) {
        try {
          await walk(state);
        } catch (error) {
          firstError ??= { error };
        }
      }
    };
    for (let i = 0; i < Math.min(concurrency, queue.length); i++) walkers.push(takeNext());
    await Promise.all(walkers);
    if (firstError !== null) throw (firstError as { error: unknown }).error;
  };

  /** Walks every partition not done yet, with retries, until each is done or the run stops. */
  const walkShard = async (): Promise<void> => {
    for (;;) {
      let stream: ExtractStream<AnyAnswer> | null = null;
      try {
        stream = await options.openStream(format);
        await runOnce(stream);
        break;
      } catch (error) {
        const cause = error instanceof EarlierBatchFailedError ? error.causeError : error;
        if (!(backend.isTransient(cause) || isTransientDecodeError(cause)) || retries >= maxRetries) throw cause;
        retries++;
        const delay = backoffDelay(retries, backoff);
        log(`retry ${retries}/${maxRetries} in ${delay} ms after: ${cause instanceof Error ? cause.message : String(cause)}`);
        await sleep(delay, signal);
        if (signal?.aborted) break;
      } finally {
        await stream?.end().catch(() => {});
      }
    }
  };
  const walkedToEnd = (): boolean => states.every((s) => s.done) && signal?.aborted !== true;

  /**
   * The records the store lists as still without their write that neither this run nor an
   * earlier one (the report file) reported: by key, in the store's order.
   */
  const unaccountedRecords = async (): Promise<{ unaccounted: Map<string, Record<string, string>>; listed: number; complete: boolean }> => {
    let unwritten;
    for (;;) {
      try {
        unwritten = await backend.unwrittenKeys!(shard, options.accountingMaxKeys ?? ACCOUNTING_MAX_KEYS);
        break;
      } catch (error) {
        if (!backend.isTransient(error) || retries >= maxRetries) throw error;
        retries++;
        const delay = backoffDelay(retries, backoff);
        log(`retry ${retries}/${maxRetries} in ${delay} ms after: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(delay, signal);
      }
    }
    const unaccounted = new Map<string, Record<string, string>>();
    for (const key of unwritten.keys) {
      const fields = backend.describeKey(key);
      const id = JSON.stringify(fields);
      if (!reportedInThisRun.has(id)) unaccounted.set(id, fields);
    }
    if (options.reportPath !== undefined) await removeReportedKeys(options.reportPath, unaccounted);
    return { unaccounted, listed: unwritten.keys.length, complete: unwritten.complete };
  };
  const forgetCheckpoints = async (): Promise<void> => {
    if (canCheckpoint) for (const s of states) await backend.deleteCheckpoint?.(s.partition);
  };

  await walkShard();
  let accounting: Accounting | undefined;
  if (!dryRun && walkedToEnd()) {
    if (backend.unwrittenKeys === undefined) {
      accounting = {
        kind: 'not-counted',
        reason: backend.noAccountingReason ?? `the ${backend.name} store cannot list its records without their write cheaply`,
      };
    } else {
      let found = await unaccountedRecords();
      let rewalked = 0;
      if (found.unaccounted.size > 0) {
        // Rows archived behind the walk (a MongooseIM 3.3 node still running) or a walk that
        // passed over records: one more walk of the whole shard catches what it can.
        rewalked = found.unaccounted.size;
        log(`the walk ended with ${rewalked.toLocaleString('en-US')} record${rewalked === 1 ? '' : 's'} neither written nor reported: walking the shard again`);
        await forgetCheckpoints();
        for (const s of states) {
          s.committed = null;
          s.done = false;
        }
        await walkShard();
        // Stopped before the end (--limit, Ctrl-C): the next run continues this second walk.
        if (walkedToEnd()) found = await unaccountedRecords();
      }
      if (found.unaccounted.size > 0) {
        const rechecked = walkedToEnd();
        // The next run must walk again, not call the shard done.
        if (rechecked) await forgetCheckpoints();
        accounting = {
          rechecked,
          kind: 'unaccounted',
          count: found.unaccounted.size,
          more: !found.complete,
          examples: [...found.unaccounted.values()].slice(0, ACCOUNTING_EXAMPLES),
        };
      } else if (!found.complete) {
        accounting = { kind: 'partly-counted', listed: found.listed };
      } else {
        accounting = { kind: 'complete', rewalked };
      }
    }
  }

  const durationMs = performance.now() - started;
  progress.finish(snapshot());
  const reachedEnd = states.every((s) => s.done);
  return {
    backend: backend.name,
    shard: shardName(shard),
    dryRun,
    records: counters.records,
    written: counters.written,
    skipped: counters.skipped,
    reported: counters.reported,
    reportedByReason: { ...counters.reportedByReason },
    durationMs,
    recordsPerSecond: durationMs > 0 ? (counters.records * 1000) / durationMs : 0,
    retries,
    interrupted: signal?.aborted === true && !reachedEnd,
    reachedEnd,
    partitions: partitions.length,
    resumedPartitions,
    reportedBefore,
    ...(accounting === undefined ? {} : { accounting }),
  };
}

async function prepareSchema(backend: AnyBackend, apply: boolean, dryRun: boolean, log: (line: string) => void): Promise<void> {
  const schema = await backend.checkSchema();
  if (schema.ready) return;
  if (!apply) throw new SchemaNotReadyError(backend.name, schema.missing, schema.statements, schema.guide);
  if (dryRun) throw new SchemaNotReadyError(backend.name, [...schema.missing, 'a dry run never changes the schema'], schema.statements, schema.guide);
  // Several shards started together all try: a statement that loses the race fails, and the
  // next attempt runs only what is still missing.
  for (let attempt = 1; ; attempt++) {
    try {
      for (const statement of await backend.applySchema()) log(`schema: ran ${statement}`);
      return;
    } catch (error) {
      if (attempt >= SCHEMA_ATTEMPTS) throw error;
      await sleep(100 * attempt);
      if ((await backend.checkSchema()).ready) return;
    }
  }
}

/**
 * The walk's limits, the one place they are checked: by `runMigration`, and by the command line
 * before it opens anything (a refused flag must not follow a schema change). Throws `RangeError`
 * naming the flag.
 */
export function validateWalkOptions(options: {
  batchSize: number;
  maxBatchBytes: number;
  concurrency: number;
  shard: ShardSpec;
  limit?: number | undefined;
  maxRate?: number | undefined;
}): void {
  const { batchSize, maxBatchBytes, concurrency, shard, limit, maxRate } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`--batch-size must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${batchSize}`);
  }
  if (!Number.isInteger(maxBatchBytes) || maxBatchBytes < 1) {
    throw new RangeError(`--max-batch-bytes must be a positive integer, got ${maxBatchBytes}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`--concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`);
  }
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new RangeError(`--shard must be K/N with 0 <= K < N, got ${shard.index}/${shard.count}`);
  }
  if (shard.count > MAX_SHARDS) throw new RangeError(`--shard ${shard.index}/${shard.count}: at most ${MAX_SHARDS} shards`);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`--limit must be a non-negative integer, got ${limit}`);
  }
  if (maxRate !== undefined && !(maxRate > 0)) {
    throw new RangeError(`--max-rate must be a positive number of records per second, got ${maxRate}`);
  }
}

/**
 * The summary on stdout. Of the report it says only what this run appended: the file may hold
 * lines of earlier runs (records written since), or of another process given the same path, so
 * a count of the file's lines would say nothing true about what is left (`verify --complete` does).
 */
export function formatSummary(summary: MigrationSummary, reportPath?: string): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const reasons = Object.entries(summary.reportedByReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, count]) => `${reason} ${n(count)}`)
    .join(', ');
  const unaccounted = summary.accounting?.kind === 'unaccounted';
  const state = summary.interrupted
    ? 'interrupted (resume by running the same command again)'
    : unaccounted && summary.reachedEnd
      ? 'NOT done: the walk ended with records neither written nor reported'
      : summary.reachedEnd
        ? 'done (end reached)'
        : 'stopped at --limit (resume by running the same command again)';
  const lines = [
    `${summary.dryRun ? 'dry run' : 'migration'} ${summary.backend}, shard ${summary.shard} (${n(summary.partitions)} partition${summary.partitions === 1 ? '' : 's'}): ${state}`,
    `  records         ${n(summary.records)}`,
    `  ${summary.dryRun ? 'would write    ' : 'written        '} ${n(summary.written)}`,
    `  skipped         ${n(summary.skipped)}  (written meanwhile by someone else)`,
    `  reported        ${n(summary.reported)}${reasons ? `  (${reasons})` : ''}`,
    ...(summary.reportedBefore > 0 ? [`  reported before ${n(summary.reportedBefore)}  (in the report already: not decoded again)`] : []),
    `  duration        ${(summary.durationMs / 1000).toFixed(1)} s, ${n(Math.round(summary.recordsPerSecond))} records/s, ${summary.retries} retries`,
  ];
  if (summary.accounting !== undefined) lines.push(...formatAccounting(summary.accounting));
  if (reportPath !== undefined) {
    lines.push(
      `  report          ${reportPath}: ${n(summary.reported)} line${summary.reported === 1 ? '' : 's'} appended by this run (lines of earlier runs stay; verify --complete tells what is left)`,
    );
  }
  return lines.join('\n');
}

/** The summary's `accounted for` line (and, when records are unaccounted, the keys of the first few). */
export function formatAccounting(accounting: Accounting): string[] {
  const n = (x: number): string => x.toLocaleString('en-US');
  switch (accounting.kind) {
    case 'complete':
      return [
        `  accounted for: every record written or reported` +
          (accounting.rewalked > 0 ? ` (${n(accounting.rewalked)} found without their write after the walk were caught by walking the shard again)` : ''),
      ];
    case 'partly-counted':
      return [
        `  accounted for: the first ${n(accounting.listed)} records the store lists without their write are all reported; it holds more, not listed; run verify --complete`,
      ];
    case 'not-counted':
      return [`  accounted for: not counted (${accounting.reason}); run verify --complete`];
    case 'unaccounted':
      return [
        `  accounted for: NO: ${accounting.more ? 'at least ' : ''}${n(accounting.count)} record${accounting.count === 1 ? '' : 's'} neither written nor reported` +
          (accounting.rechecked
            ? ` after walking the shard twice; the checkpoints are deleted, so the next run walks the shard again`
            : ` after the walk; a second walk stopped before its end, and the next run continues it`) +
          `; verify --complete lists them all. For example:`,
        ...accounting.examples.map((fields) => `    ${JSON.stringify(fields)}`),
      ];
  }
}

/** `migrate`'s exit status for a run that ended without an error: 130 interrupted, 5 records neither written nor reported, else 0. */
export function migrationExitStatus(summary: MigrationSummary): number {
  if (summary.interrupted) return 130;
  return summary.accounting?.kind === 'unaccounted' ? 5 : 0;
}
