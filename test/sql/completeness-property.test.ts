/**
 * Completeness over generated key shapes, on real PostgreSQL and MariaDB: small archives whose
 * keys are drawn from the whole range each store's columns allow (PostgreSQL: negative, 0, up to
 * 2^31-1 rooms and 2^63-1 ids; MariaDB: unsigned, up to 2^32-1 and 2^64-1), every digit count, inserted in
 * shuffled order, migrated with pages small enough (1 to 7 rows, a byte bound from less than one
 * payload up) to cross every boundary, whole and in N shards. Afterwards every row holds its
 * sender or is in the report (the expected sender comes from the generator), the rows still NULL
 * are exactly the reported ones (`unwrittenKeys`), and the walk over every row (`scanPage`) sees
 * each row once, written exactly when it should be.
 *
 * Seeded by fuzzSeed: replay a failure with MIM_COMPLETENESS_SEED=<seed printed at the start>.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { MemoryReport, type ReportedRecord } from '../../clients/pipeline/report.js';
import type { ShardSpec } from '../../clients/pipeline/types.js';
import { compareRowKeys, type RowKey } from '../../clients/backends/sql/sql-dialect.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { runCli } from '../support/cli-process.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { insertGenerated, seededRandom, shuffled, unaccountedRows, type GeneratedRow } from './generated-archive.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { inShard, integerIn, KEY_RANGES, shardsOf } from './key-ranges.js';

const SEED = fuzzSeed('MIM_COMPLETENESS_SEED', 'SQL completeness properties');
const NUM_RUNS = 100;

interface Case {
  readonly rows: GeneratedRow[];
  readonly batchSize: number;
  readonly maxBatchBytes: number;
  readonly concurrency: number;
  /** 1: the whole table; N > 1: N shards, each migrated in turn. */
  readonly shards: number;
}

const caseArb = (ranges: (typeof KEY_RANGES)[keyof typeof KEY_RANGES]): fc.Arbitrary<Case> =>
  fc
    .record({
      rooms: fc.uniqueArray(integerIn(ranges.room), { minLength: 1, maxLength: 4, selector: String }),
      rows: fc.uniqueArray(
        fc.record({
          room: fc.nat(),
          id: integerIn(ranges.id),
          user: fc.option(fc.constantFrom('u0', 'u1', 'u2', 'zoë', 'ℌ😀'), { nil: null, freq: 5 }),
        }),
        { minLength: 1, maxLength: 30, selector: (r) => `${r.room % 4}:${r.id}` },
      ),
      order: fc.integer(),
      batchSize: fc.integer({ min: 1, max: 7 }),
      // Payloads are about 400 bytes: pages cut to one row, to a few, or only by --batch-size.
      maxBatchBytes: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 400, max: 3000 }), fc.constant(1 << 20)),
      concurrency: fc.integer({ min: 1, max: 3 }),
      shards: fc.constantFrom(1, 1, 2, 3, 4),
    })
    .map((g) => {
      const byKey = new Map<string, GeneratedRow>();
      for (const r of g.rows) {
        const roomId = String(g.rooms[r.room % g.rooms.length]);
        byKey.set(`${roomId}:${r.id}`, { roomId, id: String(r.id), user: r.user });
      }
      return { ...g, rows: shuffled([...byKey.values()], seededRandom(g.order)) };
    });

const inShardOf =
  (shard: ShardSpec) =>
  (r: { roomId: string }): boolean =>
    inShard(shard, r.roomId);
const keyOf = (r: { roomId: string; id: string }): RowKey => ({ roomId: r.roomId, id: r.id });
const describeCase = (c: Case): string =>
  `batch ${c.batchSize}, bytes ${c.maxBatchBytes}, concurrency ${c.concurrency}, shards ${c.shards}, rows ${JSON.stringify(c.rows)}`;

