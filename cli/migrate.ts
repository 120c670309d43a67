/**
 * `mim-sender-jid migrate postgres|mysql|mssql --url URL [--sidecar HOST:PORT] ...`: the sender_id
 * backfill of MongooseIM 3.3 -> 3.4 for an SQL archive. Summary on stdout; progress and logs on
 * stderr; every row not written in the JSONL report.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isBackendKind, openBackend, BACKEND_KINDS, type BackendKind } from '../clients/pipeline/open-backend.js';
import { openDecoder } from '../clients/pipeline/open-decoder.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { JsonlReport } from '../clients/pipeline/report.js';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_RETRIES,
  formatSummary,
  runMigration,
  SchemaNotReadyError,
} from '../clients/pipeline/run-migration.js';
import { shardName, type Backend, type ShardSpec } from '../clients/pipeline/types.js';
import type { PayloadFormat } from '../services/decode/index.js';
import type { Subcommand } from './cli.js';

export const URL_ENV = 'MIM_SENDER_JID_DB_URL';
const DEFAULT_PROGRESS_INTERVAL_S = 10;

const USAGE = `usage: mim-sender-jid migrate postgres|mysql|mssql --url URL [options]

Sets mam_muc_message.sender_id (MongooseIM 3.3.0 -> 3.4.0) from the sender JID inside each archived
message. Resumable: a checkpoint per shard is committed with every batch; run the same command again
after a crash or Ctrl-C and it continues where it stopped.

  --url URL              database URL (or env ${URL_ENV}); postgres://, mysql://, mssql://
  --sidecar HOST:PORT    decode with a running sidecar; default: one started in this process
  --sidecar-ca PEM       TLS to --sidecar: CA that signed its certificate
  --sidecar-cert PEM     with --sidecar-key: our client certificate (mutual TLS)
  --sidecar-key PEM      private key of --sidecar-cert
  --workers N            decoding threads of the in-process sidecar (default: core count)
  --format F             payload format: eterm (default; compressed or not), xml, auto
  --batch-size N         rows per page, decode request and write transaction (default ${DEFAULT_BATCH_SIZE})
  --concurrency N        batches in flight (decoding or writing) while the next page is read (default ${DEFAULT_CONCURRENCY})
  --limit N              walk at most N rows in this run
  --shard K/N            handle only rows with room_id % N = K (run N processes, K = 0..N-1)
  --max-rate R           at most R rows per second on average (default: uncapped)
  --dry-run              decode and report, write nothing (no ids, no checkpoint)
  --apply-schema         add sender_id and its index when missing (the upgrade guide's statements)
  --reset                forget this shard's checkpoint and start from the first row (truncates the report)
  --report PATH          JSONL of rows not written (default ./mim-sender-jid-report-BACKEND-shard-K-of-N.jsonl)
  --max-retries N        retries of transient failures (connection lost, server restart) (default ${DEFAULT_MAX_RETRIES})
  --progress-interval S  seconds between progress lines when stderr is not a terminal (default ${DEFAULT_PROGRESS_INTERVAL_S})

exit status: 0 done (or --limit reached), 130 interrupted, 1 failed, 2 bad usage`;

export interface CommonArgs {
  readonly kind: BackendKind;
  readonly url: string;
  readonly sidecar: string | undefined;
  readonly workers: number | undefined;
  readonly format: PayloadFormat;
  /** TLS to a remote sidecar: CA to check it, and our certificate and key for mutual TLS. */
  readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
}

export class UsageError extends Error {}

