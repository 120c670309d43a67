/**
 * `migrate` as a database user without CREATE, on a real PostgreSQL and a real MariaDB: when the
 * checkpoint table is missing it stops with the statement a DBA should run (one clear message, no
 * stack trace, nothing written); once a DBA has created the table, it runs without ever needing
 * CREATE (before, `CREATE TABLE IF NOT EXISTS` ran every time and failed on the privilege).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MYSQL_DIALECT } from '../../clients/backends/sql/mysql-statements.js';
import { POSTGRES_DIALECT } from '../../clients/backends/sql/postgres-statements.js';
import type { SqlDialect } from '../../clients/backends/sql/sql-dialect.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import type { DatabaseFixture, TestDatabase } from './fixture.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { seedRandomArchive, wrongRows } from './random-archive.js';

const USER = 'migrator';
const SEED = Number(process.env.MIM_TEST_SEED ?? 11);

interface Flavour {
  readonly kind: 'postgres' | 'mysql';
  readonly dialect: SqlDialect<unknown>;
  readonly start: () => Promise<DatabaseFixture>;
  /** A user that may read and write MongooseIM's rows, and create nothing. */
  grantsWithoutCreate(database: string): string[];
  grantCheckpointTable(database: string): string[];
}

const POSTGRES: Flavour = {
  kind: 'postgres',
  dialect: POSTGRES_DIALECT,
  start: startPostgresFixture,
  // PostgreSQL 15 gives PUBLIC no CREATE on schema public: this role has none.
  grantsWithoutCreate: () => [
    `CREATE ROLE ${USER} LOGIN`,
    `GRANT SELECT, UPDATE ON mam_muc_message TO ${USER}`,
    `GRANT SELECT, INSERT ON mam_server_user TO ${USER}`,
    `GRANT USAGE ON SEQUENCE mam_server_user_id_seq TO ${USER}`,
  ],
  grantCheckpointTable: () => [`GRANT SELECT, INSERT, UPDATE, DELETE ON mim_sender_jid_checkpoint TO ${USER}`],
};

// Both hosts: a client on 127.0.0.1 may be seen as 'localhost'.
const MARIADB_USERS = [`'${USER}'@'%'`, `'${USER}'@'localhost'`];
const MARIADB: Flavour = {
  kind: 'mysql',
  dialect: MYSQL_DIALECT,
  // Privileges are checked only when the server runs with its grant tables.
  start: () => startMariadbFixture({ grants: true }),
  grantsWithoutCreate: (database) =>
    MARIADB_USERS.flatMap((u) => [
      `CREATE USER ${u}`,
      `GRANT SELECT, UPDATE ON ${database}.mam_muc_message TO ${u}`,
      `GRANT SELECT, INSERT ON ${database}.mam_server_user TO ${u}`,
    ]),
  grantCheckpointTable: (database) => MARIADB_USERS.map((u) => `GRANT SELECT, INSERT, UPDATE, DELETE ON ${database}.mim_sender_jid_checkpoint TO ${u}`),
};

function suite(flavour: Flavour): void {
  let fixture: DatabaseFixture;
  let db: TestDatabase;
  let dir: string;
  before(async () => {
    fixture = await flavour.start();
    db = await fixture.freshDatabase();
    dir = mkdtempSync(join(tmpdir(), 'mim-privileges-'));
  });
  after(async () => {
    await db?.close().catch(() => {});
    await fixture?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('without CREATE: the missing checkpoint table is one clear message naming the statement; once a DBA made it, the run needs no CREATE', async () => {
    const expected = await seedRandomArchive(db, 100, SEED);
    const database = new URL(db.url).pathname.slice(1);
    const { column, index } = flavour.dialect.schemaStatements;
    await db.execute(column, index, ...flavour.grantsWithoutCreate(database));
    const args = [flavour.kind, '--url', db.urlAs(USER), '--batch-size', '50', '--report', join(dir, 'report.jsonl')];

    const refused = await startMigrateProcess(args).done;
    assert.equal(refused.status, 1, refused.stderr);
    // Errors are one line: the statement comes with its whitespace collapsed, still runnable as shown.
    const oneLine = (text: string): string => text.replace(/\s+/g, ' ');
    assert.ok(oneLine(refused.stderr).includes(oneLine(flavour.dialect.createCheckpointTable)), `the statement for a DBA is shown:\n${refused.stderr}`);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(
      [...(await db.senderIds()).values()].every((v) => v === null),
      'nothing written',
    );

    await db.execute(flavour.dialect.createCheckpointTable, ...flavour.grantCheckpointTable(database));
    const migrated = await startMigrateProcess(args).done;
    assert.equal(migrated.status, 0, migrated.stderr);
    assert.match(migrated.stdout, /done \(end reached\)/);
    assert.deepEqual(await wrongRows(db, expected), []);
  });
}

describe('PostgreSQL', () => suite(POSTGRES));
describe('MariaDB', () => suite(MARIADB));
