/**
 * Backfill benchmark: (a) one in-database `UPDATE mam_muc_message SET sender_id = <expression of
 * id>` over every row, the floor any migration is compared with, against (b) our migration end
 * to end (the `migrate` command as a child process: read, decode in the in-process sidecar,
 * resolve ids, write, checkpoint), on the same server and the same rows, in the same run.
 * Prints rows/s of both, the ratio b/a (target >= 0.6), and the migrate process's peak RSS; for
 * PostgreSQL also the CPU per row of the database, of migrate and of its main thread (/proc).
 *
 *   npm run build && node dist/bench/backfill.js [--rows 100000,1000000] [--backends postgres,mariadb]
 *     [--baseline-root DIR: also migrate with the build in DIR, before and after this one]
 *     [--verify: after each migration, untimed, verify --complete: every row right or reported]
 *
 * Both servers are started like in the tests (Debian's binaries, loopback) but with their durable
 * defaults (fsync, commit flushes; `--fast-server` for the tests' fsync-off settings). Rows are
 * MongooseIM 3.3-shaped compressed eterm payloads from the JS term encoder (cli/demo/demo-data.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { demoPayload, fillDemoArchive } from '../cli/demo/demo-data.js';
import { MONGOOSEIM_33_MYSQL_SCHEMA, startMariadb } from '../test/support/mariadb.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../cli/demo/mongooseim-33-schema.js';
import { startPostgres } from '../test/support/postgres.js';
import { CLOCK_TICKS, childrenCpuSeconds, postgresCpuSeconds } from './proc-cpu.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RSS_POLL_MS = 100;
/** BENCH_NODE_FLAGS: V8/Node flags for the migrate process only (e.g. "--single-threaded-gc"), to compare its CPU split. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');

interface Figures {
  backend: string;
  rows: number;
  inDatabaseRowsPerSecond: number;
  migrationRowsPerSecond: number;
  migrationWallRowsPerSecond: number;
  ratio: number;
  /** The same with the migrate process's start-up and schema checks in its time. */
  wallRatio: number;
  peakRssMiB: number;
  /** CPU µs per row from /proc (PostgreSQL only): the database during each side, the migrate process with its threads. */
  cpuMicrosPerRow?: {
    inDatabasePostgres: number;
    migrate: number;
    migrateMainThread: number;
    migrationPostgres: number;
    migrateThreads: Record<string, number>;
  };
  /** Which build ran the migration (`--baseline-root`: an earlier build, run on its own copy of the same table). */
  code?: string;
  /** Rows still NULL after the migration (the report's rows: payloads no migration can write). */
  leftNull?: number;
  /** `--verify`: verify --complete found every row written right or reported. */
  verified?: boolean;
}

/** Runs `mim-sender-jid migrate ...`, polling the child's VmHWM (peak resident set) and each of its threads' CPU from /proc. */
async function runMigrateProcess(
  args: string[],
  root = REPO_ROOT,
): Promise<{ stdout: string; wallMs: number; peakRssKiB: number; mainThreadCpuSeconds: number; threadCpuSeconds: Map<string, number> }> {
  const started = performance.now();
  const child = spawn(process.execPath, [...NODE_FLAGS, 'bin/mim-sender-jid.js', 'migrate', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  let peak = 0;
  // Every thread's ticks at the last poll, by thread id.
  const threads = new Map<string, { name: string; ticks: number }>();
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m !== null) peak = Math.max(peak, Number(m[1]));
      // Each thread's CPU at the last poll before the exit; the main thread's task id is the process id.
      for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
        const stat = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        threads.set(tid, { name: tid === String(child.pid) ? 'main' : `${name}#${tid}`, ticks: Number(f[11]) + Number(f[12]) });
      }
    } catch {
      // exited between two polls
    }
  }, RSS_POLL_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`migrate exited with ${code}: ${stdout}`);
  const threadCpuSeconds = new Map([...threads.values()].map(({ name, ticks }) => [name, ticks / CLOCK_TICKS]));
  return { stdout, wallMs: performance.now() - started, peakRssKiB: peak, mainThreadCpuSeconds: threadCpuSeconds.get('main') ?? 0, threadCpuSeconds };
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

/**
 * Both sides run on a table in the same state: the archive is loaded once into a template
 * database (vacuumed and analysed, the column and its index added), and each side gets its own
 * copy of it, checkpointed before it starts, so neither pays for the other's dead rows, hint
 * bits or dirty buffers.
 */
interface MigrationSide {
  run: Awaited<ReturnType<typeof runMigrateProcess>>;
  migrateCpu: number;
  pgCpu: number;
  leftNull: number;
  verified: boolean;
}

/**
 * `verify --complete` on a migrated copy with the migration's report: every row written with the
 * sender its payload names, or reported. Throws otherwise (exit 3: the lines say which rows).
 */
async function verifyComplete(url: string, reportPath: string): Promise<void> {
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', 'verify', 'postgres', '--url', url, '--complete', '--report', reportPath], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`verify --complete exited with ${code}: ${output.slice(0, 4000)}`);
}

