/**
 * Keys of mixed digit counts, on real servers: a page must come in the primary key's numeric
 * order, since its last row is the next page's cursor and its first and last rows bound the
 * batch's UPDATE. MongooseIM's own ids all have 18 digits, which hid a page sorted as text (by
 * the `id::text` output column) on PostgreSQL: the cursor jumped back, the UPDATE's key range came
 * out empty, and rows stayed NULL without being reported.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { WHOLE_TABLE } from '../../clients/pipeline/types.js';
import type { RowKey } from '../../clients/backends/sql/sql-dialect.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { insertGenerated, seededRandom, shuffled, unaccountedRows, type GeneratedRow } from './generated-archive.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

const compareKeys = (a: RowKey, b: RowKey): number => {
  const d = BigInt(a.roomId) - BigInt(b.roomId) || BigInt(a.id) - BigInt(b.id);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

/** Ids 1,000,000 .. 26,600,000 (7 and 8 digits) in 5 rooms, inserted in shuffled order. */
function mixedLengthRows(): GeneratedRow[] {
  const rows: GeneratedRow[] = [];
  for (let n = 0; n < 257; n++) {
    const roomId = String(1 + (n % 5));
    rows.push({ roomId, id: String(1_000_000 + n * 100_000), user: n % 23 === 0 ? null : `u${n % 17}` });
    // A few of 1 to 3 digits and of 19, in the same rooms.
    if (n % 50 === 0) rows.push({ roomId, id: String(1 + n), user: `v${n}` }, { roomId, id: String(9_000_000_000_000_000_000n + BigInt(n)), user: `w${n}` });
  }
  return shuffled(rows, seededRandom(16));
}

for (const [name, start] of [
  ['PostgreSQL', startPostgresFixture],
  ['MariaDB', () => startMariadbFixture()],
] as const) {
  describe(`${name}: ids of mixed digit counts`, () => {
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

    test('pages come in numeric key order and never repeat or skip a row', async () => {
      const rows = mixedLengthRows();
      const db = await seeded(rows);
      const backend = db.backend();
      try {
        const [partition] = await backend.partitions(WHOLE_TABLE);
        const seen: RowKey[] = [];
        let cursor: RowKey | null = null;
        for (;;) {
          const page = await backend.readPage(partition, cursor, { records: 7, bytes: 1 << 20 });
          const keys = page.records.map((r) => r.key);
          assert.deepEqual(keys, [...keys].sort(compareKeys), `page after ${JSON.stringify(cursor)} in key order`);
          seen.push(...keys);
          cursor = page.cursor;
          if (page.end) break;
        }
        assert.deepEqual(seen, rows.map((r) => ({ roomId: r.roomId, id: r.id })).sort(compareKeys));
      } finally {
        await backend.close();
      }
    });

    for (const batchSize of [3, 7]) {
      test(`migrate with --batch-size ${batchSize}: every row written or reported`, async () => {
        const rows = mixedLengthRows();
        const db = await seeded(rows);
        const report = new MemoryReport();
        const backend = db.backend();
        const summary = await runMigration({ backend, openStream: openInProcessStream, report, batchSize, concurrency: 3 }).finally(() => backend.close());
        assert.deepEqual(await unaccountedRows(db, rows, report.rows), []);
        assert.equal(summary.records, rows.length);
        assert.equal(summary.skipped, 0);
      });
    }

    test('a batch written with its rows out of key order still writes every row', async () => {
      const rows = mixedLengthRows()
        .filter((r) => r.user !== null)
        .slice(0, 12);
      const db = await seeded(rows);
      const backend = db.backend();
      try {
        const [partition] = await backend.partitions(WHOLE_TABLE);
        await backend.prepareCheckpoints();
        // Text order of the ids, the order the PostgreSQL pages came in.
        const writes = [...rows]
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((r) => ({ key: { roomId: r.roomId, id: r.id }, write: { user: r.user!, server: 'example.com', bareJid: `${r.user}@example.com` } }));
        const last = [...writes]
          .map((w) => w.key)
          .sort(compareKeys)
          .at(-1)!;
        const outcome = await backend.writeBatch(partition, writes, last, Promise.resolve());
        assert.equal(outcome.written, rows.length);
      } finally {
        await backend.close();
      }
      assert.deepEqual(await unaccountedRows(db, rows, []), []);
    });
  });
}
