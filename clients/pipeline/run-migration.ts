/**
 * The backfill, backend-agnostic: read pages by keyset, decode each page as one batch through the
 * decoding stream, write each batch back with its checkpoint. Reading, decoding and writing
 * overlap: up to `concurrency` batches are in flight (being decoded or written) while the next
 * page is read; commits happen strictly in key order, so the checkpoint never passes a batch that
 * is not committed, and a restart resumes exactly where the last commit left off.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import { SILENT_PROGRESS, type ProgressReporter, type ProgressSnapshot } from './progress.js';
import { TokenBucket, sleep } from './rate-limiter.js';
import type { NotWrittenRow, ReportSink } from './report.js';
import { DEFAULT_BACKOFF, backoffDelay, isTransientDecodeError, type BackoffPolicy } from './retry.js';
import {
  WHOLE_TABLE,
  shardName,
  type Backend,
  type ExtractResult,
  type ExtractStream,
  type NotWrittenReason,
  type OpenExtractStream,
  type RowKey,
  type SenderWrite,
  type ShardSpec,
  type SourceRow,
} from './types.js';

export const DEFAULT_BATCH_SIZE = 2000;
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_MAX_RETRIES = 20;
/** Largest batch accepted: a batch is one statement and (usually) one decode request; the sidecar takes 10,000 items per request by default. */
export const MAX_BATCH_SIZE = 10_000;
/** A page's payloads go to the decoder in requests of at most this many bytes (the sidecar refuses requests over 64 MiB by default). */
export const MAX_DECODE_REQUEST_BYTES = 16 * 1024 * 1024;
export const MAX_CONCURRENCY = 64;
const SCHEMA_ATTEMPTS = 5;

export interface MigrationOptions {
  readonly backend: Backend;
  readonly openStream: OpenExtractStream;
  readonly format?: PayloadFormat;
  readonly batchSize?: number;
  readonly concurrency?: number;
  /** Most rows to walk in this run. */
  readonly limit?: number;
  readonly shard?: ShardSpec;
  /** Decode and report, write nothing (no ids created, no checkpoint). */
  readonly dryRun?: boolean;
  /** Rows per second, averaged; undefined = uncapped. */
  readonly maxRate?: number;
  /** Run the upgrade guide's schema statements when `sender_id` or its index is missing. */
  readonly applySchema?: boolean;
  /** Forget this shard's checkpoint and walk from the first key. */
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
  /** Rows decoded and accounted for in this run. */
  readonly processed: number;
  /** Rows whose sender_id was set (in a dry run: would be set). */
  readonly written: number;
  /** Rows decoded fine whose sender_id someone else set meanwhile. */
  readonly skipped: number;
  /** Rows left untouched, by reason; each one is in the report. */
  readonly failedByReason: Record<string, number>;
  readonly failed: number;
  readonly durationMs: number;
  readonly rowsPerSecond: number;
  readonly retries: number;
  /** True when the run stopped on the signal (Ctrl-C) before the end. */
  readonly interrupted: boolean;
  /** True when the walk reached the end of the table (not stopped by --limit or the signal). */
  readonly reachedEnd: boolean;
  readonly startedAfter: RowKey | null;
  readonly lastKey: RowKey | null;
}

