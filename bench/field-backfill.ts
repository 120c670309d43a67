/**
 * Field backfill benchmark, one line per field: (a) an in-database `UPDATE` that sets the column
 * from an expression of the row's id (the answers precomputed, no payload read: the floor any
 * migration is compared with) against (b) `migrate postgres --field F` end to end (a child process:
 * read, decode in the in-process sidecar, write, checkpoint), on the same server and the same rows,
 * each starting from the same compacted, analysed and checkpointed tables. Every row is checked
 * against the generator's answer after each side.
 *
 *   BENCH_ROWS=100000 npm run bench:fields
 *
 * Archive: N rows in `mam_muc_message` (3.3's table with 3.4's sender_id filled) and N in
 * `mam_message` (3.3's one-to-one archive), MongooseIM-shaped compressed eterm payloads from the JS
 * term encoder. `origin_id` walks both tables (2N records), `is_groupchat` walks `mam_message` (N),
 * `origin_id,is_groupchat` both tables once (2N records: one read of `mam_message` for both columns).
 * PostgreSQL runs with its durable defaults (fsync, synchronous commit), as in bench/backfill.ts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { POSTGRES_FIELD_DIALECT, fieldTargets, walkTargets, type ArchiveTable, type FieldName } from '../clients/backends/sql/field-statements.js';
import { PG_SCHEMA_STATEMENTS } from '../clients/backends/sql/postgres-statements.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../cli/demo/mongooseim-33-schema.js';
import { seededRandom, type Rand } from '../cli/demo/seeded-random.js';
import { termToCompressedBinary, xmlTerm, MUC_USER_NS, type XmlElement, type XmlNode } from '../cli/demo/term-encoder.js';
import { startPostgres } from '../test/support/postgres.js';
import { childrenCpuSeconds, postgresCpuSeconds } from './proc-cpu.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIRST_MESSAGE_ID = 399582233150625537n;
const ID_STEP = 256n;
const INSERT_CHUNK = 5000;
const OWNERS = 200;
const WORDS = ['hello', 'meeting', 'at', 'noon', 'zażółć', 'gęślą', 'jaźń', 'ok', 'see', 'you', 'thanks', 'Ελλάδα', '🙂', 'lunch', 'deploy', 'done'];

// Which rows hold what is a function of the row's number n (its id is FIRST + n * 256), so the
// in-database side can compute the same answers from the id alone. The SQL below is the same rule.
const hasOriginId = (n: number): boolean => n % 10 < 6;
const originIdOf = (n: number): string => createHash('md5').update(String(n)).digest('hex');
const isGroupchatCopy = (n: number): boolean => n % 7 === 0;
const N_OF_ID = `((id - ${FIRST_MESSAGE_ID}) / ${ID_STEP})`;
const ORIGIN_ID_SQL = { where: `${N_OF_ID} % 10 < 6`, value: `md5(${N_OF_ID}::text)` };
const IS_GROUPCHAT_SQL = { where: `${N_OF_ID} % 7 = 0` };

/** MongooseIM 3.3.0's `mam_message` (priv/pg.sql), before 3.7's origin_id and 6.2.1's is_groupchat. */
const MAM_MESSAGE_33 = [
  `CREATE TYPE mam_direction AS ENUM('I','O')`,
  `CREATE TABLE mam_message(id BIGINT NOT NULL, user_id INT NOT NULL, from_jid varchar(250) NOT NULL, remote_bare_jid varchar(250) NOT NULL,
     remote_resource varchar(250) NOT NULL, direction mam_direction NOT NULL, message bytea NOT NULL, search_body text, PRIMARY KEY(user_id, id))`,
  `CREATE INDEX i_mam_message_username_jid_id ON mam_message USING BTREE (user_id, remote_bare_jid, id)`,
];

