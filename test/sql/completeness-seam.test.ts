/**
 * The SQL backends' side of the completeness checks, on real PostgreSQL and MariaDB:
 * `unwrittenKeys` (the end-of-run accounting: rows still NULL, through the index on sender_id)
 * and `scanPage` (`verify --complete`: the walk over every row, written or not, each written row
 * with what its sender_id points at).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { WHOLE_TABLE, type ScannedRecord, type ShardSpec } from '../../clients/pipeline/types.js';
import { compareRowKeys, type RowKey } from '../../clients/backends/sql/sql-dialect.js';
import type { SqlVerifySample } from '../../clients/backends/sql/sql-backend.js';
import { POSTGRES_DIALECT } from '../../clients/backends/sql/postgres-statements.js';
import { inlineIntegerParams } from '../../clients/backends/sql/pg-binary-copy.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { pairKey, type DatabaseFixture, type TestDatabase } from './fixture.js';
import { generatedPayload, insertGenerated, seededRandom, SENDER_SERVER, shuffled, type GeneratedRow } from './generated-archive.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

/** 60 rows, ids of 1 to 19 digits, 4 rooms, every 7th a row that cannot be migrated. */
function archive(): GeneratedRow[] {
  const ids = [1n, 9n, 10n, 99n, 100n, 12_345n, 999_999n, 1_000_000n, 9_999_999n, 10_000_000n, 26_600_000n, 399582233150625537n, 9223372036854775807n];
  const rows: GeneratedRow[] = [];
  let n = 0;
  for (const roomId of ['1', '2', '7', '2147483647']) {
    for (const id of ids) {
      if ((n + Number(id % 3n)) % 4 === 3) continue;
      rows.push({ roomId, id: String(roomId === '2' && id > 1n ? id - 1n : id), user: n % 7 === 3 ? null : `u${n % 5}` });
      n++;
    }
  }
  return shuffled(rows, seededRandom(2));
}

const keyOf = (r: { roomId: string; id: string }): RowKey => ({ roomId: r.roomId, id: r.id });
const inShard =
  (shard: ShardSpec) =>
  (r: { roomId: string }): boolean =>
    Number(BigInt(r.roomId) % BigInt(shard.count)) === shard.index;

