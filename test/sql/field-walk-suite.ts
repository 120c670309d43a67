/**
 * The `--field origin_id|is_groupchat` walks on a real database (run by field-walks-postgres and
 * field-walks-mariadb): MongooseIM-shaped archives of both tables (3.3's `mam_muc_message` with
 * the 3.4 sender column, and 3.3's `mam_message`) holding Erlang-made payloads, whose answers
 * come from MongooseIM's own functions run by Erlang (test/support/erlang-fields.ts). Decoding
 * goes through the real in-process pool's fields stream. One property re-keys those rows anywhere
 * in the range the store's key columns allow (test/sql/key-ranges.ts; FIELD_WALK_SEED replays it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { openDecoder, type Decoder } from '../../clients/decoder-client/index.js';
import { SqlFieldBackend } from '../../clients/backends/sql/field-backend.js';
import { MYSQL_FIELD_DIALECT, POSTGRES_FIELD_DIALECT, type ArchiveTable, type FieldName } from '../../clients/backends/sql/field-statements.js';
import { MysqlDriver } from '../../clients/backends/sql/mysql.js';
import { MYSQL_SCHEMA_STATEMENTS } from '../../clients/backends/sql/mysql-statements.js';
import { PgDriver } from '../../clients/backends/sql/postgres.js';
import { PG_SCHEMA_STATEMENTS } from '../../clients/backends/sql/postgres-statements.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError, type MigrationOptions, type MigrationSummary } from '../../clients/pipeline/run-migration.js';
import { runVerify, runVerifyComplete, type CompleteFinding } from '../../clients/pipeline/run-verify.js';
import { erlangFieldCases, erlangFieldMessages, erlangFieldOracle, type FieldRecord } from '../support/erlang-fields.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { runCliBounded } from '../support/bounded-cli.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { integerIn, KEY_RANGES, shardsOf } from './key-ranges.js';
import { mamMessage33 } from '../acceptance/mongooseim-upgrade-sql.js';

type Kind = 'postgres' | 'mysql';

/** One archived row and MongooseIM's answers for its payload. */
interface FieldRow {
  readonly table: ArchiveTable;
  readonly owner: string;
  readonly id: string;
  readonly payload: Uint8Array;
  readonly originId: string | null | 'malformed';
  readonly isGroupchat: boolean | 'malformed';
}

const rowId = (table: string, owner: string, id: string): string => `${table}:${owner}:${id}`;

/** Every eterm record (plain and compressed) in both archives, spread over three rooms and three users. */
function archiveRows(records: readonly FieldRecord[]): FieldRow[] {
  const eterms = records.filter((r) => r.format === 'eterm');
  const rows: FieldRow[] = [];
  for (const table of ['mam_muc_message', 'mam_message'] as const) {
    eterms.forEach((r, i) => {
      rows.push({
        table,
        owner: String(1 + (i % 3)),
        // MAM ids are large, time-based and increasing; a few share nothing but the order.
        id: String(399582233150625537n + BigInt(i) * 7919n),
        payload: r.payload,
        originId: r.originId === 'malformed' ? 'malformed' : r.originId.originId,
        isGroupchat: r.isGroupchat,
      });
    });
  }
  return rows;
}

