/**
 * Reliability on real processes and a real PostgreSQL: the migrate command killed with SIGKILL
 * after 1 to 3 observed commits (seeded), five times in a 200,000-row run, re-run until done, must
 * end exactly like an uninterrupted run; a sidecar process stopped mid-run must cost a retry, not
 * the run. Moments are chosen by watching the checkpoint, never by wall-clock delays.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { fillDemoArchive } from '../../cli/demo/demo-data.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { PostgresBackend } from '../../clients/backends/sql/postgres.js';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../../cli/demo/mongooseim-33-schema.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess, type MigrateProcess } from '../support/migrate-process.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';

const KILL_ROWS = 200_000;
const KILLS = 5;
const SIDECAR_ROWS = 40_000;
const SEED = Number(process.env.MIM_TEST_SEED ?? 20240611);
/** Between progress polls; how long anything takes is never asserted. */
const POLL_MS = 25;

/** The shard's checkpoint as `room_id:id` (null before the first commit). */
async function checkpointOf(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ k: string }>(`SELECT last_room_id || ':' || last_id AS k FROM mim_sender_jid_checkpoint WHERE shard = '0/1'`);
    return rows[0]?.k ?? null;
  } catch {
    return null; // the table does not exist yet
  } finally {
    await client.end();
  }
}

/**
 * Resolves once the checkpoint has advanced `commits` times past `from` while `run` runs, with the
 * last one seen; resolves early (`ended`) if the run ends first.
 */
async function afterCommits(url: string, run: MigrateProcess, from: string | null, commits: number): Promise<{ ended: boolean; checkpoint: string | null }> {
  let ended = false;
  void run.done.then(() => (ended = true));
  let seen = from;
  for (let advanced = 0; advanced < commits;) {
    if (ended) return { ended, checkpoint: seen };
    const now = await checkpointOf(url);
    if (now !== seen) {
      advanced++;
      seen = now;
    } else await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { ended, checkpoint: seen };
}

let server: PostgresServer;
let reportDir: string;
before(async () => {
  server = await startPostgres();
  reportDir = mkdtempSync(join(tmpdir(), 'mim-reliability-'));
});
after(async () => {
  await server?.stop();
  rmSync(reportDir, { recursive: true, force: true });
});

async function archive(name: string, rows: number): Promise<string> {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = server.url.replace(/\/[^/]+$/, `/${name}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
  await fillDemoArchive(client, rows);
  await client.end();
  return url;
}

/** `room_id:id` -> `server/user_name` of its sender (ids differ between databases, pairs must not). */
async function state(url: string): Promise<{ rows: Map<string, string | null>; users: string[]; dangling: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query<{ k: string; p: string | null }>(
      `SELECT m.room_id || ':' || m.id AS k, CASE WHEN m.sender_id IS NULL THEN NULL ELSE u.server || '/' || u.user_name END AS p
         FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id`,
    );
    const users = await client.query<{ p: string }>(`SELECT server || '/' || user_name AS p FROM mam_server_user ORDER BY 1`);
    const dangling = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM mam_muc_message m WHERE m.sender_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mam_server_user u WHERE u.id = m.sender_id)`,
    );
    return { rows: new Map(rows.rows.map((r) => [r.k, r.p])), users: users.rows.map((r) => r.p), dangling: Number(dangling.rows[0].n) };
  } finally {
    await client.end();
  }
}

async function uninterrupted(url: string): Promise<void> {
  const backend = new PostgresBackend({ url });
  try {
    const summary = await runMigration({ backend, openStream: openInProcessStream, report: new MemoryReport(), applySchema: true });
    assert.equal(summary.reachedEnd, true);
  } finally {
    await backend.close();
  }
}

function assertSameEnd(actual: Awaited<ReturnType<typeof state>>, expected: Awaited<ReturnType<typeof state>>): void {
  assert.equal(actual.rows.size, expected.rows.size);
  let wrong = 0;
  let missing = 0;
  for (const [key, pair] of expected.rows) {
    const got = actual.rows.get(key);
    if (got === pair) continue;
    if (got === null || got === undefined) missing++;
    else wrong++;
  }
  assert.equal(wrong, 0, 'rows with a wrong sender');
  assert.equal(missing, 0, 'rows left without a sender');
  assert.equal(actual.dangling, 0, 'sender_id pointing at no mam_server_user row');
  assert.equal(new Set(actual.users).size, actual.users.length, 'duplicate in mam_server_user');
  assert.deepEqual(actual.users, expected.users);
}

