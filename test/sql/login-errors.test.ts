/**
 * A login the database refuses is one line: what the server said and what to check (the user and
 * password in --url), exit 1, never the password. Real PostgreSQL (password authentication for
 * one role, set in pg_hba.conf) and real MariaDB (privileges checked).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { runCliBounded } from '../support/bounded-cli.js';
import { startMariadb, type MariadbServer } from '../support/mariadb.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

const CHILD_TIMEOUT_MS = 60_000;
const WRONG = 'Wr0ngPassw0rd';

let postgres: PostgresServer | undefined;
let mariadb: MariadbServer | undefined;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mim-login-errors-'));
});
after(async () => {
  await postgres?.stop();
  await mariadb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function assertLoginRefused(run: { status: number | string; stderr: string }, server: RegExp): void {
  assert.equal(run.status, 1, run.stderr);
  const lines = run.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('migrate: ') && !l.startsWith('verify: '));
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0], /failed: the database refused the login: /);
  assert.match(lines[0], server);
  assert.match(lines[0], /check the user and password in --url/);
  assert.ok(!run.stderr.includes(WRONG), 'the password is not echoed');
}

test('PostgreSQL, wrong password: one line, check the user and password', { timeout: 180_000 }, async () => {
  postgres = await startPostgres();
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE mim LOGIN PASSWORD 'right-one'`);
    // The test cluster trusts everyone; this role must give its password.
    const hba = join(postgres.dataDir, 'pg_hba.conf');
    writeFileSync(hba, `host all mim 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await admin.query('SELECT pg_reload_conf()');
  } finally {
    await admin.end();
  }
  const url = postgres.url.replace('postgres://postgres@', `postgres://mim:${WRONG}@`);
  assertLoginRefused(
    await runCliBounded(['migrate', 'postgres', '--url', url, '--report', join(dir, 'pg.jsonl')], CHILD_TIMEOUT_MS),
    /password authentication failed for user "mim"/,
  );
  assertLoginRefused(await runCliBounded(['verify', 'postgres', '--url', url], CHILD_TIMEOUT_MS), /password authentication failed/);
});

test('MariaDB, wrong password: one line, check the user and password', { timeout: 180_000 }, async () => {
  mariadb = await startMariadb({ grants: true });
  const admin = await mysql.createConnection({ uri: mariadb.url });
  try {
    await admin.query(`CREATE USER 'mim'@'%' IDENTIFIED BY 'right-one'`);
    await admin.query(`GRANT ALL ON *.* TO 'mim'@'%'`);
  } finally {
    await admin.end();
  }
  const url = mariadb.url.replace('mysql://root@', `mysql://mim:${WRONG}@`);
  assertLoginRefused(
    await runCliBounded(['migrate', 'mysql', '--url', url, '--report', join(dir, 'my.jsonl')], CHILD_TIMEOUT_MS),
    /Access denied for user 'mim'/,
  );
  assertLoginRefused(await runCliBounded(['verify', 'mysql', '--url', url], CHILD_TIMEOUT_MS), /Access denied/);
});