/** A plain SQL connection to the database under test, apart from the backend's own. */
interface Sql {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function connect(kind: Kind, url: string): Sql {
  if (kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on('error', () => {});
    return { query: async (sql, params = []) => (await pool.query(sql, params)).rows, close: () => pool.end() };
  }
  const pool = mysql.createPool({ uri: url, connectionLimit: 1, supportBigNumbers: true, bigNumberStrings: true, charset: 'utf8mb4' });
  return { query: async (sql, params = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[], close: () => pool.end() };
}

async function insertRows(kind: Kind, sql: Sql, rows: readonly FieldRow[]): Promise<void> {
  const p = (n: number): string => (kind === 'postgres' ? `$${n}` : '?');
  for (const r of rows) {
    const payload = Buffer.from(r.payload);
    if (r.table === 'mam_muc_message') {
      await sql.query(`INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body) VALUES (${p(1)}, ${p(2)}, 'nick', ${p(3)}, 'hi')`, [
        r.owner,
        r.id,
        payload,
      ]);
    } else {
      await sql.query(
        `INSERT INTO mam_message (id, user_id, from_jid, remote_bare_jid, remote_resource, direction, message, search_body)
         VALUES (${p(1)}, ${p(2)}, 'alice@localhost/r', 'bob@localhost', 'r', 'I', ${p(3)}, 'hi')`,
        [r.id, r.owner, payload],
      );
    }
  }
}

/** `table:owner:id` -> the column as stored (null for NULL; is_groupchat as a boolean). */
async function stored(sql: Sql, field: FieldName, tables: readonly ArchiveTable[]): Promise<Map<string, string | boolean | null>> {
  const values = new Map<string, string | boolean | null>();
  for (const table of tables) {
    const owner = table === 'mam_muc_message' ? 'room_id' : 'user_id';
    for (const r of await sql.query(`SELECT ${owner} AS owner, id, ${field} AS value FROM ${table}`)) {
      const v = r.value;
      const value = field === 'is_groupchat' ? v === true || Number(v) === 1 : v === null ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
      values.set(rowId(table, String(r.owner), String(r.id)), value);
    }
  }
  return values;
}

export function fieldWalkSuite(kind: Kind, start: () => Promise<DatabaseFixture>): void {
  const SEED = fuzzSeed('FIELD_WALK_SEED', `${kind} field walks`);
  const dialect = kind === 'postgres' ? POSTGRES_FIELD_DIALECT : MYSQL_FIELD_DIALECT;
  const senderColumn = kind === 'postgres' ? PG_SCHEMA_STATEMENTS.column : MYSQL_SCHEMA_STATEMENTS.column;
  let fixture: DatabaseFixture;
  let decoder: Decoder;
  let rows: FieldRow[];
  let reportDir: string;
  const opened: { db: TestDatabase; sql: Sql }[] = [];

  describe(`${kind}: --field origin_id and is_groupchat`, () => {
    before(async () => {
      fixture = await start();
      decoder = await openDecoder({ maxInFlightBatches: 3, workers: 1 });
      rows = archiveRows([...erlangFieldCases(), ...erlangFieldMessages(30, SEED % 100_000)]);
      reportDir = mkdtempSync(join(tmpdir(), 'mim-field-walks-'));
    });
    after(async () => {
      for (const { db, sql } of opened) {
        await sql.close().catch(() => {});
        await db.close().catch(() => {});
      }
      await decoder?.close();
      await fixture?.stop();
      if (reportDir !== undefined) rmSync(reportDir, { recursive: true, force: true });
    });

    /** A fresh 3.3 archive of both tables, with the 3.4 sender column (the guide's origin_id index on rooms needs it). */
    async function archive(encoding?: string): Promise<{ db: TestDatabase; sql: Sql }> {
      const db = await fixture.freshDatabase(encoding === undefined ? {} : { encoding });
      await db.execute(...mamMessage33(kind), senderColumn);
      const sql = connect(kind, db.url);
      opened.push({ db, sql });
      await insertRows(kind, sql, rows);
      return { db, sql };
    }

    function backend(db: TestDatabase, field: FieldName | FieldName[]): SqlFieldBackend {
      const driver = kind === 'postgres' ? new PgDriver({ url: db.url, poolSize: 5 }) : new MysqlDriver({ url: db.url, poolSize: 5 });
      return new SqlFieldBackend(kind, field, dialect, driver);
    }

    async function migrate(
      db: TestDatabase,
      field: FieldName | FieldName[],
      extra: Partial<MigrationOptions> = {},
    ): Promise<MigrationSummary & { report: MemoryReport }> {
      const report = new MemoryReport();
      const b = backend(db, field);
      try {
        const summary = await runMigration({
          backend: b,
          openStream: (format) => decoder.openFieldsStream(format),
          report,
          batchSize: 7,
          concurrency: 3,
          applySchema: true,
          ...extra,
        });
        return { ...summary, report };
      } finally {
        await b.close();
      }
    }

    const tablesOf = (field: FieldName): ArchiveTable[] => (field === 'origin_id' ? ['mam_muc_message', 'mam_message'] : ['mam_message']);

    /** What every row must hold after the walk: MongooseIM's answer, the default for a payload that gives none, or what was there. */
    /**
     * MySQL's origin_id is varbinary(250): a longer id cannot be stored (MongooseIM's own insert
     * fails in strict mode); PostgreSQL text cannot hold a NUL character.
     */
    const tooLong = (r: FieldRow): boolean =>
      typeof r.originId === 'string' && (kind === 'mysql' ? Buffer.byteLength(r.originId) > 250 : r.originId.includes('\u0000'));

    function expectedValues(
      field: FieldName,
      kept: ReadonlyMap<string, string | boolean> = new Map(),
      all: readonly FieldRow[] = rows,
    ): Map<string, string | boolean | null> {
      const want = new Map<string, string | boolean | null>();
      for (const r of all) {
        if (!tablesOf(field).includes(r.table)) continue;
        const key = rowId(r.table, r.owner, r.id);
        const answer = field === 'origin_id' ? (tooLong(r) ? null : r.originId) : r.isGroupchat;
        want.set(key, kept.get(key) ?? (answer === 'malformed' ? (field === 'origin_id' ? null : false) : answer));
      }
      return want;
    }

    /** The rows the walk reports, and why: payloads giving no answer, and (MySQL) ids longer than the column. */
    function reported(field: FieldName, all: readonly FieldRow[] = rows): string[] {
      return all
        .filter((r) => tablesOf(field).includes(r.table))
        .flatMap((r) => {
          const key = rowId(r.table, r.owner, r.id);
          if ((field === 'origin_id' ? r.originId : r.isGroupchat) === 'malformed') return [`${key} malformed`];
          return field === 'origin_id' && tooLong(r) ? [`${key} value_not_storable`] : [];
        })
        .sort();
    }

    const reportedIds = (report: MemoryReport): string[] =>
      report.rows.map((r) => `${rowId(r.fields.table, r.fields.room_id ?? r.fields.user_id, r.fields.id)} ${r.reason}`).sort();

    test('origin_id: the 3.7 schema step, both archives walked, every row as MongooseIM answers, a value already there kept, a second run reads nothing', async () => {
      const { db, sql } = await archive();
      await assert.rejects(migrate(db, 'origin_id', { applySchema: false }), (error: unknown) => {
        assert.ok(error instanceof SchemaNotReadyError);
        assert.match(error.message, /3\.6\.0 -> 3\.7\.0/);
        assert.match(error.message, /i_mam_message_username_jid_origin_id/);
        assert.match(error.message, /i_mam_muc_message_room_id_sender_id_origin_id/);
        return true;
      });
      const b = backend(db, 'origin_id');
      await b.applySchema();
      await b.close();
      // A row MongooseIM 3.7 archived itself: its value is right by definition and never read.
      const keptRow = rows.find((r) => r.table === 'mam_message' && typeof r.originId === 'string')!;
      await sql.query(
        kind === 'postgres'
          ? `UPDATE mam_message SET origin_id = 'from-mongooseim' WHERE user_id = $1 AND id = $2`
          : `UPDATE mam_message SET origin_id = 'from-mongooseim' WHERE user_id = ? AND id = ?`,
        [keptRow.owner, keptRow.id],
      );
      const kept = new Map([[rowId(keptRow.table, keptRow.owner, keptRow.id), 'from-mongooseim']]);

      const first = await migrate(db, 'origin_id');
      assert.equal(first.reachedEnd, true);
      assert.equal(first.partitions, 2);
      assert.deepEqual(Object.fromEntries(await stored(sql, 'origin_id', tablesOf('origin_id'))), Object.fromEntries(expectedValues('origin_id', kept)));
      assert.deepEqual(reportedIds(first.report), reported('origin_id'));
      assert.ok(reported('origin_id').some((r) => r.endsWith(' malformed')));
      assert.equal(first.records, rows.length - 1, 'every row but the one holding a value was read');
      assert.equal(first.written + first.reported, first.records);
      assert.equal(first.accounting?.kind, 'not-counted');
      const names = (await sql.query(`SELECT shard FROM mim_sender_jid_checkpoint ORDER BY shard`)).map((r) => String(r.shard));
      assert.deepEqual(names, ['mam_message.origin_id 0/1', 'mam_muc_message.origin_id 0/1'], "kept apart from the sender's (named K/N)");

      const again = await migrate(db, 'origin_id');
      assert.equal(again.records, 0);
      assert.equal(again.reachedEnd, true);
    });

    test('is_groupchat: the 6.2.1 schema step, the users archive only, true written where MongooseIM answers true, a true already there kept', async () => {
      const { db, sql } = await archive();
      const b = backend(db, 'is_groupchat');
      assert.deepEqual(await b.applySchema(), ['ALTER TABLE mam_message ADD COLUMN is_groupchat boolean NOT NULL DEFAULT false;']);
      await b.close();
      const keptRow = rows.find((r) => r.table === 'mam_message' && r.isGroupchat === false)!;
      await sql.query(
        kind === 'postgres'
          ? `UPDATE mam_message SET is_groupchat = true WHERE user_id = $1 AND id = $2`
          : `UPDATE mam_message SET is_groupchat = 1 WHERE user_id = ? AND id = ?`,
        [keptRow.owner, keptRow.id],
      );
      const summary = await migrate(db, 'is_groupchat');
      assert.equal(summary.partitions, 1);
      const want = expectedValues('is_groupchat', new Map([[rowId(keptRow.table, keptRow.owner, keptRow.id), true]]));
      assert.deepEqual(Object.fromEntries(await stored(sql, 'is_groupchat', ['mam_message'])), Object.fromEntries(want));
      assert.ok([...want.values()].some((v) => v === true) && [...want.values()].some((v) => v === false));
      assert.deepEqual(reportedIds(summary.report), reported('is_groupchat'));

      // verify: the sample of every row finds only the planted one; --complete finds it too.
      const verifying = backend(db, 'is_groupchat');
      try {
        const sample = await runVerify({ backend: verifying, openStream: (f) => decoder.openFieldsStream(f), sample: rows.length });
        assert.deepEqual(
          sample.mismatches.map((m) => [m.fields.user_id, m.fields.id, m.kind]),
          [[keptRow.owner, keptRow.id, 'different_value']],
        );
        const findings: CompleteFinding[] = [];
        const complete = await runVerifyComplete({
          backend: verifying,
          openStream: (f) => decoder.openFieldsStream(f),
          reportPaths: [],
          onFinding: (f) => findings.push(f),
          batchSize: 9,
        });
        assert.equal(complete.scanned, rows.length / 2);
        assert.deepEqual(
          findings.map((f) => [f.fields.id, f.class, f.kind]),
          [[keptRow.id, 'written_wrong', 'different_value']],
        );
      } finally {
        await verifying.close();
      }
    });

    test('origin_id: a dry run writes nothing; two shards then fill every row; verify --complete finds a value planted wrong, and nothing else', async () => {
      const { db, sql } = await archive();
      const b = backend(db, 'origin_id');
      await b.applySchema();
      await b.close();
      const dry = await migrate(db, 'origin_id', { dryRun: true });
      assert.equal(dry.records, rows.length);
      assert.ok(
        [...(await stored(sql, 'origin_id', tablesOf('origin_id'))).values()].every((v) => v === null),
        'a dry run writes nothing',
      );
      const shards = await Promise.all([0, 1].map((index) => migrate(db, 'origin_id', { shard: { index, count: 2 } })));
      assert.equal(shards[0].records + shards[1].records, rows.length);
      assert.deepEqual(Object.fromEntries(await stored(sql, 'origin_id', tablesOf('origin_id'))), Object.fromEntries(expectedValues('origin_id')));

      const victim = rows.find((r) => r.table === 'mam_muc_message' && typeof r.originId === 'string')!;
      await sql.query(
        kind === 'postgres'
          ? `UPDATE mam_muc_message SET origin_id = 'planted' WHERE room_id = $1 AND id = $2`
          : `UPDATE mam_muc_message SET origin_id = 'planted' WHERE room_id = ? AND id = ?`,
        [victim.owner, victim.id],
      );
      const verifying = backend(db, 'origin_id');
      try {
        const findings: CompleteFinding[] = [];
        const complete = await runVerifyComplete({
          backend: verifying,
          openStream: (f) => decoder.openFieldsStream(f),
          reportPaths: [],
          onFinding: (f) => findings.push(f),
          batchSize: 11,
        });
        assert.equal(complete.scanned, rows.length);
        assert.deepEqual(
          findings.map((f) => [f.fields.table, f.fields.room_id, f.fields.id, f.kind]),
          [['mam_muc_message', victim.owner, victim.id, 'different_value']],
        );
        assert.equal(complete.counts.written_right, rows.length - 1);
      } finally {
        await verifying.close();
      }
    });

    test('locks: a second process on the same field walk and shard is refused at once; the sender walk and the other field are not', async () => {
      const { db } = await archive();
      const first = backend(db, 'origin_id');
      const second = backend(db, 'origin_id');
      const other = backend(db, 'is_groupchat');
      const sender = db.backend();
      try {
        await first.acquireShard({ index: 0, count: 1 });
        await assert.rejects(second.acquireShard({ index: 0, count: 1 }), /being migrated by another process .*mam_muc_message\.origin_id 0\/1/);
        await other.acquireShard({ index: 0, count: 1 });
        await sender.acquireShard({ index: 0, count: 1 });
        await second.acquireShard({ index: 1, count: 2 });
      } finally {
        for (const b of [first, second, other]) await b.close();
        await sender.close();
      }
    });

    if (kind === 'postgres') {
      test('origin_id in a LATIN1 database: an id the encoding cannot hold is reported value_not_storable, the rest of its batch written', async () => {
        const { db, sql } = await archive('LATIN1');
        const summary = await migrate(db, 'origin_id');
        assert.equal(summary.reachedEnd, true);
        const unencodable = (r: FieldRow): boolean => typeof r.originId === 'string' && [...r.originId].some((c) => c.codePointAt(0)! > 0xff);
        const refused = rows.filter(unencodable);
        assert.ok(refused.length > 0, 'the cases hold ids outside LATIN1');
        assert.deepEqual(
          summary.report.rows
            .filter((r) => r.reason === 'value_not_storable')
            .map((r) => rowId(r.fields.table, r.fields.room_id ?? r.fields.user_id, r.fields.id))
            .sort(),
          refused.map((r) => rowId(r.table, r.owner, r.id)).sort(),
        );
        const want = expectedValues('origin_id');
        for (const r of refused) want.set(rowId(r.table, r.owner, r.id), null);
        assert.deepEqual(Object.fromEntries(await stored(sql, 'origin_id', tablesOf('origin_id'))), Object.fromEntries(want));
      });
    }

    /**
     * Through the CLI: killed with SIGKILL once a checkpoint is committed, run again until done;
     * then `verify --complete` clean, and a value planted wrong found.
     */
    async function killAndResume(fields: readonly FieldName[]): Promise<void> {
      const { db, sql } = await archive();
      const args = [
        kind,
        '--url',
        db.url,
        '--field',
        fields.join(','),
        '--apply-schema',
        '--batch-size',
        '5',
        '--concurrency',
        '1',
        // Slow enough that a commit is seen before the end (the walk is about 40 batches).
        '--max-rate',
        '60',
        '--report',
        join(reportDir, `${kind}-${fields.join('+')}-kill.jsonl`),
        '--progress-interval',
        '3600',
      ];
      const run = startMigrateProcess(args);
      let ended = false;
      void run.done.then(() => (ended = true));
      // Killed once a checkpoint of this walk is committed.
      for (;;) {
        if (ended) break;
        const saved = await sql.query(`SELECT shard FROM mim_sender_jid_checkpoint`).catch(() => []);
        if (saved.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      run.kill9();
      const killed = await run.done;
      assert.equal(killed.status, 'SIGKILL', `the run ended before the kill: ${killed.stderr}`);
      const halfway = await stored(sql, 'origin_id', tablesOf('origin_id'));
      assert.ok([...halfway.values()].some((v) => v === null) && [...halfway.values()].some((v) => v !== null), 'killed mid-walk');
      const resumed = await startMigrateProcess(args.filter((a, i) => a !== '--max-rate' && args[i - 1] !== '--max-rate')).done;
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stderr, /resuming partition/);
      assert.match(resumed.stdout, /done \(end reached\)/);
      assert.match(resumed.stdout, /accounted for: not counted/);
      for (const field of fields) {
        assert.deepEqual(Object.fromEntries(await stored(sql, field, tablesOf(field))), Object.fromEntries(expectedValues(field)), field);
      }

      // verify through the CLI (the fields stream it opens for this backend): clean, then a planted value found.
      const verifyArgs = ['verify', kind, '--url', db.url, '--field', fields.join(',')];
      const clean = await runCliBounded([...verifyArgs, '--complete'], 120_000);
      assert.equal(clean.status, 0, clean.stderr);
      assert.equal(clean.stdout, '');
      const victim = rows.find((r) => r.table === 'mam_message' && typeof r.originId === 'string' && !tooLong(r))!;
      await sql.query(
        kind === 'postgres'
          ? `UPDATE mam_message SET origin_id = NULL WHERE user_id = $1 AND id = $2`
          : `UPDATE mam_message SET origin_id = NULL WHERE user_id = ? AND id = ?`,
        [victim.owner, victim.id],
      );
      const found = await runCliBounded([...verifyArgs, '--complete'], 120_000);
      assert.equal(found.status, 3, found.stderr);
      const lines = found.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string>);
      const holds = fields.length === 1 ? 'origin_id NULL' : `origin_id NULL, is_groupchat ${JSON.stringify(victim.isGroupchat === true)}`;
      assert.deepEqual(
        lines.map((l) => [l.table, l.user_id, l.id, l.class, l.kind, l.stored]),
        [['mam_message', victim.owner, victim.id, 'written_wrong', 'different_value', holds]],
      );
    }

    test('origin_id through the CLI: killed with SIGKILL after a commit, run again until done: every row as MongooseIM answers', async () => {
      await killAndResume(['origin_id']);
    });

    test('origin_id,is_groupchat through the CLI: killed with SIGKILL after a commit, run again until done: both columns as MongooseIM answers', async () => {
      await killAndResume(['origin_id', 'is_groupchat']);
    });

    /**
     * Rows no case holds: a groupchat message whose origin-id its column cannot take (MySQL: longer
     * than 250 bytes; PostgreSQL: a NUL character), made from an Erlang-made payload by changing
     * the id's bytes, and answered by the Erlang oracle.
     */
    function plantedRows(id = kind === 'mysql' ? 'y'.repeat(300) : 'a\u0000c'): FieldRow[] {
      const base = rows.find((r) => r.table === 'mam_message' && r.originId === 'abc' && r.isGroupchat === true && Buffer.from(r.payload)[1] !== 0x50)!;
      assert.ok(base !== undefined, 'the cases hold an uncompressed groupchat message with origin-id abc');
      const from = Buffer.from(r3('abc'));
      const payload = Buffer.from(base.payload);
      const at = payload.indexOf(from);
      assert.ok(at >= 0, 'the id is a binary of the term');
      const patched = Buffer.concat([payload.subarray(0, at), r3(id), payload.subarray(at + from.length)]);
      const [answer] = erlangFieldOracle([patched]);
      assert.deepEqual(answer, { originId: { originId: id }, isGroupchat: true }, 'Erlang answers the planted payload');
      return ['1', '2'].map((owner, i) => ({
        table: 'mam_message' as const,
        owner,
        id: String(399582233150625537n + 1_000_000n + BigInt(i)),
        payload: patched,
        originId: id,
        isGroupchat: true,
      }));
    }

    /** A binary of the external term format (BINARY_EXT). */
    function r3(text: string): Buffer {
      const bytes = Buffer.from(text, 'utf8');
      const header = Buffer.alloc(5);
      header[0] = 109;
      header.writeUInt32BE(bytes.length, 1);
      return Buffer.concat([header, bytes]);
    }

    /** One line per record: the first field (in the walk's order) the record's table has that gives no answer or cannot be stored. */
    function combinedReported(all: readonly FieldRow[]): string[] {
      const byField = new Map<string, string>();
      for (const field of ['is_groupchat', 'origin_id'] as const) {
        for (const line of reported(field, all)) byField.set(line.slice(0, line.lastIndexOf(' ')), line);
      }
      return [...byField.values()].sort();
    }

    test('keys from the whole range the columns allow, whole and in N shards, pages of 1 to 7 rows: every row as MongooseIM answers, or reported', async () => {
      const ranges = KEY_RANGES[kind];
      const { db, sql } = await archive();
      await sql.query('DELETE FROM mam_muc_message');
      await sql.query('DELETE FROM mam_message');
      const b = backend(db, ['origin_id', 'is_groupchat']);
      await b.applySchema();
      await b.close();
      // Each case re-keys some of the suite's Erlang-made rows: a few owners (rooms, users) and ids
      // anywhere in the columns' range, unique per table.
      const caseArb = fc.record({
        owners: fc.uniqueArray(integerIn(ranges.room), { minLength: 1, maxLength: 3, selector: String }),
        picks: fc.uniqueArray(fc.record({ row: fc.nat(rows.length - 1), owner: fc.nat(), id: integerIn(ranges.id) }), {
          minLength: 1,
          maxLength: 20,
          selector: (p) => `${rows[p.row].table}:${p.owner % 3}:${p.id}`,
        }),
        batchSize: fc.integer({ min: 1, max: 7 }),
        concurrency: fc.integer({ min: 1, max: 3 }),
        shards: fc.constantFrom(1, 2, 3),
      });
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const keyed = new Map<string, FieldRow>();
          for (const p of c.picks) {
            const row = { ...rows[p.row], owner: String(c.owners[(p.owner % 3) % c.owners.length]), id: String(p.id) };
            keyed.set(rowId(row.table, row.owner, row.id), row);
          }
          const all = [...keyed.values()];
          await sql.query('DELETE FROM mam_muc_message');
          await sql.query('DELETE FROM mam_message');
          await insertRows(kind, sql, all);
          const lines: MemoryReport['rows'] = [];
          for (const shard of shardsOf(c.shards)) {
            const run = await migrate(db, ['origin_id', 'is_groupchat'], { shard, reset: true, batchSize: c.batchSize, concurrency: c.concurrency });
            assert.equal(run.reachedEnd, true);
            lines.push(...run.report.rows);
          }
          const described = JSON.stringify(c, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
          for (const field of ['origin_id', 'is_groupchat'] as const) {
            assert.deepEqual(
              Object.fromEntries(await stored(sql, field, tablesOf(field))),
              Object.fromEntries(expectedValues(field, new Map(), all)),
              `${field}: ${described}`,
            );
          }
          const report = new MemoryReport();
          report.append(lines);
          assert.deepEqual(reportedIds(report), combinedReported(all), `each row without its values reported once: ${described}`);
          // verify --complete, shard by shard, scans every row once and finds every one right (a
          // reported row's default included: no payload answer stands behind another value).
          let scanned = 0;
          for (const shard of shardsOf(c.shards)) {
            const verifying = backend(db, ['origin_id', 'is_groupchat']);
            try {
              const complete = await runVerifyComplete({
                backend: verifying,
                openStream: (f) => decoder.openFieldsStream(f),
                reportPaths: [],
                shard,
                batchSize: c.batchSize,
                onFinding: (f) => assert.fail(`verify --complete: ${JSON.stringify(f)}: ${described}`),
              });
              assert.equal(complete.counts.written_right, complete.scanned);
              scanned += complete.scanned;
            } finally {
              await verifying.close();
            }
          }
          assert.equal(scanned, all.length, `verify --complete scans every row once: ${described}`);
        }),
        { seed: SEED, numRuns: 25, endOnFailure: true },
      );
    });

    test('origin_id,is_groupchat in one walk: the same columns as the two walks, as Erlang answers; a field a row cannot take is reported, its other field written', async () => {
      const extra = plantedRows();
      const all = [...rows, ...extra];
      const one = await archive();
      const two = await archive();
      for (const { sql } of [one, two]) await insertRows(kind, sql, extra);

      const both = await migrate(one.db, ['is_groupchat', 'origin_id']);
      assert.equal(both.reachedEnd, true);
      assert.equal(both.partitions, 2);
      await migrate(two.db, 'origin_id');
      await migrate(two.db, 'is_groupchat');
      for (const field of ['origin_id', 'is_groupchat'] as const) {
        const combined = Object.fromEntries(await stored(one.sql, field, tablesOf(field)));
        assert.deepEqual(combined, Object.fromEntries(await stored(two.sql, field, tablesOf(field))), `${field}: the same as its own walk`);
        assert.deepEqual(combined, Object.fromEntries(expectedValues(field, new Map(), all)), `${field}: as Erlang answers`);
      }
      // One line per record, naming the field; the planted rows keep NULL and get true.
      assert.deepEqual(reportedIds(both.report), combinedReported(all));
      for (const r of extra) {
        const line = both.report.rows.find((l) => l.fields.user_id === r.owner && l.fields.id === r.id)!;
        assert.equal(line.reason, 'value_not_storable');
        assert.match(line.detail, /^origin_id ".*": .* \(is_groupchat written from the same payload\)$/);
      }
      const undecodedId = all.find((r) => r.table === 'mam_message' && r.originId === 'malformed' && r.isGroupchat !== 'malformed')!;
      assert.ok(undecodedId !== undefined, 'the cases hold an origin-id that does not decode beside a type that does');
      const partial = both.report.rows.find((l) => l.fields.user_id === undecodedId.owner && l.fields.id === undecodedId.id)!;
      assert.equal(partial.reason, 'malformed');
      assert.match(
        partial.detail,
        /^origin_id: .* \(is_groupchat written from the same payload\)$/,
        'an origin-id that does not decode: is_groupchat still answered',
      );
      assert.equal(both.records, all.length, 'every row holds a default before the walk');
      assert.equal(both.written + both.reported, both.records);
      assert.equal(both.accounting?.kind, 'not-counted');
      const names = (await one.sql.query(`SELECT shard FROM mim_sender_jid_checkpoint ORDER BY shard`)).map((r) => String(r.shard));
      assert.deepEqual(names, ['mam_message.origin_id+is_groupchat 0/1', 'mam_muc_message.origin_id 0/1']);

      // Checkpoints: a single-field walk after it starts from the beginning (its own checkpoint),
      // a second combined run reads nothing, --reset reads again every row still holding a default.
      const again = await migrate(one.db, ['origin_id', 'is_groupchat']);
      assert.equal(again.records, 0);
      const falseRows = all.filter((r) => r.table === 'mam_message' && r.isGroupchat !== true).length;
      const alone = await migrate(one.db, 'is_groupchat');
      assert.equal(alone.records, falseRows, 'the is_groupchat walk trusts no checkpoint of the combined walk');
      assert.equal(alone.written, falseRows - reported('is_groupchat', all).length);
      const defaults = (table: ArchiveTable): number =>
        all.filter(
          (r) => r.table === table && (expectedValues('origin_id', new Map(), all).get(rowId(r.table, r.owner, r.id)) === null || r.isGroupchat !== true),
        ).length;
      const reset = await migrate(one.db, ['origin_id', 'is_groupchat'], { reset: true });
      assert.equal(
        reset.records,
        defaults('mam_message') +
          all.filter((r) => r.table === 'mam_muc_message' && expectedValues('origin_id', new Map(), all).get(rowId(r.table, r.owner, r.id)) === null).length,
      );
      // Rows already holding their answers are passed over (skipped): nothing rewritten.
      assert.equal(reset.written + reset.reported, reset.records - reset.skipped);
      assert.ok(reset.skipped > 0);
      assert.deepEqual(
        Object.fromEntries(await stored(one.sql, 'origin_id', tablesOf('origin_id'))),
        Object.fromEntries(expectedValues('origin_id', new Map(), all)),
      );

      // verify --complete judges each field: clean; then a row wrong in one field, and one wrong in both.
      const groupchatRow = all.find((r) => r.table === 'mam_message' && r.isGroupchat === true && typeof r.originId === 'string' && !tooLong(r))!;
      const otherRow = all.find((r) => r.table === 'mam_message' && r.isGroupchat === true && r !== groupchatRow && r.id !== groupchatRow.id)!;
      const verifying = backend(one.db, ['origin_id', 'is_groupchat']);
      try {
        const complete = (): Promise<CompleteFinding[]> => {
          const findings: CompleteFinding[] = [];
          return runVerifyComplete({
            backend: verifying,
            openStream: (f) => decoder.openFieldsStream(f),
            reportPaths: [],
            onFinding: (f) => findings.push(f),
            batchSize: 9,
          }).then((c) => {
            assert.equal(c.scanned, all.length);
            return findings;
          });
        };
        assert.deepEqual(await complete(), []);
        const p = (n: number): string => (kind === 'postgres' ? `$${n}` : '?');
        await one.sql.query(
          `UPDATE mam_message SET is_groupchat = ${kind === 'postgres' ? 'false' : '0'}, origin_id = NULL WHERE user_id = ${p(1)} AND id = ${p(2)}`,
          [groupchatRow.owner, groupchatRow.id],
        );
        await one.sql.query(`UPDATE mam_message SET is_groupchat = ${kind === 'postgres' ? 'false' : '0'} WHERE user_id = ${p(1)} AND id = ${p(2)}`, [
          otherRow.owner,
          otherRow.id,
        ]);
        const findings = (await complete()).map((f) => [f.fields.id, f.class, f.kind, f.detail]).sort();
        assert.deepEqual(
          findings,
          [
            [
              groupchatRow.id,
              'written_wrong',
              'different_value',
              `payload says origin_id ${JSON.stringify(groupchatRow.originId)}, the row holds NULL; payload says is_groupchat true, the row holds false`,
            ],
            [otherRow.id, 'written_wrong', 'different_value', 'payload says is_groupchat true, the row holds false'],
          ].sort(),
        );
      } finally {
        await verifying.close();
      }
    });

    if (kind === 'postgres') {
      test('origin_id,is_groupchat in a LATIN1 database: a row whose id the database refuses still gets is_groupchat, and is reported', async () => {
        const extra = plantedRows('zażółć');
        const all = [...rows, ...extra];
        const { db, sql } = await archive('LATIN1');
        await insertRows(kind, sql, extra);
        const summary = await migrate(db, ['origin_id', 'is_groupchat']);
        assert.equal(summary.reachedEnd, true);
        for (const r of extra) {
          const line = summary.report.rows.find((l) => l.fields.user_id === r.owner && l.fields.id === r.id)!;
          assert.equal(line.reason, 'value_not_storable');
          assert.match(line.detail, /^origin_id "zażółć": the database refused it: .* \(is_groupchat written from the same payload\)$/);
        }
        const groupchat = await stored(sql, 'is_groupchat', ['mam_message']);
        assert.deepEqual(Object.fromEntries(groupchat), Object.fromEntries(expectedValues('is_groupchat', new Map(), all)));
        const origin = await stored(sql, 'origin_id', ['mam_message']);
        for (const r of extra) assert.equal(origin.get(rowId(r.table, r.owner, r.id)), null);
        assert.equal(summary.written + summary.skipped + summary.reported, summary.records);
      });
    }

    if (kind === 'postgres') {
      test('PostgreSQL: the field walks and verify --complete read their pages by binary COPY (payloads as raw bytes), every row as MongooseIM answers', async () => {
        const { db, sql } = await archive();
        /** The real driver, counting the pages it reads by binary COPY. */
        class CountingPgDriver extends PgDriver {
          copied = 0;
          override readRows(...args: Parameters<PgDriver['readRows']>): ReturnType<PgDriver['readRows']> {
            this.copied++;
            return super.readRows(...args);
          }
        }
        const driver = new CountingPgDriver({ url: db.url, poolSize: 5 });
        const b = new SqlFieldBackend(kind, ['origin_id', 'is_groupchat'], dialect, driver);
        try {
          await b.applySchema();
          const summary = await runMigration({
            backend: b,
            openStream: (f) => decoder.openFieldsStream(f),
            report: new MemoryReport(),
            batchSize: 7,
            concurrency: 2,
          });
          assert.equal(summary.records, rows.length);
          assert.ok(driver.copied >= rows.length / 7, `${driver.copied} pages by binary COPY`);
          for (const field of ['origin_id', 'is_groupchat'] as const) {
            assert.deepEqual(Object.fromEntries(await stored(sql, field, tablesOf(field))), Object.fromEntries(expectedValues(field)), field);
          }
          const before = driver.copied;
          const findings: CompleteFinding[] = [];
          const complete = await runVerifyComplete({
            backend: b,
            openStream: (f) => decoder.openFieldsStream(f),
            reportPaths: [],
            onFinding: (f) => findings.push(f),
            batchSize: 9,
          });
          assert.equal(complete.scanned, rows.length);
          assert.deepEqual(findings, []);
          assert.ok(driver.copied > before, 'verify --complete pages by binary COPY too');
        } finally {
          await b.close();
        }
      });
    }

    test('origin_id,is_groupchat: a dry run writes nothing and reports what the walk would, records written in part included', async () => {
      const extra = plantedRows();
      const all = [...rows, ...extra];
      const { db, sql } = await archive();
      await insertRows(kind, sql, extra);
      const b = backend(db, ['origin_id', 'is_groupchat']);
      await b.applySchema();
      await b.close();
      const dry = await migrate(db, ['origin_id', 'is_groupchat'], { dryRun: true });
      assert.equal(dry.records, all.length);
      assert.deepEqual(reportedIds(dry.report), combinedReported(all));
      assert.equal(dry.written + dry.reported, dry.records);
      assert.ok(
        [...(await stored(sql, 'origin_id', tablesOf('origin_id'))).values()].every((v) => v === null),
        'a dry run writes nothing',
      );
      assert.ok(
        [...(await stored(sql, 'is_groupchat', ['mam_message'])).values()].every((v) => v === false),
        'a dry run writes nothing',
      );
      assert.equal((await sql.query(`SELECT shard FROM mim_sender_jid_checkpoint`).catch(() => [])).length, 0);
    });
  });
}