for (const [name, start] of [
  ['PostgreSQL', startPostgresFixture],
  ['MariaDB', () => startMariadbFixture()],
] as const) {
  describe(`${name}: unwrittenKeys and scanPage`, () => {
    let fixture: DatabaseFixture;
    const opened: TestDatabase[] = [];
    before(async () => {
      fixture = await start();
    });
    after(async () => {
      for (const db of opened) await db.close().catch(() => {});
      await fixture?.stop();
    });

    async function seeded(rows: readonly GeneratedRow[]): Promise<TestDatabase> {
      const db = await fixture.freshDatabase();
      opened.push(db);
      await insertGenerated(db, rows);
      const backend = db.backend();
      await backend.applySchema().finally(() => backend.close());
      return db;
    }

    async function migrate(db: TestDatabase, shard: ShardSpec = WHOLE_TABLE): Promise<MemoryReport> {
      const report = new MemoryReport();
      const backend = db.backend();
      await runMigration({ backend, openStream: openInProcessStream, report, batchSize: 4, concurrency: 2, shard }).finally(() => backend.close());
      return report;
    }

    test('unwrittenKeys: the rows still NULL, whole and per shard, in key order, bounded by max', async () => {
      const rows = archive();
      const db = await seeded(rows);
      const backend = db.backend();
      try {
        const all = rows.map(keyOf).sort(compareRowKeys);
        assert.deepEqual(await backend.unwrittenKeys(WHOLE_TABLE, 1000), { keys: all, complete: true });
        assert.deepEqual(await backend.unwrittenKeys(WHOLE_TABLE, all.length), { keys: all, complete: true });
        const bounded = await backend.unwrittenKeys(WHOLE_TABLE, 5);
        assert.equal(bounded.complete, false);
        assert.equal(bounded.keys.length, 5);
        assert.deepEqual(await backend.unwrittenKeys(WHOLE_TABLE, 0), { keys: [], complete: false });

        // Shard 1/3 migrated: its NULL rows are exactly its reported ones; the others are untouched.
        const shard = { index: 1, count: 3 };
        const report = await migrate(db, shard);
        const reported = report.rows.map((r) => ({ roomId: r.fields.room_id, id: r.fields.id })).sort(compareRowKeys);
        assert.deepEqual(
          reported,
          rows
            .filter((r) => inShard(shard)(r) && r.user === null)
            .map(keyOf)
            .sort(compareRowKeys),
        );
        assert.deepEqual((await backend.unwrittenKeys(shard, 1000)).keys, reported);
        const other = { index: 2, count: 3 };
        assert.deepEqual((await backend.unwrittenKeys(other, 1000)).keys, rows.filter(inShard(other)).map(keyOf).sort(compareRowKeys));
      } finally {
        await backend.close();
      }
    });

    for (const shard of [WHOLE_TABLE, { index: 0, count: 2 }, { index: 1, count: 2 }]) {
      test(`scanPage (shard ${shard.index}/${shard.count}): every row once, in key order, written or not, with what sender_id points at`, async () => {
        const rows = archive();
        const db = await seeded(rows);
        // Half the archive migrated, then a sender_id pointing at no mam_server_user row.
        const half = rows.filter((r) => Number(BigInt(r.id) % 2n) === 0);
        await migrate(db, WHOLE_TABLE);
        for (const r of rows.filter((r) => !half.includes(r)))
          await db.execute(`UPDATE mam_muc_message SET sender_id = NULL WHERE room_id = ${r.roomId} AND id = ${r.id}`);
        const dangling = half.find((r) => r.user !== null)!;
        await db.setSenderId(dangling.roomId, dangling.id, '999999');
        const users = new Map((await db.users()).map((u) => [pairKey(u), u.id]));

        const backend = db.backend();
        try {
          const [partition] = await backend.partitions(shard);
          const seen: ScannedRecord<RowKey>[] = [];
          let cursor: RowKey | null = null;
          // Pages of 3 rows, cut to 2 by the byte bound.
          const bytes = Math.floor(generatedPayload(rows[0]).length * 2.5);
          for (let pages = 0; ; pages++) {
            assert.ok(pages < 200, 'the scan ends');
            const page = await backend.scanPage(partition, cursor, { records: 3, bytes });
            seen.push(...page.records);
            cursor = page.cursor;
            if (page.end) break;
          }
          const expected = rows.filter(inShard(shard)).map(keyOf).sort(compareRowKeys);
          assert.deepEqual(
            seen.map((r) => r.key),
            expected,
            'every row of the shard once, in key order',
          );
          for (const record of seen) {
            const row = rows.find((r) => r.roomId === record.key.roomId && r.id === record.key.id)!;
            assert.deepEqual(Buffer.from(record.payload), generatedPayload(row));
            const written = half.includes(row) && row.user !== null;
            assert.equal(record.written, written, `${record.key.roomId}:${record.key.id} written`);
            if (!written) {
              assert.equal(record.stored, '');
              continue;
            }
            const sample = record as unknown as SqlVerifySample;
            if (row === dangling) {
              assert.equal(sample.user, null);
              assert.match(record.stored, /sender_id 999999 \(no mam_server_user row\)/);
            } else {
              assert.equal(sample.user, row.user);
              assert.equal(sample.server, SENDER_SERVER);
              assert.equal(record.stored, `sender_id ${users.get(pairKey({ user: row.user!, server: SENDER_SERVER }))} = ${row.user}@${SENDER_SERVER}`);
            }
          }
          // What verify --complete judges a written row by: the backend's own verifyAnswer.
          const right = seen.find((r) => r.written && r.key.id !== dangling.id)!;
          const row = rows.find((r) => r.roomId === right.key.roomId && r.id === right.key.id)!;
          assert.equal(
            backend.verifyAnswer(right as unknown as SqlVerifySample, {
              key: '0',
              ok: true,
              bareJid: `${row.user}@${SENDER_SERVER}`,
              user: row.user!,
              server: SENDER_SERVER,
            }),
            null,
          );
        } finally {
          await backend.close();
        }
      });
    }

    if (name === 'PostgreSQL') {
      test('unwrittenKeys reads the index on sender_id even when the statistics still count every row as NULL', async () => {
        const db = await fixture.freshDatabase();
        opened.push(db);
        const backend = db.backend();
        await backend.applySchema().finally(() => backend.close());
        await db.execute(
          `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
             SELECT 1 + g % 50, g, 'nick', '\\x836a'::bytea, '' FROM generate_series(1, 50000) AS g`,
          'ANALYZE mam_muc_message',
          'UPDATE mam_muc_message SET sender_id = 1 WHERE id % 1000 <> 0',
        );
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          // The backend's own call, on the same state: ids 1000, 2000, ... 50000, all in room 1.
          const probe = db.backend();
          const unwritten = await probe.unwrittenKeys(WHOLE_TABLE, 100).finally(() => probe.close());
          assert.deepEqual(unwritten, { keys: Array.from({ length: 50 }, (_, i) => ({ roomId: '1', id: String((i + 1) * 1000) })), complete: true });
          for (const shard of [WHOLE_TABLE, { index: 3, count: 4 }]) {
            const statement = POSTGRES_DIALECT.unwrittenKeys(shard, 10_001);
            await client.query('BEGIN');
            for (const setting of POSTGRES_DIALECT.unwrittenKeysSettings) await client.query(setting.sql);
            const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${inlineIntegerParams(statement)}`);
            await client.query('COMMIT');
            const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
            assert.match(plan, /Index (Only )?Scan using i_mam_muc_message_sender_id/, plan);
            assert.doesNotMatch(plan, /Seq Scan/, plan);
          }
        } finally {
          await client.end();
        }
      });
    }
  });
}
