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
import { TokenBucket, sleep } from './rate-limiter.js';
import { ReportedInThisRun, type ReportedRecord, type ReportSink } from './report.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from './ordering.js';
import { DEFAULT_BACKOFF, backoffDelay, isTransientDecodeError, type BackoffPolicy } from './retry.js';
import {
  WHOLE_TABLE,
  shardName,
  type AnyBackend,
  type ExtractResult,
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
  /** Records decoded and accounted for in this run. */
  readonly processed: number;
  /** Records written (in a dry run: that would be written). */
  readonly written: number;
  /** Records decoded fine that someone else wrote meanwhile. */
  readonly skipped: number;
  /** Records left untouched, by reason; each one is in the report. */
  readonly failedByReason: Record<string, number>;
  readonly failed: number;
  readonly durationMs: number;
  readonly rowsPerSecond: number;
  readonly retries: number;
  /** True when the run stopped on the signal (Ctrl-C) before the end. */
  readonly interrupted: boolean;
  /** True when every partition was walked to its end (not stopped by --limit or the signal). */
  readonly reachedEnd: boolean;
  readonly partitions: number;
  /** Partitions that started from a saved checkpoint. */
  readonly resumedPartitions: number;
}

export class SchemaNotReadyError extends Error {
  constructor(readonly backendName: string, readonly missing: string[], readonly statements: string[]) {
    super(
      `the ${backendName} archive is not ready for the backfill: ${missing.join('; ')}.\n` +
        `Run these statements (the MongooseIM 3.3.0 -> 3.4.0 upgrade guide's step 1), or pass --apply-schema:\n` +
        statements.map((s) => `  ${s}`).join('\n'),
    );
    this.name = 'SchemaNotReadyError';
  }
}

class Counters {
  processed = 0;
  written = 0;
  skipped = 0;
  failed = 0;
  readonly failedByReason: Record<string, number> = {};

