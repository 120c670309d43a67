/**
 * The commands as an operator runs them: usage errors, the schema refusal, migrate through a
 * remote sidecar over TLS, verify's exit codes and mismatch lines, and the demo (the README's
 * `npm run demo`) on a small archive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { startSidecarProcess } from '../support/sidecar-process.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { buildDataset, PREEXISTING_USERS, ROOMS } from './dataset.js';
import { pairKey, type DatabaseFixture, type TestDatabase } from './fixture.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMMAND_TIMEOUT_MS = 180_000;

function command(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/mim-sender-jid.js', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mim-sender-jid ${args.join(' ')} took over ${COMMAND_TIMEOUT_MS} ms:\n${stderr}`));
    }, COMMAND_TIMEOUT_MS);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

let fixture: DatabaseFixture;
let certificates: TestCertificates;
let dir: string;
const databases: TestDatabase[] = [];

before(async () => {
  fixture = await startPostgresFixture();
  certificates = makeTestCertificates();
  dir = mkdtempSync(join(tmpdir(), 'mim-cli-'));
});
after(async () => {
  for (const db of databases) await db.close().catch(() => {});
  await fixture?.stop();
  certificates?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** The database, and the dataset's known failures as `room_id:id reason`, sorted. */
async function seeded(): Promise<{ db: TestDatabase; failures: string[] }> {
  const db = await fixture.freshDatabase();
  databases.push(db);
  const ids = await db.insertUsers([...ROOMS, ...PREEXISTING_USERS]);
  const roomIds = ROOMS.map((r) => ids.get(pairKey(r))!);
  const dataset = buildDataset(3);
  await db.insertMessages(dataset.map((r) => ({ roomId: roomIds[r.roomIndex], id: r.id, payload: r.payload })));
  const failures = dataset.flatMap((r) => ('reason' in r.expected ? [`${roomIds[r.roomIndex]}:${r.id} ${r.expected.reason}`] : [])).sort();
  return { db, failures };
}

test('usage errors exit 2 with a specific message', async () => {
  const cases: [string[], RegExp][] = [
    [['migrate', 'oracle', '--url', 'x'], /one of postgres, mysql, mssql/],
    [['migrate', 'postgres'], /--url is required/],
    [['migrate', 'postgres', '--url', 'postgres://x/y', '--shard', '3/3'], /--shard must be K\/N/],
    [['migrate', 'postgres', '--url', 'postgres://x/y', '--batch-size', '0'], /--batch-size must be a whole number/],
    [['migrate', 'postgres', '--url', 'postgres://x/y', '--max-rate', 'fast'], /--max-rate must be a positive number/],
    [['migrate', 'postgres', '--url', 'postgres://x/y', '--sidecar-ca', '/nonexistent'], /need --sidecar/],
    [['verify', 'postgres', '--url', 'postgres://x/y', '--sample', '-1'], /sample/],
  ];
  for (const [args, message] of cases) {
    const result = await command(args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

test('migrate refuses a table without sender_id and prints the statement; --apply-schema migrates through a TLS sidecar; verify exits 0, then 3 on a planted mismatch', async () => {
  const { db, failures } = await seeded();
  const refused = await command(['migrate', 'postgres', '--url', db.url, '--report', join(dir, 'refused.jsonl')]);
  assert.equal(refused.status, 4, 'the schema step not done has its own exit status');
  assert.match(refused.stderr, /ALTER TABLE mam_muc_message ADD COLUMN sender_id INT;/);

  const port = await freeLoopbackPort();
  const sidecar = await startSidecarProcess([
    '--listen',
    `127.0.0.1:${port}`,
    '--metrics-listen',
    'off',
    '--tls-cert',
    certificates.serverCert.path,
    '--tls-key',
    certificates.serverKey.path,
  ]);
  try {
    const report = join(dir, 'tls.jsonl');
    const migrated = await command([
      'migrate',
      'postgres',
      '--url',
      db.url,
      '--apply-schema',
      '--sidecar',
      `127.0.0.1:${port}`,
      '--sidecar-ca',
      certificates.ca.path,
      '--batch-size',
      '10',
      '--report',
      report,
    ]);
    assert.equal(migrated.status, 0, migrated.stderr);
    assert.match(migrated.stdout, /done \(end reached\)/);
    assert.match(migrated.stderr, /decoding with the sidecar at 127\.0\.0\.1:/);
    const lines = readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { room_id: string; id: string; reason: string });
    assert.deepEqual(lines.map((l) => `${l.room_id}:${l.id} ${l.reason}`).sort(), failures, "the report holds exactly the dataset's failures");
    assert.equal(Number(/reported +(\d+)/.exec(migrated.stdout)![1]), failures.length);

    const verified = await command(['verify', 'postgres', '--url', db.url, '--sidecar', `127.0.0.1:${port}`, '--sidecar-ca', certificates.ca.path]);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stderr, /0 mismatches/);
  } finally {
    await sidecar.stop();
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`UPDATE mam_muc_message SET sender_id = (SELECT max(id) + 1000 FROM mam_server_user)
                       WHERE (room_id, id) = (SELECT room_id, id FROM mam_muc_message WHERE sender_id IS NOT NULL ORDER BY room_id, id LIMIT 1)`);
  await client.end();
  const dirty = await command(['verify', 'postgres', '--url', db.url, '--sample', '100000']);
  // (verify writes no files; migrate runs above all named their report inside the temp dir)
  assert.equal(dirty.status, 3, dirty.stderr);
  const mismatch = JSON.parse(dirty.stdout.trim()) as { kind: string };
  assert.equal(mismatch.kind, 'sender_row_missing');
});

test('the demo (npm run demo) runs end to end on a small embedded PostgreSQL', async () => {
  const result = await command(['demo', '--rows', '3000', '--report', join(dir, 'demo.jsonl')]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /records +3,000/);
  assert.match(result.stdout, /verify: \d+ random migrated rows re-decoded, 0 mismatches/);
  assert.match(result.stderr, /demo OK/);
});