test(`kill -9 ${KILLS} times, each after 1 to 3 observed commits (seeded), re-run until done: same end as an uninterrupted run`, async () => {
  const [referenceUrl, victimUrl] = await Promise.all([archive('reference', KILL_ROWS), archive('victim', KILL_ROWS)]);
  await uninterrupted(referenceUrl);
  const args = [
    'postgres',
    '--url',
    victimUrl,
    '--apply-schema',
    '--batch-size',
    '1000',
    '--report',
    join(reportDir, 'kill.jsonl'),
    '--progress-interval',
    '3600',
  ];
  console.log(`# seed ${SEED} (MIM_TEST_SEED)`);
  const random = seededRandom(SEED);
  const killedAt: string[] = [];
  for (let kill = 0; kill < KILLS; kill++) {
    const before = await checkpointOf(victimUrl);
    const run = startMigrateProcess(args);
    // Killed between two commits, after 1 to 3 of them: every kill lands after real progress.
    const commits = 1 + Math.floor(random() * 3);
    const { ended, checkpoint } = await afterCommits(victimUrl, run, before, commits);
    run.kill9();
    const result = await run.done;
    assert.equal(ended, false, `run ${kill} ended before its ${commits} commits (kills so far at ${killedAt.join(', ')}): ${result.stderr}`);
    assert.equal(result.status, 'SIGKILL');
    assert.notEqual(checkpoint, before, 'the checkpoint advanced before the kill');
    killedAt.push(`${commits} commits after ${before ?? 'the start'}`);
  }
  assert.equal(killedAt.length, KILLS);
  for (let rerun = 0; ; rerun++) {
    assert.ok(rerun < 5, 'the re-runs never finished');
    const result = await startMigrateProcess(args).done;
    assert.equal(result.status, 0, result.stderr);
    if (/done \(end reached\)/.test(result.stdout)) break;
  }
  assertSameEnd(await state(victimUrl), await state(referenceUrl));
  // And a run after the end is a no-op.
  const again = await startMigrateProcess(args).done;
  assert.match(again.stdout, /records +0\n/);
});

test('the sidecar stopped mid-run: the migration retries and finishes', async () => {
  const [referenceUrl, victimUrl] = await Promise.all([archive('sidecar_reference', SIDECAR_ROWS), archive('sidecar_victim', SIDECAR_ROWS)]);
  await uninterrupted(referenceUrl);
  const port = await freeLoopbackPort();
  const listen = ['--listen', `127.0.0.1:${port}`, '--metrics-listen', 'off'];
  let sidecar: SidecarProcess | null = await startSidecarProcess(listen);
  try {
    const run = startMigrateProcess([
      'postgres',
      '--url',
      victimUrl,
      '--apply-schema',
      '--sidecar',
      `127.0.0.1:${port}`,
      '--batch-size',
      '500',
      '--max-rate',
      '10000',
      '--report',
      join(reportDir, 'sidecar.jsonl'),
    ]);
    let stderr = '';
    run.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const progress = await afterCommits(victimUrl, run, null, 1);
    assert.equal(progress.ended, false, 'still running when the sidecar stops');
    await sidecar.stop();
    sidecar = null;
    // The sidecar comes back only once the run has noticed and scheduled a retry.
    while (!/migrate: retry \d+\//.test(stderr) && run.child.exitCode === null) await new Promise((r) => setTimeout(r, POLL_MS));
    sidecar = await startSidecarProcess(listen);
    const result = await run.done;
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /migrate: retry 1\/\d+ in \d+ ms after: /, 'the stopped sidecar cost a retry');
    assert.match(result.stdout, /done \(end reached\)/);
    assert.match(result.stdout, /duration .* [1-9]\d* retries/);
  } finally {
    await sidecar?.stop();
  }
  assertSameEnd(await state(victimUrl), await state(referenceUrl));
});

test('Ctrl-C (SIGINT) stops the command after the batches in flight; the next run finishes the job', async () => {
  const [referenceUrl, victimUrl] = await Promise.all([archive('sigint_reference', SIDECAR_ROWS), archive('sigint_victim', SIDECAR_ROWS)]);
  await uninterrupted(referenceUrl);
  const args = ['postgres', '--url', victimUrl, '--apply-schema', '--batch-size', '500', '--report', join(reportDir, 'sigint.jsonl')];
  const run = startMigrateProcess([...args, '--max-rate', '10000']);
  const progress = await afterCommits(victimUrl, run, null, 1);
  assert.equal(progress.ended, false, 'still running when interrupted');
  run.child.kill('SIGINT');
  const stopped = await run.done;
  assert.equal(stopped.status, 130, stopped.stderr);
  assert.match(stopped.stdout, /interrupted/);
  assert.match(stopped.stderr, /stopping after the batches in flight/);
  const processed = Number(/records +([\d,]+)/.exec(stopped.stdout)![1].replace(/,/g, ''));
  assert.ok(processed > 0 && processed < SIDECAR_ROWS);
  const finished = await startMigrateProcess(args).done;
  assert.equal(finished.status, 0, finished.stderr);
  const rest = Number(/records +([\d,]+)/.exec(finished.stdout)![1].replace(/,/g, ''));
  assert.equal(processed + rest, SIDECAR_ROWS, 'the second run starts exactly after the last committed batch');
  assertSameEnd(await state(victimUrl), await state(referenceUrl));
});