async function benchPostgres(rows: number, migrateArgs: string[], durable: boolean, baselineRoot?: string, verify = false): Promise<Figures[]> {
  const server = await startPostgres({ durable });
  try {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
    await fillDemoArchive(client, rows);
    await client.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT');
    await client.query('CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id)');
    await client.query('VACUUM ANALYZE mam_muc_message');
    await client.end();
    const admin = new pg.Client({ connectionString: server.url.replace(/\/mim$/, '/postgres') });
    await admin.connect();
    const copy = async (name: string): Promise<string> => {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE mim STRATEGY FILE_COPY`);
      await admin.query('CHECKPOINT');
      return server.url.replace(/\/mim$/, `/${name}`);
    };
    try {
      const inDbClient = new pg.Client({ connectionString: await copy('bench_in_database') });
      await inDbClient.connect();
      const inDbCpuBefore = postgresCpuSeconds(server.dataDir);
      const inDbMs = await timed(() => inDbClient.query('UPDATE mam_muc_message SET sender_id = (id % 100000)::int'));
      const inDbCpu = postgresCpuSeconds(server.dataDir) - inDbCpuBefore;
      await inDbClient.end();
      await admin.query('DROP DATABASE bench_in_database');
      const migrate = async (name: string, root: string): Promise<MigrationSide> => {
        const url = await copy(name);
        const pgCpuBefore = postgresCpuSeconds(server.dataDir);
        const migrateCpuBefore = childrenCpuSeconds();
        const reportDir = mkdtempSync(join(tmpdir(), 'mim-bench-report-'));
        const reportPath = verify ? join(reportDir, 'report.jsonl') : '/dev/null';
        const run = await runMigrateProcess(['postgres', '--url', url, '--report', reportPath, ...migrateArgs], root).finally(() => {
          if (!verify) rmSync(reportDir, { recursive: true, force: true });
        });
        const migrateCpu = childrenCpuSeconds() - migrateCpuBefore;
        const pgCpu = postgresCpuSeconds(server.dataDir) - pgCpuBefore;
        const check = new pg.Client({ connectionString: url });
        await check.connect();
        const [left] = (await check.query<{ n: string }>('SELECT count(*)::text AS n FROM mam_muc_message WHERE sender_id IS NULL')).rows;
        await check.end();
        if (verify) {
          try {
            await verifyComplete(url, reportPath);
          } finally {
            rmSync(reportDir, { recursive: true, force: true });
          }
        }
        await admin.query(`DROP DATABASE ${name}`);
        return { run, migrateCpu, pgCpu, leftNull: Number(left.n), verified: verify };
      };
      const side = (m: MigrationSide): Figures => ({
        ...figures('postgres', rows, inDbMs, m.run),
        cpuMicrosPerRow: {
          inDatabasePostgres: round2((inDbCpu * 1e6) / rows),
          migrate: round2((m.migrateCpu * 1e6) / rows),
          migrateMainThread: round2((m.run.mainThreadCpuSeconds * 1e6) / rows),
          migrateThreads: Object.fromEntries([...m.run.threadCpuSeconds].map(([name, seconds]) => [name, round2((seconds * 1e6) / rows)])),
          migrationPostgres: round2((m.pgCpu * 1e6) / rows),
        },
        leftNull: m.leftNull,
        ...(m.verified ? { verified: true } : {}),
      });
      const results: Figures[] = [];
      // The earlier build runs before and after this one, so that neither gets the quieter turn.
      const baseline = async (): Promise<void> => {
        if (baselineRoot !== undefined) results.push({ ...side(await migrate('bench_baseline', baselineRoot)), code: `baseline ${baselineRoot}` });
      };
      await baseline();
      results.push({ ...side(await migrate('bench_migration', REPO_ROOT)), code: 'this build' });
      await baseline();
      return results;
    } finally {
      await admin.end();
    }
  } finally {
    await server.stop();
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

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
    wallRatio: Number((inDbMs / run.wallMs).toFixed(2)),
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
      // PostgreSQL: also run the migration of another build (a checkout with its own dist/) on its own copy of the table, before ours.
      'baseline-root': { type: 'string' },
      // PostgreSQL: after each migration (untimed), verify --complete with its report: every row right or reported.
      verify: { type: 'boolean', default: false },
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
      const measured =
        backend === 'postgres'
          ? await benchPostgres(rows, migrateArgs, durable, values['baseline-root'], values.verify)
          : [await benchMariadb(rows, migrateArgs, durable)];
      for (const f of measured) {
        results.push(f);
        if (f.code !== undefined) process.stdout.write(`${f.code}:\n`);
        process.stdout.write(
          `${f.backend.padEnd(8)} ${f.rows.toLocaleString('en-US').padStart(9)} rows: (a) in-database UPDATE ${f.inDatabaseRowsPerSecond.toLocaleString('en-US')} rows/s, ` +
            `(b) migration ${f.migrationRowsPerSecond.toLocaleString('en-US')} rows/s (${f.migrationWallRowsPerSecond.toLocaleString('en-US')} incl. start-up), ` +
            `b/a = ${f.ratio} (${f.wallRatio} incl. start-up; target >= 0.6), migrate peak RSS ${f.peakRssMiB} MiB\n`,
        );
        if (f.cpuMicrosPerRow !== undefined) {
          const c = f.cpuMicrosPerRow;
          process.stdout.write(
            `         CPU µs per row: (a) PostgreSQL ${c.inDatabasePostgres}; (b) migrate ${c.migrate} (main thread ${c.migrateMainThread}) + PostgreSQL ${c.migrationPostgres} = ${round2(c.migrate + c.migrationPostgres)}; ` +
              `rows left NULL ${f.leftNull}${f.verified === true ? ', verify --complete: every row written right or reported' : ''}\n` +
              // In the order the threads were started: main, V8's platform threads (garbage collection,
              // compilation), libuv's, then the decoding workers (Node 20 names them all "node").
              `         migrate's threads in start order, CPU µs per row: ${Object.entries(c.migrateThreads)
                .filter(([, micros]) => micros > 0)
                .map(([name, micros]) => `${name} ${micros}`)
                .join(', ')}\n`,
          );
        }
      }
    }
  }
  process.stdout.write(JSON.stringify(results) + '\n');
}

await main();
