/**
 * `mim-sender-jid migrate KIND [flags]`: the MongooseIM 3.3 -> 3.4 sender backfill for one store
 * (KIND: a backend of clients/backends/registry.ts). Summary on stdout; progress and logs
 * on stderr; every record not written in the JSONL report.
 */
import { BACKEND_KINDS } from '../clients/backends/registry.js';
import { openDecoder, streamOpener } from '../clients/decoder-client/index.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { JsonlReport, ReportFileError } from '../clients/pipeline/report.js';
import { migrateReportPath, reportKind } from '../clients/pipeline/report-keys.js';
import { formatSummary, migrationExitStatus, runMigration, SchemaNotReadyError, validateWalkOptions } from '../clients/pipeline/run-migration.js';
import { shardName, type AnyBackend } from '../clients/pipeline/types.js';
import type { Subcommand } from './cli.js';
import { flagUsage } from './command-flags.js';
import { backendList, describeFailure, readCommandLine, UsageError, type ParsedCommand } from './options.js';

/** A stop signal this soon after the first one is the same request, not "quit now". */
const REPEATED_SIGNAL_MS = 1000;

async function usage(kind?: string, own?: string): Promise<string> {
  return `usage: mim-sender-jid migrate ${kind ?? 'KIND'} [options]

Backfills the sender of MongooseIM 3.3 MUC archive records (3.3.0 -> 3.4.0 upgrade) from the sender
JID inside each archived message (SQL and Elasticsearch stores: or, with their field option, the
fields of the 3.7.0 and 6.2.1 upgrades). Resumable: run the same command again after a crash or
Ctrl-C and it continues where it stopped; a run after the end changes nothing.
${kind === undefined ? `\nKIND:\n${await backendList()}\n` : ''}${own ? `\n${kind} options:\n${own}\n` : ''}
decoding:
${flagUsage('migrate', 'decoding', kind)}

walk:
${flagUsage('migrate', 'walk', kind)}

exit status: 0 done (or --limit reached), 130 interrupted, 1 failed, 2 bad usage, 4 schema step not done,
5 the walk ended with records neither written nor reported (the next run walks the shard again)`;
}

/** Checks between the walk's flags, before anything is opened. */
function checkMigrate(command: ParsedCommand): void {
  const { flags } = command;
  // The pipeline's own limits, checked here too so that nothing is opened (and no schema
  // statement runs) for a run that would be refused.
  try {
    validateWalkOptions(flags);
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
  const maxShards = command.definition.maxShards;
  if (maxShards !== undefined && flags.shard.count > maxShards) {
    throw new UsageError(`--shard ${shardName(flags.shard)}: ${command.definition.kind} is walked in ${maxShards} partitions, so at most ${maxShards} shards`);
  }
}

async function run(argv: string[]): Promise<number> {
  const command = await readCommandLine('migrate', argv, usage, { then: checkMigrate });
  if (typeof command === 'number') return command;
  const args = command.flags;
  const { shard } = args;
  const values = command.values;
  // A dry run keeps its own report: it never truncates nor adds to what the real run reported.
  const reportPath = migrateReportPath(args.report, reportKind(command.definition.kind, command.values.field), shard, args.dryRun);
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
      `\nmigrate: stopping after the batches in flight, at most ${args.stopGrace} s (Ctrl-C again, a second or more later, to quit at once)\n`,
    );
    stop.abort();
    // A batch blocked in the store (a lock held by someone else, a node that stopped answering)
    // must not keep the process alive: what is committed stays committed, the rest is redone.
    setTimeout(() => {
      process.stderr.write(`migrate: batches still in flight after ${args.stopGrace} s, quitting (the checkpoints are at the last committed batches)\n`);
      process.exit(130);
    }, args.stopGrace * 1000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let backend: AnyBackend | undefined;
  let decoder;
  let report: JsonlReport | undefined;
  try {
    // Before the store is touched: a path that cannot be the report is a usage error. Emptied
    // (--reset) only once the store is open, so that a run that cannot connect keeps its lines.
    report = new JsonlReport(reportPath, false, !args.reset);
    backend = await command.definition.open(values, { command: 'migrate', concurrency: args.concurrency, log });
    decoder = await openDecoder({
      sidecar: command.decoder.sidecar,
      maxInFlightBatches: args.concurrency,
      workers: command.decoder.workers,
      tls: command.decoder.tls,
      decodeLimits: command.decoder.limits,
    });
    log(`${backend.name}, shard ${shardName(shard)}, decoding with the ${decoder.description}${args.dryRun ? ', DRY RUN' : ''}`);
    if (args.reset) report.truncate();
    const summary = await runMigration({
      backend,
      openStream: streamOpener(decoder, backend.answers),
      format: command.decoder.format,
      batchSize: args.batchSize,
      maxBatchBytes: args.maxBatchBytes,
      concurrency: args.concurrency,
      limit: args.limit,
      shard,
      dryRun: args.dryRun,
      maxRate: args.maxRate,
      applySchema: args.applySchema,
      reset: args.reset,
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
  summary: `backfill the sender in a MongooseIM 3.3 MUC archive (--field: origin_id, is_groupchat): ${BACKEND_KINDS.join(', ')} (resumable)`,
  run,
};
export default migrate;
