/**
 * One test body for every SQL backend: the suite is run by postgres.test.ts and mariadb.test.ts
 * against real servers. Decoding goes through the in-process stream (the gRPC path has its own
 * end-to-end suite), so what is tested here is the pipeline and the backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMigration, SchemaNotReadyError, type MigrationOptions, type MigrationSummary } from '../../clients/pipeline/run-migration.js';
import { runVerify } from '../../clients/pipeline/run-verify.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlReport, MemoryReport, type ReportedRecord, type ReportSink } from '../../clients/pipeline/report.js';
import type { ProgressReporter } from '../../clients/pipeline/progress.js';
import { buildDataset, PREEXISTING_USERS, ROOMS, type DatasetRow, type Expected } from './dataset.js';
import { pairKey, rowKey, type DatabaseFixture, type TestDatabase } from './fixture.js';
import type { SqlBackend } from '../../clients/backends/sql/sql-backend.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { dryRunsLeaveTheRealRun, limitRunsReachTheEnd } from '../support/cli-walk-contract.js';

const BATCH_SIZE = 16;
const CONCURRENCY = 3;
const FAST_BACKOFF = { baseMs: 50, maxMs: 400 };

interface Seeded {
  readonly db: TestDatabase;
  /** `room_id:id` -> what the migration must end with. */
  readonly expected: Map<string, Expected>;
  readonly preexistingIds: Map<string, string>;
  /** Payload bytes of each row, in primary key order. */
  readonly payloadSizes: number[];
}

/** `(room_id, id)` order, the primary key's. */
function byKey(a: { roomId: string; id: string }, b: { roomId: string; id: string }): number {
  return Number(BigInt(a.roomId) - BigInt(b.roomId)) || (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0);
}

