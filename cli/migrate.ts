/**
 * `mim-sender-jid migrate KIND [flags]`: the MongooseIM 3.3 -> 3.4 sender backfill for one store
 * (KIND: a backend of clients/backends/registry.ts). Summary on stdout; progress and logs
 * on stderr; every record not written in the JSONL report.
 */
import { BACKEND_KINDS, type FlagSpec } from '../clients/backends/registry.js';
import { openDecoder, streamOpener } from '../clients/decoder-client/index.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { JsonlReport, ReportFileError } from '../clients/pipeline/report.js';
import { defaultReportPath, reportKind } from '../clients/pipeline/report-keys.js';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_RETRIES,
  formatSummary,
  MAX_BATCH_SIZE,
  MAX_CONCURRENCY,
  MAX_SHARDS,
  migrationExitStatus,
  runMigration,
  SchemaNotReadyError,
  validateWalkOptions,
} from '../clients/pipeline/run-migration.js';
import { shardName, type AnyBackend } from '../clients/pipeline/types.js';
import type { Subcommand } from './cli.js';
import { backendList, DECODER_USAGE, describeFailure, parseCount, parseShard, readCommandLine, UsageError, type ParsedCommand } from './options.js';

const DEFAULT_PROGRESS_INTERVAL_S = 10;
const DEFAULT_STOP_GRACE_S = 30;
/** A stop signal this soon after the first one is the same request, not "quit now". */
const REPEATED_SIGNAL_MS = 1000;

const MIGRATE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'batch-size': { type: 'string' },
  'max-batch-bytes': { type: 'string' },
  concurrency: { type: 'string' },
  limit: { type: 'string' },
  shard: { type: 'string' },
  'max-rate': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'apply-schema': { type: 'boolean' },
  reset: { type: 'boolean' },
  report: { type: 'string' },
  'max-retries': { type: 'string' },
  'progress-interval': { type: 'string' },
  'stop-grace': { type: 'string' },
};

const MIGRATE_USAGE = `  --batch-size N         records per page, decode request and write (default ${DEFAULT_BATCH_SIZE}, at most ${MAX_BATCH_SIZE})
  --max-batch-bytes N    payload bytes per page at most: a page stops early when full (default ${DEFAULT_MAX_BATCH_BYTES})
  --concurrency N        batches in flight (decoding or writing) while the next pages are read (default ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY})
  --limit N              walk at most N records in this run
  --shard K/N            handle only the K-th of N disjoint parts (run N processes, K = 0..N-1; N at most ${MAX_SHARDS})
  --max-rate R           at most R records per second on average (default: uncapped)
  --dry-run              decode and report, write nothing (no checkpoint either; its report is
                         its own: ...-dry-run.jsonl by default)
  --apply-schema         run the upgrade guide's schema step when something is missing
  --reset                forget this shard's checkpoints and start from the beginning (truncates the
                         report; with --dry-run: only the dry run's, and no checkpoint is touched)
  --report PATH          JSONL of records not written (default ./mim-sender-jid-report-KIND-shard-K-of-N.jsonl)
  --max-retries N        retries of transient failures (connection lost, node restart) (default ${DEFAULT_MAX_RETRIES})
  --progress-interval S  seconds between progress lines when stderr is not a terminal (default ${DEFAULT_PROGRESS_INTERVAL_S})
  --stop-grace S         after Ctrl-C or SIGTERM, seconds given to the batches in flight before quitting anyway (default ${DEFAULT_STOP_GRACE_S})`;

async function usage(kind?: string, own?: string): Promise<string> {
  return `usage: mim-sender-jid migrate ${kind ?? 'KIND'} [options]

Backfills the sender of MongooseIM 3.3 MUC archive records (3.3.0 -> 3.4.0 upgrade) from the sender
JID inside each archived message. Resumable: run the same command again after a crash or Ctrl-C
and it continues where it stopped; a run after the end changes nothing.
${kind === undefined ? `\nKIND:\n${await backendList()}\n` : ''}${own ? `\n${kind} options:\n${own}\n` : ''}
decoding:
${DECODER_USAGE}

walk:
${MIGRATE_USAGE}

exit status: 0 done (or --limit reached), 130 interrupted, 1 failed, 2 bad usage, 4 schema step not done,
5 the walk ended with records neither written nor reported (the next run walks the shard again)`;
}

interface MigrateArgs {
  readonly command: ParsedCommand;
  readonly shard: ReturnType<typeof parseShard>;
  readonly batchSize: number;
  readonly maxBatchBytes: number;
  readonly concurrency: number;
  readonly limit: number | undefined;
  readonly maxRetries: number;
  readonly progressInterval: number;
  readonly stopGraceS: number;
  readonly maxRate: number | undefined;
}