for (const [name, kind, start] of [
  ['PostgreSQL', 'postgres', startPostgresFixture],
  ['MariaDB', 'mysql', () => startMariadbFixture()],
] as const) {
  describe(`${name}: every row written or reported, whatever the key shapes`, () => {
    let fixture: DatabaseFixture;
    let db: TestDatabase;
    let dir: string;
    before(async () => {
      fixture = await start();
      db = await fixture.freshDatabase();
      const backend = db.backend();
      await backend.applySchema().finally(() => backend.close());
      dir = mkdtempSync(join(tmpdir(), 'mim-completeness-'));
    });
    after(async () => {
      await db?.close().catch(() => {});
      await fixture?.stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    async function reset(c: Case): Promise<void> {
      await db.execute('DELETE FROM mam_muc_message', 'DELETE FROM mam_server_user', 'DROP TABLE IF EXISTS mim_sender_jid_checkpoint');
      await insertGenerated(db, c.rows);
    }

    /** What must hold once every shard was migrated and `reports[k]` is shard k's report. */
    async function assertComplete(c: Case, reports: readonly (readonly ReportedRecord[])[]): Promise<void> {
      const all = reports.flat();
      assert.deepEqual(await unaccountedRows(db, c.rows, all), [], describeCase(c));
      const backend = db.backend();
      try {
        for (const [k, shard] of shardsOf(c.shards).entries()) {
          const own = c.rows.filter(inShardOf(shard));
          const reported = reports[k].map((r) => ({ roomId: r.fields.room_id, id: r.fields.id })).sort(compareRowKeys);
          // A shard reports only its own rows, each once, and exactly the ones without a sender.
          assert.deepEqual(
            reported,
            own
              .filter((r) => r.user === null)
              .map(keyOf)
              .sort(compareRowKeys),
            `shard ${k}: ${describeCase(c)}`,
          );
          // The end-of-run accounting's query finds exactly those.
          assert.deepEqual(await backend.unwrittenKeys(shard, 100), { keys: reported, complete: true }, `unwrittenKeys ${k}: ${describeCase(c)}`);
          // verify --complete's walk sees every row of the shard once, written exactly when it has a sender.
          const [partition] = await backend.partitions(shard);
          const seen: { key: RowKey; written: boolean }[] = [];
          let cursor: RowKey | null = null;
          for (let pages = 0; ; pages++) {
            assert.ok(pages <= own.length + 1, 'the scan ends');
            const page = await backend.scanPage(partition, cursor, { records: c.batchSize, bytes: c.maxBatchBytes });
            seen.push(...page.records);
            cursor = page.cursor;
            if (page.end) break;
          }
          assert.deepEqual(
            seen.map((r) => ({ ...r.key, written: r.written })),
            own.map((r) => ({ ...keyOf(r), written: r.user !== null })).sort(compareRowKeys),
            `scan ${k}: ${describeCase(c)}`,
          );
        }
      } finally {
        await backend.close();
      }
    }

    test('migrate (in process), whole table and every shard of N', async () => {
      await fc.assert(
        fc.asyncProperty(caseArb(KEY_RANGES[kind]), async (c) => {
          await reset(c);
          const reports: ReportedRecord[][] = [];
          for (const shard of shardsOf(c.shards)) {
            const report = new MemoryReport();
            const backend = db.backend();
            const summary = await runMigration({
              backend,
              openStream: openInProcessStream,
              report,
              shard,
              batchSize: c.batchSize,
              maxBatchBytes: c.maxBatchBytes,
              concurrency: c.concurrency,
            }).finally(() => backend.close());
            assert.equal(summary.reachedEnd, true);
            assert.equal(
              summary.records,
              c.rows.filter(inShardOf(shard)).length,
              `shard ${shard.index}/${shard.count} walked each of its rows once: ${describeCase(c)}`,
            );
            reports.push(report.rows);
          }
          await assertComplete(c, reports);
        }),
        { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
      );
    });

    if (name === 'PostgreSQL') {
      test('migrate through the CLI, one generated case sharded and one whole', async (t) => {
        const cases = fc.sample(caseArb(KEY_RANGES[kind]), { seed: SEED + 1, numRuns: 40 });
        const chosen = [cases.find((c) => c.shards > 1) ?? { ...cases[0], shards: 2 }, { ...cases[1], shards: 1 }];
        for (const c of chosen) {
          await reset(c);
          const reports: ReportedRecord[][] = [];
          for (const shard of shardsOf(c.shards)) {
            const path = join(dir, `report-${shard.index}-${shard.count}.jsonl`);
            const result = await runCli(
              t,
              [
                'migrate',
                'postgres',
                '--url',
                db.url,
                '--workers',
                '1',
                '--reset',
                '--report',
                path,
                '--shard',
                `${shard.index}/${shard.count}`,
                '--batch-size',
                String(c.batchSize),
                '--max-batch-bytes',
                String(c.maxBatchBytes),
                '--concurrency',
                String(c.concurrency),
              ],
              new Uint8Array(),
            );
            assert.equal(result.code, 0, `${result.stderr}\n${describeCase(c)}`);
            const lines = readFileSync(path, 'utf8')
              .split('\n')
              .filter((l) => l !== '');
            reports.push(lines.map((l) => ({ fields: JSON.parse(l) as Record<string, string> }) as ReportedRecord));
          }
          await assertComplete(c, reports);
        }
      });
    }
  });
}
