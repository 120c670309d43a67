/**
 * `verify`: re-decodes a random sample of records that already have their write, and asks the
 * backend whether what it holds is what the payload says; `--complete` walks every record and
 * also finds those neither written nor reported.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import { SILENT_PROGRESS, type ProgressReporter, type ProgressSnapshot } from './progress.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../common/backoff.js';
import { removeReportedKeys } from './report-keys.js';
import { DEFAULT_BACKOFF, isTransientDecodeError } from './retry.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_RETRIES } from './run-migration.js';
import {
  WHOLE_TABLE,
  shardName,
  type AnyAnswer,
  type AnyBackend,
  type ExtractStream,
  type MismatchKind,
  type OpenExtractStream,
  type Partition,
  type ShardSpec,
} from './types.js';

export const DEFAULT_VERIFY_SAMPLE = 1000;

// The key type of whichever backend was verified (AnyBackend's).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface VerifyMismatch<Key = any> {
  readonly key: Key;
  /** The key as the backend names its fields. */
  readonly fields: Record<string, string>;
  /** What the store holds, in words. */
  readonly stored: string;
  readonly kind: MismatchKind;
  readonly detail: string;
}

export interface VerifySummary {
  readonly checked: number;
  readonly matching: number;
  readonly mismatches: VerifyMismatch[];
}

export async function runVerify(options: {
  backend: AnyBackend;
  openStream: OpenExtractStream;
  format?: PayloadFormat;
  sample?: number;
}): Promise<VerifySummary> {
  const backend = options.backend;
  const format = options.format ?? backend.defaultFormat;
  const samples = await backend.sampleForVerify(options.sample ?? DEFAULT_VERIFY_SAMPLE);
  const stream = await options.openStream(format);
  try {
    const answers = samples.length === 0 ? [] : await stream.extract(samples.map((s, i) => ({ key: String(i), payload: s.payload })));
    if (answers.length !== samples.length) throw new Error(`decoding answered ${answers.length} results for ${samples.length} samples`);
    const mismatches: VerifyMismatch[] = [];
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i];
      const mismatch = await backend.verifyAnswer(sample, answers[i]);
      if (mismatch !== null) mismatches.push({ key: sample.key, fields: backend.describeKey(sample.key), stored: sample.stored, ...mismatch });
    }
    return { checked: samples.length, matching: samples.length - mismatches.length, mismatches };
  } finally {
    await stream.end().catch(() => {});
  }
}

/** How `verify --complete` finds each record. */
export type CompleteClass = 'written_right' | 'written_wrong' | 'not_written_reported' | 'not_written_unreported';

export const COMPLETE_CLASSES: readonly CompleteClass[] = ['written_right', 'written_wrong', 'not_written_reported', 'not_written_unreported'];

/** One record of the two classes `verify --complete` lists: written wrong, or neither written nor reported. */
export interface CompleteFinding {
  readonly fields: Record<string, string>;
  readonly class: 'written_wrong' | 'not_written_unreported';
  /** What the store holds, in words ('' when nothing is written). */
  readonly stored: string;
  /** For `written_wrong`: what is wrong. */
  readonly kind?: MismatchKind;
  readonly detail: string;
}

export interface CompleteVerifySummary {
  readonly backend: string;
  readonly shard: string;
  readonly partitions: number;
  readonly scanned: number;
  readonly counts: Readonly<Record<CompleteClass, number>>;
  readonly durationMs: number;
  readonly retries: number;
}

export interface CompleteVerifyOptions {
  readonly backend: AnyBackend;
  readonly openStream: OpenExtractStream;
  readonly format?: PayloadFormat;
  readonly shard?: ShardSpec;
  /** Report files of `migrate` for this shard: a record without its write named in one is reported. */
  readonly reportPaths: readonly string[];
  /** Called once per record written wrong, or neither written nor reported. */
  readonly onFinding: (finding: CompleteFinding) => void;
  readonly batchSize?: number;
  readonly maxBatchBytes?: number;
  /** Partitions walked at once, each one page at a time. */
  readonly concurrency?: number;
  readonly progress?: ProgressReporter;
  readonly maxRetries?: number;
  readonly backoff?: BackoffPolicy;
  /**
   * Records without their write held until the report files are read (then they are classified
   * and forgotten): bounds memory whatever the archive's size; more of them only means reading
   * the report files more than once.
   */
  readonly pendingMax?: number;
  readonly log?: (line: string) => void;
}

export const DEFAULT_COMPLETE_PENDING_MAX = 500_000;
const DEFAULT_COMPLETE_CONCURRENCY = 2;

/**
 * `verify --complete`: one walk over every record of the shard (`backend.scanPage`), each record
 * classified: written and right (its payload, decoded again, says what the store holds), written
 * and wrong, not written and reported (named by a report file), not written and not reported.
 * Only pages and a bounded set of keys are held, never the archive.
 */