function parseMigrate(command: ParsedCommand): MigrateArgs {
  const v = command.values;
  let maxRate: number | undefined;
  if (v['max-rate'] !== undefined) {
    maxRate = Number(v['max-rate']);
    if (!(maxRate > 0) || !Number.isFinite(maxRate))
      throw new UsageError(`--max-rate must be a positive number of records per second, got '${String(v['max-rate'])}'`);
  }
  const args: MigrateArgs = {
    command,
    shard: parseShard(v.shard),
    batchSize: parseCount('batch-size', v['batch-size']) ?? DEFAULT_BATCH_SIZE,
    maxBatchBytes: parseCount('max-batch-bytes', v['max-batch-bytes']) ?? DEFAULT_MAX_BATCH_BYTES,
    concurrency: parseCount('concurrency', v.concurrency) ?? DEFAULT_CONCURRENCY,
    limit: parseCount('limit', v.limit, 0),
    maxRetries: parseCount('max-retries', v['max-retries'], 0) ?? DEFAULT_MAX_RETRIES,
    progressInterval: parseCount('progress-interval', v['progress-interval']) ?? DEFAULT_PROGRESS_INTERVAL_S,
    stopGraceS: parseCount('stop-grace', v['stop-grace']) ?? DEFAULT_STOP_GRACE_S,
    maxRate,
  };
  // The pipeline's own limits, checked here too so that nothing is opened (and no schema
  // statement runs) for a run that would be refused.
  try {
    validateWalkOptions(args);
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
  const maxShards = command.definition.maxShards;
  if (maxShards !== undefined && args.shard.count > maxShards) {
    throw new UsageError(`--shard ${shardName(args.shard)}: ${command.definition.kind} is walked in ${maxShards} partitions, so at most ${maxShards} shards`);
  }
  return args;
}

async function run(argv: string[]): Promise<number> {
  const args = await readCommandLine('migrate', argv, MIGRATE_FLAGS, usage, parseMigrate);
  if (typeof args === 'number') return args;
  const { command, shard } = args;
  const values = command.values;
  // A dry run keeps its own report: it never truncates nor adds to what the real run reported.
  const reportPath =
    (values.report as string | undefined) ?? defaultReportPath(reportKind(command.definition.kind, command.values.field), shard, values['dry-run'] === true);
  const log = (line: string): void => void process.stderr.write(`migrate: ${line}\n`);

  const stop = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (): void => {
    if (stop.signal.aborted) {
      // GNU timeout signals the process and then its group, a terminal's Ctrl-C may reach a
      // wrapper and us: a repeat within a moment is the same request. The grace period is for a
      // person's second Ctrl-C.
      if (performance.now() - firstSignalAt < REPEATED_SIGNAL_MS) return;
      process.stderr.write('\nmigrate: second Ctrl-C, quitting now (the checkpoints are at the last committed batches)\n');
      process.exit(130);
    }
    firstSignalAt = performance.now();
    process.stderr.write(
      `\nmigrate: stopping after the batches in flight, at most ${args.stopGraceS} s (Ctrl-C again, a second or more later, to quit at once)\n`,
    );
    stop.abort();
    // A batch blocked in the store (a lock held by someone else, a node that stopped answering)
    // must not keep the process alive: what is committed stays committed, the rest is redone.
    setTimeout(() => {
      process.stderr.write(`migrate: batches still in flight after ${args.stopGraceS} s, quitting (the checkpoints are at the last committed batches)\n`);
      process.exit(130);
    }, args.stopGraceS * 1000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let backend: AnyBackend | undefined;
  let decoder;
  let report: JsonlReport | undefined;
  try {
    // Before the store is touched: a path that cannot be the report is a usage error. Emptied
    // (--reset) only once the store is open, so that a run that cannot connect keeps its lines.
    report = new JsonlReport(reportPath, false, values.reset !== true);
    backend = await command.definition.open(values, { command: 'migrate', concurrency: args.concurrency, log });
    decoder = await openDecoder({
      sidecar: command.decoder.sidecar,
      maxInFlightBatches: args.concurrency,
      workers: command.decoder.workers,
      tls: command.decoder.tls,
      decodeLimits: command.decoder.limits,
    });
    log(`${backend.name}, shard ${shardName(shard)}, decoding with the ${decoder.description}${values['dry-run'] ? ', DRY RUN' : ''}`);
    if (values.reset === true) report.truncate();
    const summary = await runMigration({
      backend,
      openStream: streamOpener(decoder, backend.answers),
      format: command.decoder.format,
      batchSize: args.batchSize,
      maxBatchBytes: args.maxBatchBytes,
      concurrency: args.concurrency,
      limit: args.limit,
      shard,
      dryRun: values['dry-run'] === true,
      maxRate: args.maxRate,
      // A backend may take a value here (Riak: the schema file); any value means "apply".
      applySchema: values['apply-schema'] !== undefined && values['apply-schema'] !== false,
      reset: values.reset === true,
      report,
      reportPath,
      progress: new StreamProgress(process.stderr, args.progressInterval * 1000),
      signal: stop.signal,
      maxRetries: args.maxRetries,
      log,
    });
    process.stdout.write(formatSummary(summary, reportPath) + '\n');
    return migrationExitStatus(summary);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ReportFileError) {
      process.stderr.write(`mim-sender-jid migrate: ${error.message}\n`);
      return 2;
    }
    if (error instanceof SchemaNotReadyError) {
      process.stderr.write(`mim-sender-jid migrate: ${error.message}\n`);
      // Its own status: running again changes nothing until someone applies the schema (an
      // Indexed Job fails at once on it instead of retrying every shard).
      return 4;
    }
    process.stderr.write(`mim-sender-jid migrate: failed: ${describeFailure(error)}\n`);
    if (process.env.MIM_SENDER_JID_DEBUG && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    report?.close();
    await decoder?.close().catch(() => {});
    await backend?.close().catch(() => {});
  }
}

const migrate: Subcommand = {
  summary: `backfill the sender in a MongooseIM 3.3 MUC archive: ${BACKEND_KINDS.join(', ')} (resumable)`,
  run,
};
export default migrate;
