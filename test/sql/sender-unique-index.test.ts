/**
 * mam_server_user without its unique (server, user_name) index (a schema that drifted): the
 * backfill refuses, since concurrent inserts of one sender would make duplicate rows that
 * MongooseIM's per-sender lookup then half-misses, unless `--single-writer` says this process is
 * the only writer; with it, `--shard K/N` with N > 1 is refused. Real PostgreSQL and MariaDB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { PostgresBackend } from '../../clients/backends/sql/postgres.js';
import { MysqlBackend } from '../../clients/backends/sql/mysql.js';
import type { SqlBackend } from '../../clients/backends/sql/sql-backend.js';
import type { ShardSpec } from '../../clients/pipeline/types.js';
import { runCli } from '../support/cli-process.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { insertGenerated, unaccountedRows, type GeneratedRow } from './generated-archive.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

const ROWS: GeneratedRow[] = Array.from({ length: 20 }, (_, n) => ({ roomId: String(1 + (n % 3)), id: String(100 + n), user: `u${n % 4}` }));

for (const [name, start, dropIndex, open] of [
  [
    'PostgreSQL',
    startPostgresFixture,
    'DROP INDEX i_mam_server_user_name',
    (url: string, singleWriter: boolean): SqlBackend => new PostgresBackend({ url, singleWriter }),
  ],
  [
    'MariaDB',
    () => startMariadbFixture(),
    'ALTER TABLE mam_server_user DROP INDEX uc_mam_server_user_name',
    (url: string, singleWriter: boolean): SqlBackend => new MysqlBackend({ url, singleWriter }),
  ],
] as const) {
  describe(`${name}: mam_server_user without its unique (server, user_name) index`, () => {
    let fixture: DatabaseFixture;
    const opened: TestDatabase[] = [];
    before(async () => {
      fixture = await start();
    });
    after(async () => {
      for (const db of opened) await db.close().catch(() => {});
      await fixture?.stop();
    });

    async function seeded(): Promise<TestDatabase> {
      const db = await fixture.freshDatabase();
      opened.push(db);
      await insertGenerated(db, ROWS);
      await db.execute(dropIndex);
      return db;
    }

    function migrate(db: TestDatabase, singleWriter: boolean, shard?: ShardSpec): Promise<unknown> {
      const backend = open(db.url, singleWriter);
      return runMigration({
        backend,
        openStream: openInProcessStream,
        report: new MemoryReport(),
        applySchema: true,
        batchSize: 4,
        ...(shard === undefined ? {} : { shard }),
      }).finally(() => backend.close());
    }

    test('refused with what to do, nothing touched (not even the schema step)', async () => {
      const db = await seeded();
      await assert.rejects(migrate(db, false), /mam_server_user has no unique index on \(server, user_name\).*--single-writer/s);
      assert.equal(await db.columnExists('mam_muc_message', 'sender_id'), false);
      assert.deepEqual(await db.users(), []);
    });

    test('--single-writer: one process migrates every row; with --shard K/N (N > 1) refused', async () => {
      const db = await seeded();
      await assert.rejects(migrate(db, true, { index: 0, count: 2 }), /--single-writer says one process writes mam_server_user, but --shard 0\/2 runs 2/);
      assert.deepEqual(await db.users(), []);
      await migrate(db, true);
      assert.deepEqual(await unaccountedRows(db, ROWS, []), []);
    });

    if (name === 'PostgreSQL') {
      test('through the CLI: exit status 1 and the message; --single-writer --shard 1/2 exit 1', async (t) => {
        const db = await seeded();
        const base = ['migrate', 'postgres', '--url', db.url, '--workers', '1', '--apply-schema', '--report', '/dev/null'];
        const refused = await runCli(t, base, new Uint8Array());
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /no unique index on \(server, user_name\)/);
        const sharded = await runCli(t, [...base, '--single-writer', '--shard', '1/2'], new Uint8Array());
        assert.equal(sharded.code, 1, sharded.stderr);
        assert.match(sharded.stderr, /--single-writer says one process/);
        const ok = await runCli(t, [...base, '--single-writer'], new Uint8Array());
        assert.equal(ok.code, 0, ok.stderr);
        assert.deepEqual(await unaccountedRows(db, ROWS, []), []);
      });
    }
  });
}
