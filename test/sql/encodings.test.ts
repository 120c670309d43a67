/**
 * A sender the database cannot store as given: a PostgreSQL database in LATIN1 (no character
 * beyond U+00FF) or SQL_ASCII (varchar(250) counts bytes), a MySQL `mam_server_user` whose columns
 * drifted from MongooseIM's `CHARACTER SET binary` to latin1 or utf8mb3 (no character beyond
 * U+FFFF). The database refuses the value itself; its rows must be reported `jid_not_storable`
 * and the rest of the walk written, where a whole batch used to fail on every run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { JsonlReport } from '../../clients/pipeline/report.js';
import { readReportedKeySet } from '../../clients/pipeline/report-keys.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { DatabaseFixture, FreshDatabaseOptions, TestDatabase } from './fixture.js';
import { rowKey } from './fixture.js';
import { insertGenerated, seededRandom, shuffled, unaccountedRows, type GeneratedRow } from './generated-archive.js';
import { startMariadbFixture } from './mariadb-fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

interface EncodingCase {
  readonly title: string;
  readonly database: FreshDatabaseOptions;
  /** Run as administrator after MongooseIM 3.3's schema (a drifted column). */
  readonly drift?: readonly string[];
  /** Sender user parts the database stores, and those it refuses. */
  readonly storable: readonly string[];
  readonly refused: readonly string[];
}

const POSTGRES_CASES: EncodingCase[] = [
  { title: 'a LATIN1 database', database: { encoding: 'LATIN1' }, storable: ['alice', 'café', 'ÿ'], refused: ['日本', 'x\u0100', 'smile\u{1F600}'] },
  // SQL_ASCII stores bytes as given and counts varchar(250) in bytes: 200 'é' are 400 bytes.
  {
    title: 'a SQL_ASCII database',
    database: { encoding: 'SQL_ASCII' },
    storable: ['alice', '日本', 'é'.repeat(120)],
    refused: ['é'.repeat(200), '日'.repeat(100)],
  },
];

const MARIADB_CASES: EncodingCase[] = [
  {
    title: 'mam_server_user in latin1',
    database: {},
    drift: [
      'ALTER TABLE mam_server_user MODIFY server varchar(250) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL, MODIFY user_name varchar(250) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL',
    ],
    storable: ['alice', 'café'],
    refused: ['日本', 'smile\u{1F600}'],
  },
  {
    title: 'mam_server_user in utf8mb3',
    database: {},
    drift: [
      'ALTER TABLE mam_server_user MODIFY server varchar(250) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NOT NULL, MODIFY user_name varchar(250) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NOT NULL',
    ],
    storable: ['alice', '日本'],
    refused: ['smile\u{1F600}'],
  },
];

/** Every sender in several rooms, interleaved, so that batches mix storable and refused senders. */
function rowsFor(c: EncodingCase): GeneratedRow[] {
  const users = [...c.storable, ...c.refused];
  const rows: GeneratedRow[] = [];
  for (let n = 0; n < 120; n++) rows.push({ roomId: String(1 + (n % 3)), id: String(1000 + n), user: users[n % users.length] });
  return shuffled(rows, seededRandom(23));
}

for (const [name, start, cases] of [
  ['PostgreSQL', startPostgresFixture, POSTGRES_CASES],
  ['MariaDB', () => startMariadbFixture(), MARIADB_CASES],
] as const) {
  describe(`${name}: senders the database cannot store`, () => {
    let fixture: DatabaseFixture;
    let dir: string;
    const opened: TestDatabase[] = [];
    before(async () => {
      fixture = await start();
      dir = mkdtempSync(join(tmpdir(), 'mim-encodings-'));
    });
    after(async () => {
      for (const db of opened) await db.close().catch(() => {});
      await fixture?.stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    for (const c of cases) {
      test(`${c.title}: refused senders reported jid_not_storable, every other row written, a re-run changes nothing`, async () => {
        const db = await fixture.freshDatabase(c.database);
        opened.push(db);
        if (c.drift !== undefined) await db.execute(...c.drift);
        const rows = rowsFor(c);
        await insertGenerated(db, rows);
        const reportPath = join(dir, `${name}-${c.title.replace(/\W+/g, '-')}.jsonl`);

        const migrate = async () => {
          const report = new JsonlReport(reportPath, false);
          const backend = db.backend();
          try {
            return await runMigration({ backend, openStream: openInProcessStream, report, reportPath, batchSize: 16, concurrency: 3, applySchema: true });
          } finally {
            report.close();
            await backend.close();
          }
        };

        const first = await migrate();
        assert.equal(first.reachedEnd, true);
        assert.equal(first.accounting?.kind, 'complete', JSON.stringify(first.accounting));
        const refusedRows = rows.filter((r) => r.user !== null && c.refused.includes(r.user));
        assert.equal(first.reportedByReason.jid_not_storable, refusedRows.length, JSON.stringify(first.reportedByReason));
        assert.equal(first.written, rows.length - refusedRows.length);

        const reported = await readReportedKeySet(reportPath, 10_000);
        const reportedKeys = [...reported].map((k) => {
          const fields = JSON.parse(k) as { room_id: string; id: string };
          return rowKey(fields.room_id, fields.id);
        });
        assert.deepEqual(reportedKeys.sort(), refusedRows.map((r) => rowKey(r.roomId, r.id)).sort());
        const asRecords = reportedKeys.map((k) => {
          const [roomId, id] = k.split(':');
          return { key: null, fields: { room_id: roomId, id }, reason: 'jid_not_storable' as const, detail: '' };
        });
        // Every storable row holds its own sender; every refused one is NULL and reported.
        const problems = await unaccountedRows(
          db,
          rows.map((r) => (r.user !== null && c.refused.includes(r.user) ? { ...r, user: null } : r)),
          asRecords,
        );
        assert.deepEqual(problems, []);

        const again = await migrate();
        assert.equal(again.written, 0);
        assert.equal(again.accounting?.kind, 'complete');
      });
    }
  });
}
