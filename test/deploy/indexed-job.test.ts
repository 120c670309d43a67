/**
 * The SQL Indexed Job of deploy/kubernetes, run on this machine: the Job manifest is expanded for
 * completion indexes 0..3 as Kubernetes would (expand-job.ts: args, env, the database URL from the
 * Secret), and the four commands run together against a real PostgreSQL and three sidecar
 * processes. Two things differ from a cluster, both said here: the sidecar target (the headless
 * Service's DNS name cannot resolve here, so the three loopback sidecars are given as a list) and
 * the working directory (a temporary directory instead of the reports volume).
 *
 * Every row must end right (the sender Erlang reads from its payload), and exactly once: a trigger
 * counts every UPDATE of sender_id, and the four reports together name each undecodable row once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { rowKey, type DatabaseFixture, type TestDatabase } from '../sql/fixture.js';
import { startPostgresFixture } from '../sql/postgres-fixture.js';
import { seedRandomArchive, wrongRows, type ExpectedSenders } from '../sql/random-archive.js';
import { expandJob } from './expand-job.js';
import { loadManifests, REPO_ROOT } from './manifest-checks.js';

const SEED = Number(process.env.MIM_TEST_SEED ?? 4);
const MESSAGES = 6_000;
const NAMESPACE = 'mim';

let fixture: DatabaseFixture;
let db: TestDatabase;
let expected: ExpectedSenders;
let sidecars: SidecarProcess[] = [];
let dir: string;

before(async () => {
  console.log(`# seed ${SEED} (MIM_TEST_SEED)`);
  fixture = await startPostgresFixture();
  db = await fixture.freshDatabase();
  expected = await seedRandomArchive(db, MESSAGES, SEED);
  dir = mkdtempSync(join(tmpdir(), 'mim-indexed-job-'));
  sidecars = await Promise.all([0, 1, 2].map(() => startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--pool-size', '1'])));
});
after(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await db?.close().catch(() => {});
  await fixture?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function runPod(args: readonly string[], env: Readonly<Record<string, string>>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/mim-sender-jid.js'), ...args], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('the PostgreSQL Indexed Job, expanded for N = 4 and run here through three sidecars: every row right, exactly once', async () => {
  const jobDoc = loadManifests().find(
    (d) => d.doc?.kind === 'Job' && (d.doc.spec?.template?.spec?.containers?.[0]?.args as string[] | undefined)?.[1] === 'postgres',
  );
  assert.ok(jobDoc !== undefined, 'deploy/kubernetes has a Job for postgres');
  const job = jobDoc.doc;
  const completions = job.spec.completions as number;
  assert.equal(completions, 4, 'the example Job has 4 shards');

  // The schema step runs once, from one place (as the manifest says), before the shards.
  await db.backend().applySchema();
  await db.execute(
    'CREATE TABLE sender_writes (room_id bigint NOT NULL, id bigint NOT NULL)',
    `CREATE FUNCTION count_sender_write() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO sender_writes VALUES (NEW.room_id, NEW.id); RETURN NULL; END $$`,
    'CREATE TRIGGER count_sender_writes AFTER UPDATE OF sender_id ON mam_muc_message FOR EACH ROW EXECUTE FUNCTION count_sender_write()',
  );

  const target = sidecars.map((s) => s.address).join(',');
  const pods = Array.from({ length: completions }, (_, index) => {
    const pod = expandJob(job, index, { namespace: NAMESPACE, secrets: { 'mim-sender-jid-db': { url: db.url } } });
    const sidecarAt = pod.args.indexOf('--sidecar');
    assert.equal(pod.args[sidecarAt + 1], `dns:///mim-sender-jid-sidecar.${NAMESPACE}.svc.cluster.local:50051`, 'the pod decodes through the headless Service');
    const args = pod.args.map((a, i) => (i === sidecarAt + 1 ? target : a));
    assert.deepEqual(args.slice(0, 4), ['migrate', 'postgres', '--shard', `${index}/4`]);
    assert.equal(pod.env.MIM_SENDER_JID_DB_URL, db.url, 'the URL comes from the Secret');
    return { args, env: pod.env };
  });
  console.log(`# pod 2 runs: mim-sender-jid ${pods[2].args.join(' ')}`);

  const results = await Promise.all(pods.map((p) => runPod(p.args, p.env)));
  for (const [k, r] of results.entries()) {
    assert.equal(r.status, 0, `shard ${k}/4 exits 0:\n${r.stderr}`);
    assert.match(r.stdout, /done \(end reached\)/, `shard ${k}/4 reached its end`);
  }

  assert.deepEqual(await wrongRows(db, expected), [], 'every row right');

  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ room_id: string; id: string; n: string }>(
      'SELECT room_id::text, id::text, count(*)::text AS n FROM sender_writes GROUP BY room_id, id',
    );
    const writes = new Map(rows.map((r) => [rowKey(r.room_id, r.id), Number(r.n)]));
    const withSender = [...expected].filter(([, pair]) => pair !== null).map(([key]) => key);
    assert.deepEqual(
      [...writes].filter(([, n]) => n !== 1),
      [],
      'no row written twice',
    );
    assert.deepEqual(
      withSender.filter((key) => !writes.has(key)),
      [],
      'every row with a sender written',
    );
    assert.equal(writes.size, withSender.length, 'no undecodable row written');
  } finally {
    await client.end();
  }

  const reports = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  assert.deepEqual(
    reports,
    [0, 1, 2, 3].map((k) => `mim-sender-jid-report-postgres-shard-${k}-of-4.jsonl`),
    'one report per shard, in the working directory',
  );
  const reported = reports.flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { room_id: string; id: string }),
  );
  const undecodable = [...expected]
    .filter(([, pair]) => pair === null)
    .map(([key]) => key)
    .sort();
  assert.ok(undecodable.length > 0, 'the archive has rows no migration can write');
  assert.deepEqual(reported.map((r) => rowKey(String(r.room_id), String(r.id))).sort(), undecodable, 'each undecodable row reported once, by its own shard');
});
