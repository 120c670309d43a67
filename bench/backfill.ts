/**
 * Backfill benchmark: (a) one in-database `UPDATE mam_muc_message SET sender_id = <expression of
 * id>` over every row, the floor any migration is compared with, against (b) our migration end
 * to end (the `migrate` command as a child process: read, decode in the in-process sidecar,
 * resolve ids, write, checkpoint), on the same server and the same rows, in the same run.
 * Prints rows/s of both, the ratio b/a (target >= 0.6), and the migrate process's peak RSS.
 *
 *   npm run build && node dist/bench/backfill.js [--rows 100000,1000000] [--backends postgres,mariadb]
 *
 * Both servers are started like in the tests (Debian's binaries, loopback) but with their durable
 * defaults (fsync, commit flushes; `--fast-server` for the tests' fsync-off settings). Rows are
 * MongooseIM 3.3-shaped compressed eterm payloads from the JS term encoder (cli/demo/demo-data.ts).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { demoPayload, fillDemoArchive } from '../cli/demo/demo-data.js';
import { MONGOOSEIM_33_MYSQL_SCHEMA, startMariadb } from '../test/support/mariadb.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../cli/demo/mongooseim-33-schema.js';
import { startPostgres } from '../test/support/postgres.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RSS_POLL_MS = 100;

interface Figures {
  backend: string;
  rows: number;
  inDatabaseRowsPerSecond: number;
  migrationRowsPerSecond: number;
  migrationWallRowsPerSecond: number;
  ratio: number;
  peakRssMiB: number;
}

/** Runs `mim-sender-jid migrate ...`, polling the child's VmHWM (peak resident set) from /proc. */
async function runMigrateProcess(args: string[]): Promise<{ stdout: string; wallMs: number; peakRssKiB: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', 'migrate', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  let peak = 0;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m !== null) peak = Math.max(peak, Number(m[1]));
    } catch {
      // exited between two polls
    }
  }, RSS_POLL_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`migrate exited with ${code}: ${stdout}`);
  return { stdout, wallMs: performance.now() - started, peakRssKiB: peak };
}

function summaryRate(stdout: string): number {
  const m = /([\d,]+) records\/s/.exec(stdout);
  if (m === null) throw new Error(`no rate in migrate output: ${stdout}`);
  return Number(m[1].replace(/,/g, ''));
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

async function benchPostgres(rows: number, migrateArgs: string[], durable: boolean): Promise<Figures> {
  const server = await startPostgres({ durable });
  try {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
    await fillDemoArchive(client, rows);
    await client.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT');
    await client.query('CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id)');
    await client.query('VACUUM ANALYZE mam_muc_message');
    const inDbMs = await timed(() => client.query('UPDATE mam_muc_message SET sender_id = (id % 100000)::int'));
    // Back to the starting point: every sender_id NULL, table and index compact again.
    await client.query('UPDATE mam_muc_message SET sender_id = NULL');
    await client.query('VACUUM FULL ANALYZE mam_muc_message');
    await client.end();
    const run = await runMigrateProcess(['postgres', '--url', server.url, '--report', '/dev/null', ...migrateArgs]);
    return figures('postgres', rows, inDbMs, run);
  } finally {
    await server.stop();
  }
}

async function fillMariadb(pool: mysql.Pool, rows: number): Promise<void> {
  const CHUNK = 2000;
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const rooms = Math.max(1, Math.min(1000, Math.ceil(rows / 500)));
  const senders = Math.max(1, Math.min(50_000, Math.ceil(rows / 20)));
  await pool.query(
    `INSERT INTO mam_server_user (server, user_name) VALUES ${Array.from({ length: rooms }, (_, i) => `('muc.example.com', 'room${i + 1}')`).join(', ')}`,
  );
  for (let start = 0; start < rows; start += CHUNK) {
    const count = Math.min(CHUNK, rows - start);
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const n = start + i;
      values.push(1 + Math.floor(random() * rooms), mysql.raw(String(399582233150625537n + BigInt(n) * 256n)), demoPayload(n, random, senders).payload);
    }
    await pool.query(
      `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body) VALUES ${Array.from({ length: count }, () => "(?, ?, 'nick', ?, '')").join(', ')}`,
      values,
    );
  }
}