const words = (random: Rand): string => Array.from({ length: 3 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
const originChild = (n: number): XmlNode[] =>
  hasOriginId(n)
    ? [
        {
          name: 'origin-id',
          attrs: [
            ['xmlns', 'urn:xmpp:sid:0'],
            ['id', originIdOf(n)],
          ],
        },
      ]
    : [];

/** A room's archived message (storage reference: the muc#user item carries the real JID). */
function roomMessage(n: number, random: Rand): XmlElement {
  const sender = Math.floor(random() * 5000);
  return {
    name: 'message',
    attrs: [
      ['from', `room${n % OWNERS}@muc.example.com/nick${sender}`],
      ['to', `room${n % OWNERS}@muc.example.com`],
      ['id', `m${n}`],
      ['type', 'groupchat'],
    ],
    children: [
      { name: 'body', children: [words(random)] },
      {
        name: 'x',
        attrs: [['xmlns', MUC_USER_NS]],
        children: [
          {
            name: 'item',
            attrs: [
              ['affiliation', 'member'],
              ['jid', `user${sender}@example.com/r`],
              ['role', 'participant'],
            ],
          },
        ],
      },
      ...originChild(n),
    ],
  };
}

/** A user's archived message: one-to-one chat, or (every 7th) the copy of a room message. */
function userMessage(n: number, random: Rand): XmlElement {
  const peer = Math.floor(random() * 5000);
  const groupchat = isGroupchatCopy(n);
  return {
    name: 'message',
    attrs: [
      ['from', groupchat ? `room${peer % OWNERS}@muc.example.com/nick${peer}` : `user${peer}@example.com/r`],
      ['to', `owner${n % OWNERS}@example.com/phone`],
      ['id', `m${n}`],
      ['type', groupchat ? 'groupchat' : 'chat'],
    ],
    children: [{ name: 'body', children: [words(random)] }, ...originChild(n)],
  };
}

async function fill(client: pg.Client, table: ArchiveTable, rows: number, random: Rand): Promise<void> {
  for (let start = 0; start < rows; start += INSERT_CHUNK) {
    const owner: number[] = [];
    const id: string[] = [];
    const message: Buffer[] = [];
    for (let n = start; n < Math.min(rows, start + INSERT_CHUNK); n++) {
      owner.push(1 + Math.floor(random() * OWNERS));
      id.push(String(FIRST_MESSAGE_ID + BigInt(n) * ID_STEP));
      message.push(termToCompressedBinary(xmlTerm(table === 'mam_muc_message' ? roomMessage(n, random) : userMessage(n, random))));
    }
    await client.query(
      table === 'mam_muc_message'
        ? `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
             SELECT o, i, 'nick', m, '' FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS v(o, i, m)`
        : `INSERT INTO mam_message (user_id, id, from_jid, remote_bare_jid, remote_resource, direction, message, search_body)
             SELECT o, i, 'owner@example.com/phone', 'peer@example.com', 'r', 'I', m, '' FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS v(o, i, m)`,
      [owner, id, message],
    );
  }
}

/** Rows whose column differs from the generator's answer (every row of every table the field is in). */
async function wrongRows(client: pg.Client, field: FieldName): Promise<number> {
  let wrong = 0;
  for (const { table } of fieldTargets(field)) {
    const { rows } = await client.query<{ id: string; value: string | boolean | null }>(`SELECT id::text AS id, ${field} AS value FROM ${table}`);
    for (const r of rows) {
      const n = Number((BigInt(r.id) - FIRST_MESSAGE_ID) / ID_STEP);
      const expected = field === 'origin_id' ? (hasOriginId(n) ? originIdOf(n) : null) : isGroupchatCopy(n);
      if (r.value !== expected) wrong++;
    }
  }
  return wrong;
}

/** Compacted, analysed, and nothing dirty left for the next statement's timing to pay for. */
async function settle(client: pg.Client, tables: readonly ArchiveTable[]): Promise<void> {
  for (const table of tables) await client.query(`VACUUM FULL ANALYZE ${table}`);
  await client.query('CHECKPOINT');
}

async function runMigrate(url: string, field: string): Promise<{ stdout: string; wallMs: number }> {
  const started = performance.now();
  // --reset: the bench resets the columns between lines, and the combined walk's mam_muc_message
  // partition is origin_id's own (its checkpoint says that walk is done).
  const args = ['migrate', 'postgres', '--field', field, '--url', url, '--apply-schema', '--reset', '--report', '/dev/null', '--progress-interval', '3600'];
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`migrate --field ${field} exited with ${code}: ${stdout}`);
  return { stdout, wallMs: performance.now() - started };
}

function summaryNumber(stdout: string, pattern: RegExp): number {
  const m = pattern.exec(stdout);
  if (m === null) throw new Error(`${pattern} not in migrate's output: ${stdout}`);
  return Number(m[1].replace(/,/g, ''));
}

interface Line {
  /** The `--field` value: one field, or `origin_id,is_groupchat`. */
  field: string;
  records: number;
  inDatabaseRecordsPerSecond: number;
  migrationRecordsPerSecond: number;
  migrationWallRecordsPerSecond: number;
  ratio: number;
  /** CPU per record: PostgreSQL during (a); during (b) the `migrate` process (its decoding threads included) and PostgreSQL. */
  cpuMicrosPerRecord: { inDatabasePostgres: number; migrate: number; migrationPostgres: number };
}

/**
 * One line: `fields` filled by (a) the in-database UPDATE of each column of each table and (b) one
 * `migrate --field` walk of all of them (`origin_id,is_groupchat`: one read of `mam_message` for both).
 */
async function benchField(client: pg.Client, url: string, dataDir: string, fields: readonly FieldName[], rows: number): Promise<Line> {
  const targets = walkTargets(fields);
  const tables = targets.map((t) => t.table);
  const records = rows * targets.length;
  const update = (table: ArchiveTable, field: FieldName): string =>
    field === 'origin_id'
      ? `UPDATE ${table} SET origin_id = ${ORIGIN_ID_SQL.value} WHERE ${ORIGIN_ID_SQL.where}`
      : `UPDATE ${table} SET is_groupchat = true WHERE ${IS_GROUPCHAT_SQL.where}`;
  const reset = (table: ArchiveTable, field: FieldName): string =>
    field === 'origin_id' ? `UPDATE ${table} SET origin_id = NULL` : `UPDATE ${table} SET is_groupchat = false`;
  const label = fields.join(',');
  const wrongOfAll = async (): Promise<number> => {
    let wrong = 0;
    for (const field of fields) wrong += await wrongRows(client, field);
    return wrong;
  };

  await settle(client, tables);
  const started = performance.now();
  const inDbCpuBefore = postgresCpuSeconds(dataDir);
  for (const t of targets) for (const field of t.fields) await client.query(update(t.table, field));
  const inDbMs = performance.now() - started;
  const inDbCpu = postgresCpuSeconds(dataDir) - inDbCpuBefore;
  const wrongAfterUpdate = await wrongOfAll();
  if (wrongAfterUpdate !== 0) throw new Error(`the in-database UPDATE left ${wrongAfterUpdate} rows unlike the generator's answers (bench bug)`);

  for (const t of targets) for (const field of t.fields) await client.query(reset(t.table, field));
  await settle(client, tables);
  const pgCpuBefore = postgresCpuSeconds(dataDir);
  const migrateCpuBefore = childrenCpuSeconds();
  const run = await runMigrate(url, label);
  const migrateCpu = childrenCpuSeconds() - migrateCpuBefore;
  const pgCpu = postgresCpuSeconds(dataDir) - pgCpuBefore;
  const walked = summaryNumber(run.stdout, /records\s+([\d,]+)/);
  if (walked !== records) throw new Error(`migrate walked ${walked} records, expected ${records}: ${run.stdout}`);
  const wrong = await wrongOfAll();
  if (wrong !== 0) throw new Error(`after migrate --field ${label}, ${wrong} rows differ from the generator's answers: ${run.stdout}`);
  const inDatabaseRecordsPerSecond = (records * 1000) / inDbMs;
  const migrationRecordsPerSecond = summaryNumber(run.stdout, /([\d,]+) records\/s/);
  return {
    field: label,
    records,
    inDatabaseRecordsPerSecond: Math.round(inDatabaseRecordsPerSecond),
    migrationRecordsPerSecond,
    migrationWallRecordsPerSecond: Math.round((records * 1000) / run.wallMs),
    ratio: Number((migrationRecordsPerSecond / inDatabaseRecordsPerSecond).toFixed(2)),
    cpuMicrosPerRecord: {
      inDatabasePostgres: Number(((inDbCpu * 1e6) / records).toFixed(1)),
      migrate: Number(((migrateCpu * 1e6) / records).toFixed(1)),
      migrationPostgres: Number(((pgCpu * 1e6) / records).toFixed(1)),
    },
  };
}

async function main(): Promise<void> {
  const rows = Number(process.env.BENCH_ROWS ?? 100_000);
  if (!Number.isSafeInteger(rows) || rows < 1) throw new Error(`BENCH_ROWS must be a positive integer, got ${process.env.BENCH_ROWS}`);
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stderr.write(`bench: PostgreSQL, ${rows.toLocaleString('en-US')} rows per table, load average ${loadBefore}\n`);
  const server = await startPostgres({ durable: true });
  const lines: Line[] = [];
  try {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      for (const statement of [...MONGOOSEIM_33_PG_SCHEMA, ...MAM_MESSAGE_33]) await client.query(statement);
      await fill(client, 'mam_muc_message', rows, seededRandom(42));
      await fill(client, 'mam_message', rows, seededRandom(43));
      // Run 1 (3.4's sender) is done before run 2: the origin_id index includes sender_id.
      await client.query(PG_SCHEMA_STATEMENTS.column);
      await client.query(PG_SCHEMA_STATEMENTS.index);
      await client.query('UPDATE mam_muc_message SET sender_id = (id % 100000)::int');
      // The guides' schema steps, so that both sides maintain the same indexes.
      for (const field of ['origin_id', 'is_groupchat'] as const) {
        for (const target of fieldTargets(field)) {
          const { column, index } = POSTGRES_FIELD_DIALECT.schemaStatements(target);
          await client.query(column);
          if (index !== null) await client.query(index);
        }
      }
      // The combined walk last: its line beside the two above says what the shared read saves.
      for (const fields of [['origin_id'], ['is_groupchat'], ['origin_id', 'is_groupchat']] as const) {
        process.stderr.write(`bench: --field ${fields.join(',')}...\n`);
        const f = await benchField(client, server.url, server.dataDir, fields, rows);
        lines.push(f);
        const n = (x: number): string => x.toLocaleString('en-US');
        process.stdout.write(
          `postgres --field ${f.field.padEnd(23)} ${n(f.records).padStart(9)} records: (a) in-database UPDATE ${n(f.inDatabaseRecordsPerSecond)} records/s, ` +
            `(b) migration ${n(f.migrationRecordsPerSecond)} records/s (${n(f.migrationWallRecordsPerSecond)} incl. start-up), b/a = ${f.ratio}; ` +
            `CPU µs/record: (a) PostgreSQL ${f.cpuMicrosPerRecord.inDatabasePostgres}, (b) migrate ${f.cpuMicrosPerRecord.migrate} + PostgreSQL ${f.cpuMicrosPerRecord.migrationPostgres}; every row checked\n`,
        );
      }
    } finally {
      await client.end();
    }
  } finally {
    await server.stop();
  }
  const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`load average before ${loadBefore}, after ${loadAfter}\n`);
  process.stdout.write(JSON.stringify(lines) + '\n');
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench:fields: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
