/**
 * How PostgreSQL runs a shard's page query (`--shard K/N`), on a real server with enough rows for
 * the planner's choice to matter. A keyset walk filtered by `room_id % N = K` made PostgreSQL,
 * which estimates such a filter at 0.5% of the rows, scan the whole table and sort it for every
 * page of every shard; the query must instead reach the archive only through its primary key, and
 * read about the shard's own rows, not the other shards'.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { POSTGRES_DIALECT } from '../../clients/backends/sql/postgres-statements.js';
import { inlineIntegerParams } from '../../clients/backends/sql/pg-binary-copy.js';
import { PAGE_READER_SETTINGS, PgDriver } from '../../clients/backends/sql/postgres.js';
import { pairKey, type DatabaseFixture, type TestDatabase } from './fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

const ROOM_COUNT = 40;
const ROWS_PER_ROOM = 2_500;
const PAGE_ROWS = 2_000;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

let fixture: DatabaseFixture;
let db: TestDatabase;
let client: pg.Client;
before(async () => {
  fixture = await startPostgresFixture();
  db = await fixture.freshDatabase();
  const rooms = Array.from({ length: ROOM_COUNT }, (_, i) => ({ server: 'muc.example.com', user: `room${i}` }));
  const ids = await db.insertUsers(rooms);
  const roomIds = rooms.map((r) => ids.get(pairKey(r))!);
  await db.backend().applySchema();
  // Rows interleaved across rooms, as a live server writes them; payloads do not matter to the plan.
  await db.execute(
    `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
       SELECT (ARRAY[${roomIds.join(',')}])[1 + g % ${ROOM_COUNT}], 399582233150625537 + g * 256, 'nick', '\\x836a'::bytea, ''
         FROM generate_series(0, ${ROOM_COUNT * ROWS_PER_ROOM - 1}) AS g`,
    'VACUUM ANALYZE mam_muc_message',
  );
  // The settings the backend's page readers run with.
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(PAGE_READER_SETTINGS);
});
after(async () => {
  await client?.end().catch(() => {});
  await db?.close().catch(() => {});
  await fixture?.stop();
});

async function explain(after: { roomId: string; id: string } | null, shard: { index: number; count: number }): Promise<PlanNode> {
  const statement = POSTGRES_DIALECT.page(after, { records: PAGE_ROWS, bytes: 64 << 20 }, shard);
  const { rows } = await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${inlineIntegerParams(statement)}`);
  return rows[0]['QUERY PLAN'][0].Plan;
}

for (const shard of [
  { index: 1, count: 4 },
  { index: 0, count: 1 },
]) {
  test(`shard ${shard.index}/${shard.count}: pages read the archive through its primary key, only the shard's rooms`, async () => {
    const { rows: first } = await client.query<{ room_id: string }>(
      `SELECT min(room_id)::text AS room_id FROM mam_muc_message WHERE room_id % ${shard.count} = ${shard.index}`,
    );
    for (const after of [null, { roomId: first[0].room_id, id: '399582233150625537' }]) {
      const plan = await explain(after, shard);
      const archive = nodes(plan).filter((n) => n['Relation Name'] === 'mam_muc_message');
      assert.ok(archive.length > 0, 'the plan reads the archive');
      for (const n of archive) {
        assert.match(
          n['Node Type'],
          /^Index (Only )?Scan$/,
          `${n['Node Type']} on mam_muc_message (after ${JSON.stringify(after)}): ${JSON.stringify(plan).slice(0, 400)}`,
        );
      }
      // Rows the archive's scans returned or threw away: a page's own rows, plus at most what a
      // probe per room costs, never the other shards' rows.
      const touched = archive.reduce((sum, n) => sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1), 0);
      assert.ok(touched <= PAGE_ROWS + 2 * ROOM_COUNT + 2, `the page touched ${touched} archive rows for ${PAGE_ROWS}`);
    }
  });
}

test("the backend's page readers run with those settings, first thing in each session", async () => {
  const driver = new PgDriver({ url: db.url });
  try {
    // Two at once: both sessions of the reader pool.
    const sessions = await Promise.all(
      [0, 1].map(() =>
        driver.readPageRows({
          sql: "SELECT pg_backend_pid() AS room_id, current_setting('enable_seqscan') || '/' || current_setting('enable_bitmapscan') AS id, ''::bytea AS message, 0 AS candidates",
          params: [],
        }),
      ),
    );
    for (const rows of sessions) assert.equal(rows[0].id, 'off/off');
  } finally {
    await driver.close();
  }
});
