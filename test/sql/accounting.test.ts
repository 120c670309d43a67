/**
 * The end-of-run accounting on a real PostgreSQL: a walk that passes over a row (a page reader
 * dropping one on purpose) cannot end with exit 0, and rows archived behind the walk (a
 * MongooseIM 3.3 node still writing) are caught by the second walk instead of being left NULL.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatSummary, migrationExitStatus, runMigration } from '../../clients/pipeline/run-migration.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import type { PageLimits } from '../../clients/pipeline/types.js';
import type { SqlBackend, SqlPartition } from '../../clients/backends/sql/sql-backend.js';
import type { RowKey } from '../../clients/backends/sql/sql-dialect.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { insertGenerated, unaccountedRows, type GeneratedRow } from './generated-archive.js';
import { startPostgresFixture } from './postgres-fixture.js';

let fixture: DatabaseFixture;
const opened: TestDatabase[] = [];
before(async () => {
  fixture = await startPostgresFixture();
});
after(async () => {
  for (const db of opened) await db.close().catch(() => {});
  await fixture?.stop();
});

const ROWS: GeneratedRow[] = Array.from({ length: 40 }, (_, n) => ({
  roomId: String(1 + (n % 3)),
  id: String(1000 + n * 7),
  user: n % 9 === 4 ? null : `u${n % 4}`,
}));

async function seeded(rows: readonly GeneratedRow[]): Promise<TestDatabase> {
  const db = await fixture.freshDatabase();
  opened.push(db);
  await insertGenerated(db, rows);
  const backend = db.backend();
  await backend.applySchema().finally(() => backend.close());
  return db;
}

/** The backend with its page reader wrapped by `wrap` (called with the original reader's page). */
function withPages(backend: SqlBackend, wrap: (read: () => ReturnType<SqlBackend['readPage']>) => ReturnType<SqlBackend['readPage']>): SqlBackend {
  const read = backend.readPage.bind(backend);
  backend.readPage = (partition: SqlPartition, cursor: RowKey | null, limits: PageLimits) => wrap(() => read(partition, cursor, limits));
  return backend;
}

test('a page reader that drops one row: exit status 5, the summary names the row, the next run walks again', async () => {
  const db = await seeded(ROWS);
  const dropped = ROWS[17];
  const report = new MemoryReport();
  const backend = withPages(db.backend(), async (read) => {
    const page = await read();
    return { ...page, records: page.records.filter((r) => !(r.key.roomId === dropped.roomId && r.key.id === dropped.id)) };
  });
  const summary = await runMigration({ backend, openStream: openInProcessStream, report, batchSize: 4, concurrency: 2 }).finally(() => backend.close());
  assert.equal(migrationExitStatus(summary), 5);
  assert.equal(summary.accounting?.kind, 'unaccounted');
  const text = formatSummary(summary);
  assert.match(text, /accounted for: NO: 1 record neither written nor reported/);
  assert.ok(text.includes(JSON.stringify({ room_id: dropped.roomId, id: dropped.id })), text);
  // Every other row is right or reported; the dropped one is the only one unaccounted.
  assert.deepEqual(await unaccountedRows(db, ROWS, report.rows), [
    `${dropped.roomId}:${dropped.id}: NULL and not reported (want example.com\u0000${dropped.user})`,
  ]);

  // Without the fault, a second run walks the shard again (not called done) and ends clean.
  const again = new MemoryReport();
  const plain = db.backend();
  const second = await runMigration({ backend: plain, openStream: openInProcessStream, report: again, batchSize: 4, concurrency: 2 }).finally(() =>
    plain.close(),
  );
  assert.equal(migrationExitStatus(second), 0);
  assert.equal(second.accounting?.kind, 'complete');
  assert.deepEqual(await unaccountedRows(db, ROWS, [...report.rows, ...again.rows]), []);
});

test('rows archived behind the walk (room already passed) are caught by the second walk', async () => {
  const db = await seeded(ROWS);
  // Archived by a MongooseIM 3.3 node while the walk is past room 1: sender_id NULL, low keys.
  const behind: GeneratedRow[] = [
    { roomId: '1', id: '5', user: 'late0' },
    { roomId: '1', id: '6', user: null },
    { roomId: '2', id: '999', user: 'late1' },
  ];
  let pages = 0;
  const report = new MemoryReport();
  const backend = withPages(db.backend(), async (read) => {
    const page = await read();
    if (++pages === 8) await insertGenerated(db, behind);
    return page;
  });
  const summary = await runMigration({ backend, openStream: openInProcessStream, report, batchSize: 3, concurrency: 1 }).finally(() => backend.close());
  assert.ok(pages >= 8, 'the rows were inserted during the walk');
  assert.equal(migrationExitStatus(summary), 0);
  assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: behind.length });
  assert.deepEqual(await unaccountedRows(db, [...ROWS, ...behind], report.rows), []);
});