async function benchMariadb(rows: number, migrateArgs: string[], durable: boolean): Promise<Figures> {
  const server = await startMariadb({ durable });
  try {
    const pool = mysql.createPool({ uri: server.url, connectionLimit: 2 });
    for (const statement of MONGOOSEIM_33_MYSQL_SCHEMA) await pool.query(statement);
    await fillMariadb(pool, rows);
    await pool.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT UNSIGNED');
    await pool.query('CREATE INDEX i_mam_muc_message_sender_id USING BTREE ON mam_muc_message(sender_id)');
    await pool.query('ANALYZE TABLE mam_muc_message');
    const inDbMs = await timed(() => pool.query('UPDATE mam_muc_message SET sender_id = id % 100000'));
    await pool.query('UPDATE mam_muc_message SET sender_id = NULL');
    await pool.query('OPTIMIZE TABLE mam_muc_message');
    await pool.end();
    const run = await runMigrateProcess(['mysql', '--url', server.url, '--report', '/dev/null', ...migrateArgs]);
    return figures('mariadb', rows, inDbMs, run);
  } finally {
    await server.stop();
  }
}

function figures(backend: string, rows: number, inDbMs: number, run: { stdout: string; wallMs: number; peakRssKiB: number }): Figures {
  const inDatabaseRowsPerSecond = (rows * 1000) / inDbMs;
  const migrationRowsPerSecond = summaryRate(run.stdout);
  return {
    backend,
    rows,
    inDatabaseRowsPerSecond: Math.round(inDatabaseRowsPerSecond),
    migrationRowsPerSecond,
    migrationWallRowsPerSecond: Math.round((rows * 1000) / run.wallMs),
    ratio: Number((migrationRowsPerSecond / inDatabaseRowsPerSecond).toFixed(2)),
    peakRssMiB: Math.round(run.peakRssKiB / 1024),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '100000,1000000' },
      backends: { type: 'string', default: 'postgres,mariadb' },
      'batch-size': { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '4' },
      // Decoding threads of migrate's in-process sidecar (default: its own, the core count).
      workers: { type: 'string' },
      // The tests' server settings (fsync off...) instead of the servers' durable defaults.
      'fast-server': { type: 'boolean', default: false },
    },
  });
  const sizes = values.rows.split(',').map(Number);
  const migrateArgs = ['--apply-schema', '--batch-size', values['batch-size'], '--concurrency', values.concurrency, '--progress-interval', '3600'];
  if (values.workers !== undefined) migrateArgs.push('--workers', values.workers);
  const results: Figures[] = [];
  for (const backend of values.backends.split(',')) {
    for (const rows of sizes) {
      process.stderr.write(`bench: ${backend}, ${rows.toLocaleString('en-US')} rows...\n`);
      const durable = !values['fast-server'];
      const f = backend === 'postgres' ? await benchPostgres(rows, migrateArgs, durable) : await benchMariadb(rows, migrateArgs, durable);
      results.push(f);
      process.stdout.write(
        `${f.backend.padEnd(8)} ${f.rows.toLocaleString('en-US').padStart(9)} rows: (a) in-database UPDATE ${f.inDatabaseRowsPerSecond.toLocaleString('en-US')} rows/s, ` +
          `(b) migration ${f.migrationRowsPerSecond.toLocaleString('en-US')} rows/s (${f.migrationWallRowsPerSecond.toLocaleString('en-US')} incl. start-up), ` +
          `b/a = ${f.ratio} (target >= 0.6), migrate peak RSS ${f.peakRssMiB} MiB\n`,
      );
    }
  }
  process.stdout.write(JSON.stringify(results) + '\n');
}

await main();
