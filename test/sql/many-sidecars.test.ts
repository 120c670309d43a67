/**
 * Issue 13's test: a `migrate postgres` run through three sidecar processes on loopback
 * (`--sidecar A,B,C`, balanced by grpc-js's round_robin), on a real PostgreSQL. Once every sidecar
 * has answered batches of the run (read from its metrics, with the checkpoint advanced), one is
 * killed with SIGKILL and another sent SIGTERM (it drains and exits 0). The run must end with
 * exit 0 and every row right (the sender Erlang reads from its payload), and each sidecar's
 * metrics (scraped just before it went away, for the two stopped) must show it took a share.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startMigrateProcess } from '../support/migrate-process.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { metricValue } from '../sidecar/grpc-test-kit.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { seedRandomArchive, wrongRows, type ExpectedSenders } from './random-archive.js';

/** Messages Erlang encodes (plain and compressed eterm of each), each stored COPIES times: 200,000 rows. */
const MESSAGES = 4_000;
const COPIES = 25;
const SEED = Number(process.env.MIM_TEST_SEED ?? 13);
const BATCH_SIZE = 1000;
/** Batches each sidecar must have answered before the two are stopped (of 200 pages: well before the end). */
const STOP_AFTER_BATCHES = 15;
const POLL_MS = 25;

const unaryOk = (metrics: string): Promise<number> => metricValue(metrics, 'mim_sender_jid_batches_total{rpc="unary",status="OK"}');

let fixture: DatabaseFixture;
let db: TestDatabase;
let expected: ExpectedSenders;
let dir: string;

before(async () => {
  console.log(`# seed ${SEED} (MIM_TEST_SEED)`);
  fixture = await startPostgresFixture();
  db = await fixture.freshDatabase();
  expected = await seedRandomArchive(db, MESSAGES, SEED, COPIES);
  dir = mkdtempSync(join(tmpdir(), 'mim-many-sidecars-'));
});
after(async () => {
  await db?.close().catch(() => {});
  await fixture?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('migrate through --sidecar A,B,C; one sidecar SIGKILLed and one SIGTERMed mid-run: exit 0, every row right, each took a share', async () => {
  const sidecars: SidecarProcess[] = await Promise.all(
    [0, 1, 2].map(() =>
      startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '1', '--shutdown-grace-ms', '10000']),
    ),
  );
  try {
    const [killed, drained] = sidecars;
    const metrics = sidecars.map((s) => s.metricsAddress!);
    const run = startMigrateProcess([
      'postgres',
      '--url',
      db.url,
      '--apply-schema',
      '--sidecar',
      sidecars.map((s) => s.address).join(','),
      '--batch-size',
      String(BATCH_SIZE),
      '--concurrency',
      '8',
      '--report',
      join(dir, 'report.jsonl'),
      '--progress-interval',
      '3600',
    ]);
    let ended = false;
    void run.done.then(() => (ended = true));

    // Progress first: rows written, and every sidecar has answered batches of this run (besides
    // the limits probe).
    const committed = async (): Promise<number> => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM mam_muc_message WHERE sender_id IS NOT NULL');
        return Number(rows[0].n);
      } catch {
        return 0; // sender_id is not there yet
      } finally {
        await client.end();
      }
    };
    for (;;) {
      if (ended) assert.fail(`the run ended before the sidecars were stopped: ${(await run.done).stderr}`);
      const answered = await Promise.all(metrics.map(unaryOk));
      if (answered.every((n) => n >= STOP_AFTER_BATCHES) && (await committed()) > 0) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    // Each is stopped while it has a call in flight (polled: a batch takes tens of milliseconds
    // to decode), so that the kill cuts calls short and the drain has calls to finish.
    const busy = async (metricsAddress: string): Promise<boolean> => {
      for (let tries = 0; tries < 500 && !ended; tries++) {
        if ((await metricValue(metricsAddress, 'mim_sender_jid_calls_in_flight')) > 0) return true;
        await new Promise((r) => setTimeout(r, 2));
      }
      return false;
    };
    const atStop = await Promise.all(metrics.map(unaryOk));
    const rowsAtStop = await committed();
    assert.ok(await busy(metrics[0]), 'the sidecar to kill has a call in flight');
    killed.child.kill('SIGKILL');
    assert.ok(await busy(metrics[1]), 'the sidecar to drain has a call in flight');
    drained.child.kill('SIGTERM');
    assert.equal(await killed.exited(10_000), 'SIGKILL');
    assert.equal(await drained.exited(30_000), 0, `the SIGTERMed sidecar drains and exits 0: ${drained.stderr()}`);
    assert.ok(
      drained.logs.some((l) => l.msg === 'sidecar stopped'),
      'it stopped gracefully',
    );

    const result = await run.done;
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /decoding with the 3 sidecars at 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ \(round_robin\)/);
    assert.match(result.stdout, /done \(end reached\)/);
    // What the killed sidecar had in flight was resent by the balanced stream itself (UNAVAILABLE,
    // retried per request), not by a retry of the whole pipeline.
    assert.doesNotMatch(result.stderr, /migrate: retry/);
    assert.ok(rowsAtStop < expected.size, `the sidecars were stopped mid-run (${rowsAtStop} of ${expected.size} rows written)`);

    const atEnd = await unaryOk(metrics[2]);
    const batches = Math.ceil(expected.size / BATCH_SIZE);
    console.log(`# batches answered: killed ${atStop[0]}, drained ${atStop[1]} (at their stop), survivor ${atStop[2]} then ${atEnd}, of ${batches} pages`);
    const takenBeforeStop = atStop.reduce((a, b) => a + b, 0);
    for (const [i, n] of atStop.entries()) {
      assert.ok(n >= takenBeforeStop / 6, `sidecar ${i} took ${n} of the ${takenBeforeStop} batches answered before the stop (${atStop.join(', ')})`);
    }
    assert.ok(atEnd - atStop[2] > 0, 'the survivor took the rest');

    assert.deepEqual(await wrongRows(db, expected), [], 'every row right');
  } finally {
    await Promise.all(sidecars.map((s) => s.stop()));
  }
});