  account(processed: number, written: number, planned: number, notWritten: readonly ReportedRecord[]): void {
    this.processed += processed;
    this.written += written;
    this.skipped += Math.max(0, planned - written);
    this.failed += notWritten.length;
    for (const row of notWritten) this.failedByReason[row.reason] = (this.failedByReason[row.reason] ?? 0) + 1;
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
  answers: readonly ExtractResult[],
): { writes: PlannedWrite<Key, Write>[]; notWritten: NotWrittenRecord<Key>[] } {
  if (answers.length !== records.length) {
    throw new Error(`decoding answered ${answers.length} results for a batch of ${records.length} records`);
  }
  const writes: PlannedWrite<Key, Write>[] = [];
  const notWritten: NotWrittenRecord<Key>[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const answer = answers[i];
    if (answer.key !== String(i)) throw new Error(`decoding answered key ${answer.key} at position ${i}: results out of order`);
    const decision = backend.decide(record, answer);
    if ('write' in decision) writes.push({ key: record.key, write: decision.write as Write });
    else notWritten.push({ key: record.key, reason: decision.reason, detail: decision.detail });
  }
  return { writes, notWritten };
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
    done: counters.processed,
    written: counters.written,
    notWritten: counters.failed,
    estimate,
    elapsedMs: performance.now() - started,
  });
  // Records handed out to batches in this run, reserved before each read so that --limit holds
  // across partitions read at the same time.
  let reserved = 0;
  let retries = 0;

  const reportedInThisRun = new ReportedInThisRun();
  const describe = (notWritten: readonly NotWrittenRecord<unknown>[]): ReportedRecord[] =>
    notWritten.map((r) => ({ key: r.key, fields: backend.describeKey(r.key), reason: r.reason, detail: r.detail }));
  // Before the batch commits: a crash may repeat a line on resume, never lose one.
  const report = (records: readonly ReportedRecord[]): void => options.report.append(records.filter((r) => reportedInThisRun.firstTime(r)));

  const runOnce = async (stream: ExtractStream): Promise<void> => {
    const slots = new Slots(concurrency);
    let firstError: { error: unknown } | null = null;
    const stopped = (): boolean => firstError !== null || signal?.aborted === true;
    const queue = states.filter((s) => !s.done);

    const processBatch = async (state: PartitionState, page: Page<unknown, unknown>, previous: Promise<void>): Promise<void> => {
      const records = page.records;
      const answers = records.length === 0 ? [] : await stream.extract(records.map((r, i) => ({ key: String(i), payload: r.payload })));
      const { writes, notWritten } = decideBatch(backend, records, answers);
      const failed = describe(notWritten);
      report(failed);
      let written = writes.length;
      let refused: ReportedRecord[] = [];
      if (dryRun) {
        await awaitEarlierBatches(previous);
      } else {
        const outcome = await backend.writeBatch(state.partition, writes, page.cursor, previous);
        written = outcome.written;
        refused = describe(outcome.refused ?? []);
        report(refused);
        await awaitEarlierBatches(previous);
        if (backend.checkpointMode === 'after-write' && page.cursor !== null) await backend.saveCheckpoint!(state.partition, page.cursor);
      }
      counters.account(records.length, written, writes.length - refused.length, [...failed, ...refused]);
      state.committed = page.cursor;
      progress.update(snapshot());
    };

    const walk = async (state: PartitionState): Promise<void> => {
      let after = state.committed;
      let previous: Promise<void> = Promise.resolve();
      const read = (): Promise<Page<unknown, unknown>> | null => {
        const rows = options.limit === undefined ? batchSize : Math.min(batchSize, options.limit - reserved);
        if (rows <= 0 || stopped()) return null;
        reserved += rows;
        const pending = backend.readPage(state.partition, after, { rows, bytes: maxBatchBytes }).then(
          (page) => {
            reserved -= rows - page.records.length;
            return page;
          },
          (error: unknown) => {
            reserved -= rows;
            throw error;
          },
        );
        pending.catch(() => {}); // awaited below, or abandoned after a failure elsewhere
        return pending;
      };
      let next = read();
      while (next !== null) {
        const page = await next;
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
    };

    const walkers: Promise<void>[] = [];
    const takeNext = async (): Promise<void> => {
      for (let state = queue.shift(); state !== undefined && !stopped(); state = queue.shift()) {
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

  for (;;) {
    let stream: ExtractStream | null = null;
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

  const durationMs = performance.now() - started;
  progress.finish(snapshot());
  const reachedEnd = states.every((s) => s.done);
  return {
    backend: backend.name,
    shard: shardName(shard),
    dryRun,
    processed: counters.processed,
    written: counters.written,
    skipped: counters.skipped,
    failed: counters.failed,
    failedByReason: { ...counters.failedByReason },
    durationMs,
    rowsPerSecond: durationMs > 0 ? (counters.processed * 1000) / durationMs : 0,
    retries,
    interrupted: signal?.aborted === true && !reachedEnd,
    reachedEnd,
    partitions: partitions.length,
    resumedPartitions,
  };
}

async function prepareSchema(backend: AnyBackend, apply: boolean, dryRun: boolean, log: (line: string) => void): Promise<void> {
  const schema = await backend.checkSchema();
  if (schema.ready) return;
  if (!apply) throw new SchemaNotReadyError(backend.name, schema.missing, schema.statements);
  if (dryRun) throw new SchemaNotReadyError(backend.name, [...schema.missing, 'a dry run never changes the schema'], schema.statements);
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

export function formatSummary(summary: MigrationSummary, reportPath?: string, reportLinesBefore?: number): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const reasons = Object.entries(summary.failedByReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, count]) => `${reason} ${n(count)}`)
    .join(', ');
  const state = summary.interrupted
    ? 'interrupted (resume by running the same command again)'
    : summary.reachedEnd
      ? 'done (end reached)'
      : 'stopped at --limit (resume by running the same command again)';
  const lines = [
    `${summary.dryRun ? 'dry run' : 'migration'} ${summary.backend}, shard ${summary.shard} (${n(summary.partitions)} partition${summary.partitions === 1 ? '' : 's'}): ${state}`,
    `  records         ${n(summary.processed)}`,
    `  ${summary.dryRun ? 'would write    ' : 'written        '} ${n(summary.written)}`,
    `  skipped         ${n(summary.skipped)}  (written meanwhile by someone else)`,
    `  failed          ${n(summary.failed)}${reasons ? `  (${reasons})` : ''}`,
    `  duration        ${(summary.durationMs / 1000).toFixed(1)} s, ${n(Math.round(summary.rowsPerSecond))} records/s, ${summary.retries} retries`,
  ];
  if (reportPath !== undefined) {
    const before = reportLinesBefore ?? 0;
    lines.push(`  report          ${reportPath}: ${n(summary.failed)} line${summary.failed === 1 ? '' : 's'} added by this run, ${n(before + summary.failed)} in the file`);
  }
  return lines.join('\n');
}