export async function runVerifyComplete(options: CompleteVerifyOptions): Promise<CompleteVerifySummary> {
  const backend = options.backend;
  const scanPage = backend.scanPage?.bind(backend);
  if (scanPage === undefined) throw new Error(`verify --complete is not available for ${backend.name}: the backend cannot walk every record`);
  const shard = options.shard ?? WHOLE_TABLE;
  const format = options.format ?? backend.defaultFormat;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const concurrency = options.concurrency ?? DEFAULT_COMPLETE_CONCURRENCY;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const pendingMax = options.pendingMax ?? DEFAULT_COMPLETE_PENDING_MAX;
  const progress = options.progress ?? SILENT_PROGRESS;
  const log = options.log ?? (() => {});

  const partitions = await backend.partitions(shard);
  const estimate = await backend.estimate(partitions);
  const counts: Record<CompleteClass, number> = { written_right: 0, written_wrong: 0, not_written_reported: 0, not_written_unreported: 0 };
  let scanned = 0;
  let retries = 0;
  const started = performance.now();
  const snapshot = (): ProgressSnapshot => ({
    records: scanned,
    written: counts.written_right + counts.written_wrong,
    notWritten: scanned - counts.written_right - counts.written_wrong,
    estimate,
    elapsedMs: performance.now() - started,
  });

  // Records without their write, by key, until the report files say which are reported.
  let pending = new Map<string, Record<string, string>>();
  let resolving: Promise<void> = Promise.resolve();
  const resolvePending = async (): Promise<void> => {
    const batch = pending;
    pending = new Map();
    const before = batch.size;
    for (const path of options.reportPaths) await removeReportedKeys(path, batch);
    counts.not_written_reported += before - batch.size;
    counts.not_written_unreported += batch.size;
    for (const fields of batch.values()) {
      options.onFinding({ fields, class: 'not_written_unreported', stored: '', detail: 'no write, and no line in the report' });
    }
  };

  const retrying = async <T>(what: () => Promise<T>, onFailure?: () => Promise<void>): Promise<T> => {
    for (;;) {
      try {
        return await what();
      } catch (error) {
        if (!(backend.isTransient(error) || isTransientDecodeError(error)) || retries >= maxRetries) throw error;
        retries++;
        const delay = backoffDelay(retries, backoff);
        log(`retry ${retries}/${maxRetries} in ${delay} ms after: ${error instanceof Error ? error.message : String(error)}`);
        await onFailure?.();
        await sleep(delay);
      }
    }
  };

  const walk = async (partition: Partition): Promise<void> => {
    let stream: ExtractStream<AnyAnswer> | null = null;
    const reopen = async (): Promise<void> => {
      await stream?.end().catch(() => {});
      stream = null;
    };
    try {
      let after: unknown = null;
      for (;;) {
        const page = await retrying(() => scanPage(partition, after, { records: batchSize, bytes: maxBatchBytes }));
        const written = page.records.filter((r) => r.written);
        const answers =
          written.length === 0
            ? []
            : await retrying(async () => {
                stream ??= await options.openStream(format);
                return stream.extract(written.map((r, i) => ({ key: String(i), payload: r.payload })));
              }, reopen);
        if (answers.length !== written.length) throw new Error(`decoding answered ${answers.length} results for ${written.length} records`);
        for (let i = 0; i < written.length; i++) {
          const record = written[i];
          if (answers[i].key !== String(i)) throw new Error(`decoding answered key ${answers[i].key} at position ${i}: results out of order`);
          const mismatch = await backend.verifyAnswer(record, answers[i]);
          if (mismatch === null) {
            counts.written_right++;
          } else {
            counts.written_wrong++;
            options.onFinding({
              fields: backend.describeKey(record.key),
              class: 'written_wrong',
              stored: record.stored,
              kind: mismatch.kind,
              detail: mismatch.detail,
            });
          }
        }
        for (const record of page.records) {
          if (record.written) continue;
          const fields = backend.describeKey(record.key);
          pending.set(JSON.stringify(fields), fields);
        }
        if (pending.size >= pendingMax) {
          // One reader of the report files at a time; the walk waits while they are read.
          resolving = resolving.then(resolvePending);
          await resolving;
        }
        scanned += page.records.length;
        progress.update(snapshot());
        if (page.end || page.cursor === null) return;
        after = page.cursor;
      }
    } finally {
      await reopen();
    }
  };

  const queue = [...partitions];
  const walkers: Promise<void>[] = [];
  let failure: { error: unknown } | null = null;
  const takeNext = async (): Promise<void> => {
    for (let partition = queue.shift(); partition !== undefined && failure === null; partition = queue.shift()) {
      try {
        await walk(partition);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  for (let i = 0; i < Math.min(concurrency, queue.length); i++) walkers.push(takeNext());
  await Promise.all(walkers);
  if (failure !== null) throw (failure as { error: unknown }).error;
  resolving = resolving.then(resolvePending);
  await resolving;
  progress.finish(snapshot());
  return {
    backend: backend.name,
    shard: shardName(shard),
    partitions: partitions.length,
    scanned,
    counts: { ...counts },
    durationMs: performance.now() - started,
    retries,
  };
}

/** The counts on stderr, one line. */
export function formatCompleteSummary(summary: CompleteVerifySummary): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const c = summary.counts;
  return (
    `verify ${summary.backend} --complete, shard ${summary.shard} (${n(summary.partitions)} partition${summary.partitions === 1 ? '' : 's'}): ` +
    `${n(summary.scanned)} records: ${n(c.written_right)} written right, ${n(c.written_wrong)} written wrong, ` +
    `${n(c.not_written_reported)} not written and reported, ${n(c.not_written_unreported)} not written and not reported`
  );
}

/** 3 when a record is written wrong or neither written nor reported, else 0. */
export function completeExitStatus(summary: CompleteVerifySummary): number {
  return summary.counts.written_wrong > 0 || summary.counts.not_written_unreported > 0 ? 3 : 0;
}

/**
 * The sample's verdict: 0 when every record checked matches, 3 on a mismatch, and 3 when nothing
 * was checked (a check of nothing proves nothing: no record has its write yet).
 */
export function sampleOutcome(backendName: string, summary: VerifySummary): { status: number; message: string } {
  const n = summary.mismatches.length;
  if (summary.checked === 0) {
    return { status: 3, message: `verify ${backendName}: nothing to check: no record has its write yet; run migrate first or use --complete` };
  }
  return {
    status: n === 0 ? 0 : 3,
    message: `verify ${backendName}: ${summary.checked} records checked, ${summary.matching} match, ${n} mismatch${n === 1 ? '' : 'es'}`,
  };
}