export function backendSuite(start: () => Promise<DatabaseFixture>): void {
  let fixture: DatabaseFixture;
  let dataset: DatasetRow[];
  const opened: TestDatabase[] = [];
  // One report file per database, as an operator's runs on one archive share theirs: the
  // end-of-run accounting reads earlier runs' lines back from it.
  const reportPaths = new Map<TestDatabase, string>();
  let reportDir: string;

  before(async () => {
    fixture = await start();
    dataset = buildDataset();
    reportDir = mkdtempSync(join(tmpdir(), 'mim-rdbms-suite-'));
  });
  after(async () => {
    for (const db of opened) await db.close().catch(() => {});
    await fixture?.stop();
    if (reportDir !== undefined) rmSync(reportDir, { recursive: true, force: true });
  });

  async function seeded(): Promise<Seeded> {
    const db = await fixture.freshDatabase();
    opened.push(db);
    const preexistingIds = await db.insertUsers([...ROOMS, ...PREEXISTING_USERS]);
    const roomIds = ROOMS.map((r) => preexistingIds.get(pairKey(r))!);
    const expected = new Map<string, Expected>();
    const rows = dataset.map((r) => {
      const roomId = roomIds[r.roomIndex];
      expected.set(rowKey(roomId, r.id), r.expected);
      return { roomId, id: r.id, payload: r.payload };
    });
    await db.insertMessages(rows);
    const payloadSizes = [...rows].sort(byKey).map((r) => r.payload.length);
    return { db, expected, preexistingIds, payloadSizes };
  }

  function migrate(
    db: TestDatabase,
    extra: Partial<MigrationOptions> = {},
    wrap: (backend: SqlBackend) => SqlBackend = (b) => b,
  ): Promise<MigrationSummary & { report: MemoryReport }> {
    const report = new MemoryReport();
    let reportPath = reportPaths.get(db);
    if (reportPath === undefined) {
      reportPath = join(reportDir, `report-${reportPaths.size}.jsonl`);
      reportPaths.set(db, reportPath);
    }
    const file = new JsonlReport(reportPath, extra.reset === true);
    // This run's lines in memory (what the assertions read), every run's in the file.
    const both: ReportSink = {
      append(rows: readonly ReportedRecord[]) {
        file.append(rows);
        report.append(rows);
      },
      close() {
        file.close();
      },
    };
    const backend = wrap(db.backend());
    return runMigration({
      backend,
      openStream: openInProcessStream,
      report: both,
      reportPath,
      batchSize: BATCH_SIZE,
      concurrency: CONCURRENCY,
      applySchema: true,
      backoff: FAST_BACKOFF,
      ...extra,
    })
      .then((summary) => ({ ...summary, report }))
      .finally(() => {
        both.close();
        return backend.close();
      });
  }

  /** Every row as `server\0user` of its sender (or null): comparable across databases. */
  async function finalState(db: TestDatabase): Promise<Map<string, string | null>> {
    const users = new Map((await db.users()).map((u) => [u.id, pairKey(u)]));
    const state = new Map<string, string | null>();
    for (const [key, senderId] of await db.senderIds()) {
      state.set(key, senderId === null ? null : (users.get(senderId) ?? `missing user ${senderId}`));
    }
    return state;
  }

  async function assertMigratedCorrectly(s: Seeded): Promise<void> {
    const state = await finalState(s.db);
    assert.equal(state.size, s.expected.size);
    for (const [key, expected] of s.expected) {
      const actual = state.get(key);
      if ('sender' in expected) assert.equal(actual, pairKey(expected.sender), `row ${key}`);
      else assert.equal(actual, null, `row ${key} (${expected.reason}) must stay NULL`);
    }
    const users = await s.db.users();
    assert.equal(new Set(users.map(pairKey)).size, users.length, 'duplicate in mam_server_user');
    for (const [pair, id] of s.preexistingIds) {
      assert.equal(users.find((u) => pairKey(u) === pair)?.id, id, 'pre-existing mam_server_user row kept its id');
    }
    const distinctSenders = new Set([...s.expected.values()].flatMap((e) => ('sender' in e ? [pairKey(e.sender)] : [])));
    const expectedUsers = new Set([...s.preexistingIds.keys(), ...distinctSenders]);
    assert.deepEqual(new Set(users.map(pairKey)), expectedUsers);
  }

  function expectedFailures(s: Seeded): string[] {
    return [...s.expected].flatMap(([key, e]) => ('reason' in e ? [`${key} ${e.reason}`] : [])).sort();
  }

  describe('schema', () => {
    test('without --apply-schema a missing sender_id column is a clear error showing the statement', async () => {
      const { db } = await seeded();
      await assert.rejects(migrate(db, { applySchema: false }), (error: unknown) => {
        assert.ok(error instanceof SchemaNotReadyError);
        assert.match(error.message, /ALTER TABLE .*mam_muc_message.* ADD COLUMN sender_id/);
        assert.match(error.message, /CREATE INDEX i_mam_muc_message_sender_id/);
        return true;
      });
      assert.equal(await db.columnExists('mam_muc_message', 'sender_id'), false);
    });
  });

  test('migrates every row: Unicode senders, every failure kind reported, existing ids reused', async () => {
    const s = await seeded();
    const summary = await migrate(s.db);
    await assertMigratedCorrectly(s);
    const failures = expectedFailures(s);
    assert.deepEqual(summary.report.rows.map((r) => `${rowKey(r.key.roomId, r.key.id)} ${r.reason}`).sort(), failures);
    for (const row of summary.report.rows) assert.ok(row.detail.length > 0, 'every report line says why');
    assert.equal(summary.records, s.expected.size);
    assert.equal(summary.reported, failures.length);
    assert.equal(summary.written, s.expected.size - failures.length);
    assert.equal(summary.skipped, 0);
    assert.equal(summary.reachedEnd, true);
    for (const reason of ['malformed', 'not_groupchat', 'payload_too_large', 'jid_without_local_part', 'jid_without_domain', 'jid_not_storable']) {
      assert.ok((summary.reportedByReason[reason] ?? 0) > 0, `a row failed with ${reason}`);
    }
  });

  test('a re-run is a no-op', async () => {
    const s = await seeded();
    await migrate(s.db);
    const before = await s.db.senderIds();
    const users = await s.db.users();
    const again = await migrate(s.db);
    assert.equal(again.records, 0);
    assert.equal(again.written, 0);
    assert.deepEqual(await s.db.senderIds(), before);
    assert.deepEqual(await s.db.users(), users);
    // Even forgetting the checkpoint, only the failed rows are read again, and nothing changes.
    const reset = await migrate(s.db, { reset: true });
    assert.equal(reset.written, 0);
    assert.equal(reset.records, expectedFailures(s).length);
    assert.deepEqual(await s.db.senderIds(), before);
  });

  /** The `migrate` command on this database: `postgres` or `mysql` by its URL, small batches. */
  function cliWalk(db: TestDatabase, name: string) {
    const kind = db.url.startsWith('postgres') ? 'postgres' : 'mysql';
    const args = [kind, '--url', db.url, '--apply-schema', '--workers', '1', '--batch-size', String(BATCH_SIZE), '--concurrency', String(CONCURRENCY)];
    return { args, report: join(reportDir, `${name}-${reportPaths.size}-${opened.length}.jsonl`) };
  }

  test('the migrate command: --limit N run again and again walks N more each time, to the end', async () => {
    const s = await seeded();
    await limitRunsReachTheEnd(cliWalk(s.db, 'cli-limit'), 7, s.expected.size);
    await assertMigratedCorrectly(s);
  });

  test("the migrate command: --dry-run and --dry-run --reset after an interrupted run leave the real run's report and rows as they were", async () => {
    const s = await seeded();
    await dryRunsLeaveTheRealRun(cliWalk(s.db, 'cli-dry-run'), 40, async () => ({
      senders: [...(await s.db.senderIds()).entries()].sort(),
      users: await s.db.users(),
    }));
    await assertMigratedCorrectly(s);
  });

  test('a dry run decodes and reports but writes nothing', async () => {
    const s = await seeded();
    const backend = s.db.backend();
    await backend.applySchema();
    await backend.close();
    const usersBefore = await s.db.users();
    const summary = await migrate(s.db, { dryRun: true });
    assert.equal(summary.records, s.expected.size);
    assert.equal(summary.written, s.expected.size - expectedFailures(s).length);
    assert.equal(summary.report.rows.length, expectedFailures(s).length);
    assert.ok([...(await s.db.senderIds()).values()].every((v) => v === null));
    assert.deepEqual(await s.db.users(), usersBefore);
    assert.equal(await s.db.tableExists('mim_sender_jid_checkpoint'), false);
  });

  test('interrupted runs (--limit, then Ctrl-C) resume and end exactly like an uninterrupted run', async () => {
    const reference = await seeded();
    await migrate(reference.db);
    const s = await seeded();
    const first = await migrate(s.db, { limit: 50 });
    assert.equal(first.records, 50);
    assert.equal(first.reachedEnd, false);
    const stop = new AbortController();
    let batches = 0;
    const abortAfterTwoBatches: ProgressReporter = {
      update() {
        if (++batches === 2) stop.abort();
      },
      finish() {},
    };
    const second = await migrate(s.db, { signal: stop.signal, progress: abortAfterTwoBatches });
    assert.equal(second.interrupted, true);
    assert.equal(second.resumedPartitions, 1, 'resumed from the checkpoint');
    assert.ok(second.records >= 2 * BATCH_SIZE && second.records < s.expected.size - 50);
    const third = await migrate(s.db);
    assert.equal(third.reachedEnd, true);
    assert.equal(first.records + second.records + third.records, s.expected.size, 'every row walked exactly once');
    await assertMigratedCorrectly(s);
    assert.deepEqual(await finalState(s.db), await finalState(reference.db));
  });

  test('--shard K/N: three shards together cover every row exactly once', async () => {
    const s = await seeded();
    const shards = await Promise.all([0, 1, 2].map((index) => migrate(s.db, { shard: { index, count: 3 } })));
    assert.equal(
      shards.reduce((n, x) => n + x.records, 0),
      s.expected.size,
    );
    assert.ok(shards.every((x) => x.records > 0 && x.reachedEnd));
    const reported = shards.flatMap((x) => x.report.rows.map((r) => `${rowKey(r.key.roomId, r.key.id)} ${r.reason}`)).sort();
    assert.deepEqual(reported, expectedFailures(s));
    await assertMigratedCorrectly(s);
  });

  // How fast --max-rate lets the walk go is the token bucket's arithmetic, tested on a fake clock
  // (pipeline.test.ts); a wall-clock bound here could only be flaky. What is left to check on a
  // real database is that a capped walk (paced pages) still ends exactly right.
  test('--max-rate: a capped walk ends exactly like an uncapped one', async () => {
    const s = await seeded();
    const summary = await migrate(s.db, { maxRate: 2000 });
    assert.equal(summary.reachedEnd, true);
    assert.equal(summary.records, s.expected.size);
    await assertMigratedCorrectly(s);
  });

  test('--max-batch-bytes: pages stop at the byte bound (or hold one payload), cut in the query, and the walk ends right', async () => {
    const s = await seeded();
    const bound = 3000;
    // The pages the bound must make: a row joins a page while the page stays within the bound
    // (or while the page's payloads so far are empty); at most BATCH_SIZE rows.
    let expectedPages = 0;
    for (let i = 0; i < s.payloadSizes.length; expectedPages++) {
      let bytes = 0;
      for (let rows = 0; i < s.payloadSizes.length && rows < BATCH_SIZE && (bytes === 0 || bytes + s.payloadSizes[i] <= bound); rows++)
        bytes += s.payloadSizes[i++];
    }
    let pages = 0;
    const countPages: ProgressReporter = { update: () => void pages++, finish() {} };
    const summary = await migrate(s.db, { maxBatchBytes: bound, progress: countPages });
    assert.ok(expectedPages > s.payloadSizes.length / BATCH_SIZE + 1, 'the bound is what cuts most pages here');
    assert.equal(pages, expectedPages);
    assert.equal(summary.reachedEnd, true);
    await assertMigratedCorrectly(s);
  });

  test('a batch waiting for the batch before it holds no row lock meanwhile (nothing for another process to wait on)', async () => {
    const s = await seeded();
    const backend = s.db.backend();
    try {
      await backend.applySchema();
      await backend.prepareCheckpoints();
      const [partition] = await backend.partitions({ index: 0, count: 1 });
      const writes = [...s.expected]
        .flatMap(([key, e]) => {
          if (!('sender' in e)) return [];
          const [roomId, id] = key.split(':');
          return [{ key: { roomId, id }, write: { bareJid: `${e.sender.user}@${e.sender.server}`, user: e.sender.user, server: e.sender.server } }];
        })
        .sort((a, b) => byKey(a.key, b.key))
        .slice(0, 5); // a batch is a stretch of the key order
      // The earlier batch: we learn when the write starts waiting for it, and let it go later.
      let reached!: () => void;
      const waiting = new Promise<void>((resolve) => (reached = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const earlier = { then: (ok: () => void, fail: (e: unknown) => void) => (reached(), gate.then(ok, fail)) } as unknown as Promise<void>;
      const written = backend.writeBatch(partition, writes, writes[writes.length - 1].key, earlier);
      await waiting;
      // Another session takes each row's lock without waiting: refused if the batch held it.
      for (const w of writes) {
        await s.db.execute(`SELECT id FROM mam_muc_message WHERE room_id = ${w.key.roomId} AND id = ${w.key.id} FOR UPDATE NOWAIT`);
      }
      release();
      assert.deepEqual(await written, { written: writes.length });
    } finally {
      await backend.close();
    }
  });

  test('verify agrees after a migration and finds planted mismatches', async () => {
    const s = await seeded();
    await migrate(s.db);
    const backend = s.db.backend();
    try {
      const clean = await runVerify({ backend, openStream: openInProcessStream, sample: 10_000 });
      assert.equal(clean.checked, s.expected.size - expectedFailures(s).length);
      assert.deepEqual(clean.mismatches, []);
      const users = await s.db.users();
      const bob = users.find((u) => u.user === 'bob')!;
      const [aliceRow] = [...s.expected].find(([, e]) => 'sender' in e && e.sender.user === 'alice')!;
      const [bobRow] = [...s.expected].find(([, e]) => 'sender' in e && e.sender.user === 'bob')!;
      const [roomA, idA] = aliceRow.split(':');
      const [roomB, idB] = bobRow.split(':');
      await s.db.setSenderId(roomA, idA, bob.id);
      await s.db.setSenderId(roomB, idB, '999999');
      const dirty = await runVerify({ backend, openStream: openInProcessStream, sample: 10_000 });
      assert.deepEqual(
        dirty.mismatches.map((m) => `${rowKey(m.key.roomId, m.key.id)} ${m.kind}`).sort(),
        [`${aliceRow} different_sender`, `${bobRow} sender_row_missing`].sort(),
      );
    } finally {
      await backend.close();
    }
  });

  test('the database restarted mid-run: the migration retries and finishes', async () => {
    const s = await seeded();
    // The same on every server, whether stopping it blocks or not: the third write meets the
    // server stopped (its connections cut), and the server starts again only once that write
    // has failed, so the run must retry to finish.
    let writes = 0;
    let failedWhileDown = false;
    const stopDuringThirdWrite = (backend: SqlBackend): SqlBackend =>
      new Proxy(backend, {
        get(target, property) {
          const value = Reflect.get(target, property, target) as unknown;
          if (property !== 'writeBatch') return typeof value === 'function' ? value.bind(target) : value;
          return async (...args: Parameters<SqlBackend['writeBatch']>) => {
            if (++writes !== 3) return target.writeBatch(...args);
            await fixture.stopServer();
            try {
              return await target.writeBatch(...args);
            } catch (error) {
              failedWhileDown = true;
              throw error;
            } finally {
              await fixture.startServer();
            }
          };
        },
      });
    const summary = await migrate(s.db, { maxRetries: 100 }, stopDuringThirdWrite);
    assert.ok(failedWhileDown, 'a write failed while the server was down');
    assert.ok(summary.retries >= 1, 'the restart cost at least one retry');
    assert.equal(summary.reachedEnd, true);
    assert.equal(summary.report.rows.length, expectedFailures(s).length, 'no row reported twice');
    await assertMigratedCorrectly(s);
  });
}
