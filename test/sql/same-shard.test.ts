/**
 * Two `migrate` processes started at once on the same shard, ten times, on a real PostgreSQL and
 * a real MariaDB: each pair must end (one refused at once, or both finishing), and every row must
 * end with the sender Erlang reads from its payload. Before the per-shard lock and the reordered
 * write, a batch held its row locks while waiting in the client for the batch before it, which
 * the server's deadlock detector cannot see: on PostgreSQL one pair in three hung for good.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMigrateProcess, type MigrateProcess } from '../support/migrate-process.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { seedRandomArchive, wrongRows, type ExpectedSenders } from './random-archive.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';

const PAIRS = 10;
const MESSAGES = 3000; // x 2 encodings: 6,000 rows, a few seconds of work, so the two runs overlap
const SEED = Number(process.env.MIM_TEST_SEED ?? 7);
/** Not a timing assertion: a pair still running after this is a hang (the bug took 10+ minutes). */
const HANG_GUARD_MS = 120_000;
const REFUSED = /shard 0\/1 .*is being migrated by another process/;

async function bothEnd(runs: MigrateProcess[]): Promise<Awaited<MigrateProcess['done']>[]> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const run of runs) run.kill9();
      reject(new Error(`the two processes were still running after ${HANG_GUARD_MS} ms: deadlocked`));
    }, HANG_GUARD_MS);
  });
  try {
    return await Promise.race([Promise.all(runs.map((r) => r.done)), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once a row has its sender (or the run ended): polled, no timing involved. */
async function firstCommit(db: TestDatabase, run: MigrateProcess): Promise<void> {
  let ended = false;
  void run.done.then(() => (ended = true));
  const committed = async (): Promise<boolean> => [...(await db.senderIds()).values()].some((v) => v !== null);
  // (Until the run has added the column, the query fails: nothing committed yet.)
  while (!ended && !(await committed().catch(() => false))) await new Promise((r) => setTimeout(r, 20));
}

function suite(kind: 'postgres' | 'mysql', start: () => Promise<DatabaseFixture>): void {
  let fixture: DatabaseFixture;
  let db: TestDatabase;
  let expected: ExpectedSenders;
  let dir: string;
  before(async () => {
    console.log(`# seed ${SEED} (MIM_TEST_SEED)`);
    fixture = await start();
    db = await fixture.freshDatabase();
    expected = await seedRandomArchive(db, MESSAGES, SEED);
    dir = mkdtempSync(join(tmpdir(), 'mim-same-shard-'));
  });
  after(async () => {
    await db?.close().catch(() => {});
    await fixture?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a process on a shard another process holds is refused at once, nothing written', async () => {
    const holder = db.backend();
    try {
      await holder.acquireShard({ index: 0, count: 1 });
      const refused = await startMigrateProcess([kind, '--url', db.url, '--apply-schema', '--report', join(dir, 'refused.jsonl')]).done;
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, REFUSED);
      assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(refused.stderr, /retry/, 'refused, not retried');
    } finally {
      await holder.close();
    }
    assert.deepEqual(await wrongRows(db, new Map([...expected.keys()].map((k) => [k, null]))), [], 'nothing written');
  });

  test(`${PAIRS} pairs of processes on the same shard: each pair ends, every row right`, async () => {
    let refusals = 0;
    for (let pair = 0; pair < PAIRS; pair++) {
      if (pair > 0) await db.execute('UPDATE mam_muc_message SET sender_id = NULL', 'DELETE FROM mim_sender_jid_checkpoint');
      const args = (n: number): string[] => [kind, '--url', db.url, '--apply-schema', '--batch-size', '100', '--report', join(dir, `${pair}-${n}.jsonl`)];
      // Odd pairs start together; even pairs start the second once the first has committed a batch,
      // so that the two walk misaligned pages (the case that deadlocked).
      const first = startMigrateProcess(args(0));
      if (pair % 2 === 0) await firstCommit(db, first);
      const results = await bothEnd([first, startMigrateProcess(args(1))]);
      for (const r of results) {
        if (r.status === 0) continue;
        assert.equal(r.status, 1, `pair ${pair}: ${r.stderr}`);
        assert.match(r.stderr, REFUSED, `pair ${pair}: refused for the right reason`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        refusals++;
      }
      assert.ok(
        results.some((r) => r.status === 0),
        `pair ${pair}: one of the two finished`,
      );
      assert.deepEqual(await wrongRows(db, expected), [], `pair ${pair}`);
    }
    console.log(`# ${refusals} of ${PAIRS} pairs had one process refused`);
  });
}

describe('PostgreSQL', () => suite('postgres', startPostgresFixture));
describe('MariaDB', () => suite('mysql', startMariadbFixture));