export class SchemaNotReadyError extends Error {
  constructor(readonly missing: string[], readonly statements: string[]) {
    super(
      `mam_muc_message is not ready for the backfill: ${missing.join('; ')}.\n` +
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

  account(processed: number, written: number, resolved: number, notWritten: readonly NotWrittenRow[]): void {
    this.processed += processed;
    this.written += written;
    this.skipped += resolved - written;
    this.failed += notWritten.length;
    for (const row of notWritten) this.failedByReason[row.reason] = (this.failedByReason[row.reason] ?? 0) + 1;
  }
}

/** Splits decoded results into rows to write and rows to report. */
export function classifyResults(
  rows: readonly SourceRow[],
  results: readonly ExtractResult[],
  checkStorable: (user: string, server: string) => string | null,
): { writes: SenderWrite[]; notWritten: NotWrittenRow[] } {
  if (results.length !== rows.length) {
    throw new Error(`decoding answered ${results.length} results for a batch of ${rows.length} rows`);
  }
  const writes: SenderWrite[] = [];
  const notWritten: NotWrittenRow[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const result = results[i];
    if (result.key !== String(i)) {
      throw new Error(`decoding answered key ${result.key} at position ${i}: results out of order`);
    }
    if (!result.ok) {
      notWritten.push({ key: row.key, reason: result.code, detail: result.detail });
      continue;
    }
    const reason: NotWrittenReason | null =
      result.user === '' ? 'jid_without_local_part' : result.server === '' ? 'jid_without_domain' : null;
    if (reason !== null) {
      notWritten.push({ key: row.key, reason, detail: `JID '${result.bareJid}' cannot be split into user and server` });
      continue;
    }
    const unstorable = checkStorable(result.user, result.server);
    if (unstorable !== null) {
      notWritten.push({ key: row.key, reason: 'jid_not_storable', detail: `JID '${result.bareJid}': ${unstorable}` });
      continue;
    }
    writes.push({ key: row.key, user: result.user, server: result.server });
  }
  return { writes, notWritten };
}

export async function runMigration(options: MigrationOptions): Promise<MigrationSummary> {
  const backend = options.backend;
  const shard = options.shard ?? WHOLE_TABLE;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const format = options.format ?? 'eterm';
  const dryRun = options.dryRun ?? false;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const progress = options.progress ?? SILENT_PROGRESS;
  const log = options.log ?? (() => {});
  const signal = options.signal;
  validate(batchSize, concurrency, shard, options.limit, options.maxRate);

  const schema = await backend.checkSchema();
  if (!schema.ready) {
    if (!options.applySchema) throw new SchemaNotReadyError(schema.missing, schema.statements);
    if (dryRun) {
      throw new SchemaNotReadyError([...schema.missing, 'a dry run never changes the schema'], schema.statements);
    }
    // Several shards started together all try: a statement that loses the race fails, and the
    // next attempt runs only what is still missing.
    for (let attempt = 1; ; attempt++) {
      try {
        for (const statement of await backend.applySchema()) log(`schema: ran ${statement}`);
        break;
      } catch (error) {
        if (attempt >= SCHEMA_ATTEMPTS) throw error;
        await sleep(100 * attempt);
        if ((await backend.checkSchema()).ready) break;
      }
    }
  }
  if (!dryRun) {
    await backend.ensureCheckpointTable().catch(async () => {
      // CREATE TABLE IF NOT EXISTS can still collide when shards start together: once more.
      await backend.ensureCheckpointTable();
    });
    if (options.reset) await backend.deleteCheckpoint(shard);
  }
  const startedAfter = options.reset ? null : await backend.readCheckpoint(shard);
  if (startedAfter !== null) log(`resuming shard ${shardName(shard)} after (room_id ${startedAfter.roomId}, id ${startedAfter.id})`);
  let estimate = await backend.estimateRows(shard);
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

  // The last key whose batch is committed (or, in a dry run, accounted): retries resume after it.
  let committedKey: RowKey | null = startedAfter;
  let reachedEnd = false;
  let retries = 0;

  const runOnce = async (stream: ExtractStream): Promise<void> => {
    // The end only counts once every batch before it committed: a failed attempt walks again.
    reachedEnd = false;
    let after = committedKey;
    let read = counters.processed;
    let previous: Promise<void> = Promise.resolve();
    const inFlight: Promise<void>[] = [];
    let firstError: { error: unknown } | null = null;
    const pageSize = (): number => (options.limit === undefined ? batchSize : Math.min(batchSize, options.limit - read));
    const readNext = (): Promise<SourceRow[]> | null => {
      const size = pageSize();
      if (size <= 0 || signal?.aborted || firstError !== null) return null;
      const page = backend.readPage(after, size, shard);
      page.catch(() => {}); // awaited below, or abandoned after a failure elsewhere
      return page;
    };

    let next = readNext();
    while (next !== null) {
      const rows = await next;
      if (rows.length === 0) {
        reachedEnd = true;
        break;
      }
      if (bucket !== null) await sleep(bucket.reserve(rows.length), signal);
      after = rows[rows.length - 1].key;
      read += rows.length;
      const batch = processBatch(stream, rows, previous);
      batch.catch((error: unknown) => {
        firstError ??= { error };
      });
      previous = batch;
      inFlight.push(batch);
      // Read the next page while the batches in flight are decoded and written.
      next = readNext();
      while (inFlight.length >= concurrency) await inFlight.shift()!.catch(() => {});
      if (firstError !== null || signal?.aborted) break;
    }
    await Promise.allSettled(inFlight);
    if (firstError !== null) throw (firstError as { error: unknown }).error;
  };

  const processBatch = async (stream: ExtractStream, rows: SourceRow[], previous: Promise<void>): Promise<void> => {
    const results = await decodeInRequests(stream, rows, format);
    const { writes, notWritten } = classifyResults(rows, results, (u, s) => backend.checkStorable(u, s));
    const lastKey = rows[rows.length - 1].key;
    let written = writes.length;
    if (dryRun) {
      await previous;
    } else {
      written = (await backend.writeBatch(writes, lastKey, shard, previous)).written;
    }
    counters.account(rows.length, written, writes.length, notWritten);
    options.report.append(notWritten);
    committedKey = lastKey;
    progress.update(snapshot());
  };

  for (;;) {
    let stream: ExtractStream | null = null;
    try {
      stream = await options.openStream(format);
      await runOnce(stream);
      break;
    } catch (error) {
      if (!(backend.isTransient(error) || isTransientDecodeError(error)) || retries >= maxRetries) throw error;
      retries++;
      const delay = backoffDelay(retries, backoff);
      log(`retry ${retries}/${maxRetries} in ${delay} ms after: ${error instanceof Error ? error.message : String(error)}`);
      await sleep(delay, signal);
      if (signal?.aborted) break;
    } finally {
      await stream?.end().catch(() => {});
    }
  }

  const durationMs = performance.now() - started;
  progress.finish(snapshot());
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
    startedAfter,
    lastKey: committedKey,
  };
}

/** Decodes a page, split into requests of bounded size (a few huge payloads must not make one giant request). */
async function decodeInRequests(stream: ExtractStream, rows: readonly SourceRow[], format: PayloadFormat): Promise<ExtractResult[]> {
  const requests: Promise<ExtractResult[]>[] = [];
  let items: { key: string; payload: Uint8Array; format: PayloadFormat }[] = [];
  let bytes = 0;
  rows.forEach((row, i) => {
    if (items.length > 0 && bytes + row.payload.length > MAX_DECODE_REQUEST_BYTES) {
      requests.push(stream.extract(items));
      items = [];
      bytes = 0;
    }
    items.push({ key: String(i), payload: row.payload, format });
    bytes += row.payload.length;
  });
  if (items.length > 0) requests.push(stream.extract(items));
  return (await Promise.all(requests)).flat();
}

function validate(batchSize: number, concurrency: number, shard: ShardSpec, limit?: number, maxRate?: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`--batch-size must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${batchSize}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`--concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`);
  }
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new RangeError(`--shard must be K/N with 0 <= K < N, got ${shard.index}/${shard.count}`);
  }
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`--limit must be a non-negative integer, got ${limit}`);
  }
  if (maxRate !== undefined && !(maxRate > 0)) {
    throw new RangeError(`--max-rate must be a positive number of rows per second, got ${maxRate}`);
  }
}

export function formatSummary(summary: MigrationSummary, reportPath?: string): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const reasons = Object.entries(summary.failedByReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, count]) => `${reason} ${n(count)}`)
    .join(', ');
  const state = summary.interrupted
    ? 'interrupted (resume by running the same command again)'
    : summary.reachedEnd
      ? 'done (end of table reached)'
      : 'stopped at --limit (resume by running the same command again)';
  const lines = [
    `${summary.dryRun ? 'dry run' : 'migration'} ${summary.backend}, shard ${summary.shard}: ${state}`,
    `  rows processed  ${n(summary.processed)}`,
    `  ${summary.dryRun ? 'would write    ' : 'written        '} ${n(summary.written)}`,
    `  skipped         ${n(summary.skipped)}  (sender_id set meanwhile by someone else)`,
    `  failed          ${n(summary.failed)}${reasons ? `  (${reasons})` : ''}`,
    `  duration        ${(summary.durationMs / 1000).toFixed(1)} s, ${n(Math.round(summary.rowsPerSecond))} rows/s, ${summary.retries} retries`,
  ];
  if (reportPath !== undefined) lines.push(`  report          ${reportPath}${summary.failed > 0 ? '' : ' (empty)'}`);
  return lines.join('\n');
}