export function parseCount(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} must be a whole number >= ${min}, got '${value}'`);
  }
  return Number(value);
}

export function parseShard(value: string | undefined): ShardSpec {
  if (value === undefined) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (m === null || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
    throw new UsageError(`--shard must be K/N with 0 <= K < N (e.g. 0/4), got '${value}'`);
  }
  return { index: Number(m[1]), count: Number(m[2]) };
}

export function parseCommon(positionals: string[], values: Record<string, string | boolean | undefined>): CommonArgs {
  const kind = positionals[0];
  if (!isBackendKind(kind)) throw new UsageError(`first argument must be one of ${BACKEND_KINDS.join(', ')}, got '${kind ?? ''}'`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const url = (values.url as string | undefined) ?? process.env[URL_ENV];
  if (url === undefined || url === '') throw new UsageError(`--url is required (or set ${URL_ENV})`);
  const format = (values.format as string | undefined) ?? 'eterm';
  if (format !== 'eterm' && format !== 'xml' && format !== 'auto') throw new UsageError(`--format must be eterm, xml or auto, got '${format}'`);
  const sidecar = values.sidecar as string | undefined;
  if (sidecar !== undefined && !/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/.test(sidecar)) {
    throw new UsageError(`--sidecar must be HOST:PORT, got '${sidecar}'`);
  }
  const tlsFiles = { ca: values['sidecar-ca'], cert: values['sidecar-cert'], key: values['sidecar-key'] } as Record<string, string | undefined>;
  let tls: CommonArgs['tls'];
  if (Object.values(tlsFiles).some((v) => v !== undefined)) {
    if (sidecar === undefined) throw new UsageError('--sidecar-ca/--sidecar-cert/--sidecar-key need --sidecar HOST:PORT');
    if ((tlsFiles.cert === undefined) !== (tlsFiles.key === undefined)) throw new UsageError('--sidecar-cert and --sidecar-key go together');
    tls = {};
    for (const [name, path] of Object.entries(tlsFiles)) {
      if (path === undefined) continue;
      try {
        tls[name as 'ca' | 'cert' | 'key'] = readFileSync(path);
      } catch (error) {
        throw new UsageError(`--sidecar-${name}: cannot read ${path}: ${(error as Error).message}`);
      }
    }
  }
  return { kind, url, sidecar, workers: parseCount('workers', values.workers as string | undefined), format, tls };
}

export const COMMON_OPTIONS = {
  url: { type: 'string' },
  sidecar: { type: 'string' },
  'sidecar-ca': { type: 'string' },
  'sidecar-cert': { type: 'string' },
  'sidecar-key': { type: 'string' },
  workers: { type: 'string' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...COMMON_OPTIONS,
        'batch-size': { type: 'string' },
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
      },
    });
  } catch (error) {
    process.stderr.write(`mim-sender-jid migrate: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let common: CommonArgs;
  let shard: ShardSpec;
  let maxRate: number | undefined;
  let batchSize: number;
  let concurrency: number;
  let limit: number | undefined;
  let maxRetries: number;
  let progressInterval: number;
  try {
    common = parseCommon(positionals, values);
    shard = parseShard(values.shard);
    batchSize = parseCount('batch-size', values['batch-size']) ?? DEFAULT_BATCH_SIZE;
    concurrency = parseCount('concurrency', values.concurrency) ?? DEFAULT_CONCURRENCY;
    limit = parseCount('limit', values.limit, 0);
    maxRetries = parseCount('max-retries', values['max-retries'], 0) ?? DEFAULT_MAX_RETRIES;
    progressInterval = parseCount('progress-interval', values['progress-interval']) ?? DEFAULT_PROGRESS_INTERVAL_S;
    if (values['max-rate'] !== undefined) {
      maxRate = Number(values['max-rate']);
      if (!(maxRate > 0) || !Number.isFinite(maxRate)) throw new UsageError(`--max-rate must be a positive number of rows per second, got '${values['max-rate']}'`);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`mim-sender-jid migrate: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  const reportPath =
    values.report ?? `mim-sender-jid-report-${common.kind}-shard-${shard.index}-of-${shard.count}.jsonl`;
  const log = (line: string): void => void process.stderr.write(`migrate: ${line}\n`);

  const stop = new AbortController();
  const onSigint = (): void => {
    if (stop.signal.aborted) {
      process.stderr.write('\nmigrate: second Ctrl-C, quitting now (the checkpoint is at the last committed batch)\n');
      process.exit(130);
    }
    process.stderr.write('\nmigrate: stopping after the batches in flight (Ctrl-C again to quit at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  let backend: Backend | undefined;
  let decoder;
  let report: JsonlReport | undefined;
  try {
    backend = await openBackend(common.kind, common.url, concurrency + 2);
    decoder = await openDecoder({ sidecar: common.sidecar, maxInFlightBatches: concurrency, workers: common.workers, tls: common.tls });
    log(`${common.kind}, shard ${shardName(shard)}, decoding with the ${decoder.description}${values['dry-run'] ? ', DRY RUN' : ''}`);
    report = new JsonlReport(reportPath, values.reset === true);
    const summary = await runMigration({
      backend,
      openStream: decoder.openStream,
      format: common.format,
      batchSize,
      concurrency,
      limit,
      shard,
      dryRun: values['dry-run'] === true,
      maxRate,
      applySchema: values['apply-schema'] === true,
      reset: values.reset === true,
      report,
      progress: new StreamProgress(process.stderr, progressInterval * 1000),
      signal: stop.signal,
      maxRetries,
      log,
    });
    process.stdout.write(formatSummary(summary, reportPath) + '\n');
    return summary.interrupted ? 130 : 0;
  } catch (error) {
    if (error instanceof SchemaNotReadyError) {
      process.stderr.write(`mim-sender-jid migrate: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`mim-sender-jid migrate: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    report?.close();
    await decoder?.close().catch(() => {});
    await backend?.close().catch(() => {});
  }
}

const migrate: Subcommand = {
  summary: 'backfill mam_muc_message.sender_id in PostgreSQL, MySQL/MariaDB or MSSQL (resumable)',
  run,
};
export default migrate;
