/**
 * The acceptance suite on one SQL server: the Erlang-made archive in MongooseIM 3.3's tables, the
 * real `migrate` command, then MongooseIM 3.4.0's own GDPR query for every sender, checked against
 * the generator. Run by postgres.test.ts and mariadb.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pairKey, type DatabaseFixture, type TestDatabase } from '../sql/fixture.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { buildAcceptanceArchive, MUC_HOST, ROOMS, splitJid, type AcceptanceArchive } from './archive.js';
import { gdprProblems, reportProblems, type GdprRow } from './gdpr-check.js';

export interface SqlAcceptance {
  readonly kind: 'postgres' | 'mysql';
  readonly start: () => Promise<DatabaseFixture>;
  /** MongooseIM's GDPR query: 3.4.0's, or (`prepared`) the prepared statements of 4.2.0 and later. */
  readonly gdpr: (url: string, jids: readonly string[], prepared?: boolean) => Promise<Map<string, GdprRow[]>>;
  /** The shard's checkpoint (any text that changes with each commit), null before the first. */
  readonly checkpoint?: (url: string) => Promise<string | null>;
}

const POLL_MS = 25;

/** The report file's records as message ids (SQL keys are `{room_id, id}`; ids are unique here). */
export function readSqlReport(path: string): { id: string; reason: string }[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { id: string; reason: string })
    .map((l) => ({ id: String(l.id), reason: l.reason }));
}

export function sqlAcceptanceSuite(s: SqlAcceptance): void {
  let fixture: DatabaseFixture;
  let archive: AcceptanceArchive;
  let dir: string;
  const opened: TestDatabase[] = [];

  before(async () => {
    archive = await buildAcceptanceArchive();
    fixture = await s.start();
    dir = mkdtempSync(join(tmpdir(), `mim-acceptance-${s.kind}-`));
  });
  after(async () => {
    for (const db of opened) await db.close().catch(() => {});
    await fixture?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh database holding the archive as MongooseIM 3.3 stored it. */
  async function seeded(): Promise<{ db: TestDatabase; roomIds: string[] }> {
    const db = await fixture.freshDatabase();
    opened.push(db);
    const rooms = ROOMS.map((user) => ({ server: MUC_HOST, user }));
    const ids = await db.insertUsers(rooms);
    const roomIds = rooms.map((r) => ids.get(pairKey(r))!);
    await db.insertMessages(archive.records.map((r) => ({ roomId: roomIds[r.room], id: r.id, payload: r.eterm })));
    return { db, roomIds };
  }

  const migrateArgs = (db: TestDatabase, report: string): string[] => [s.kind, '--url', db.url, '--apply-schema', '--report', report, '--batch-size', '16'];

  async function assertAccepted(db: TestDatabase, report: string): Promise<void> {
    const answers = await s.gdpr(db.url, archive.asked);
    assert.deepEqual(gdprProblems(archive, answers, { format: 'eterm', ordered: true }), []);
    assert.deepEqual(reportProblems(archive, readSqlReport(report)), []);
    // Not vacuous: every sender got something, and the archive has records nobody may get.
    for (const jid of archive.senders) assert.ok(answers.get(jid)!.length > 0, `${jid} got messages`);
    assert.ok(archive.records.some((r) => r.reason !== null));
  }

  test("after `migrate`, MongooseIM 3.4.0's GDPR query gives every sender exactly the messages they sent", async () => {
    const { db } = await seeded();
    const report = join(dir, 'plain.jsonl');
    const result = await startMigrateProcess(migrateArgs(db, report)).done;
    assert.equal(result.status, 0, result.stderr);
    await assertAccepted(db, report);
    // Later releases ask the same with prepared statements (bound parameters): same answer.
    assert.deepEqual(gdprProblems(archive, await s.gdpr(db.url, archive.asked, true), { format: 'eterm', ordered: true }), []);
  });

  test('the check fails on a single misattributed or missing row', async () => {
    const { db, roomIds } = await seeded();
    const report = join(dir, 'wrong.jsonl');
    const result = await startMigrateProcess(migrateArgs(db, report)).done;
    assert.equal(result.status, 0, result.stderr);
    const users = await db.users();
    const idOf = (jid: string): string => {
      const { user, host } = splitJid(jid);
      return users.find((u) => u.user === user && u.server === host)!.id;
    };
    // One of bob's rows given to alice, one of carol's rows taken from her.
    const bobs = archive.records.find((r) => r.sender === 'bob@example.com')!;
    const carols = archive.records.find((r) => r.sender === 'carol@example.com')!;
    await db.setSenderId(roomIds[bobs.room], bobs.id, idOf('alice@example.com'));
    await db.execute(`UPDATE mam_muc_message SET sender_id = NULL WHERE id = ${carols.id}`);
    const problems = gdprProblems(archive, await s.gdpr(db.url, archive.asked), { format: 'eterm', ordered: true });
    assert.deepEqual(
      problems.sort(),
      [
        `alice@example.com: got message ${bobs.id}, bob@example.com's`,
        `bob@example.com: 1 of its ${archive.records.filter((r) => r.sender === 'bob@example.com').length} messages missing (${bobs.id})`,
        `carol@example.com: 1 of its ${archive.records.filter((r) => r.sender === 'carol@example.com').length} messages missing (${carols.id})`,
      ].sort(),
    );
  });

  if (s.checkpoint !== undefined) {
    const checkpoint = s.checkpoint;
    test('after a run killed with SIGKILL and resumed, the GDPR query still gives every sender exactly their messages', async () => {
      const { db } = await seeded();
      const report = join(dir, 'killed.jsonl');
      const args = migrateArgs(db, report);
      // Slow enough to be caught mid-way; the kill lands after the first commit.
      const run = startMigrateProcess([...args, '--max-rate', '150']);
      let ended = false;
      void run.done.then(() => (ended = true));
      while (!ended && (await checkpoint(db.url)) === null) await new Promise((r) => setTimeout(r, POLL_MS));
      run.kill9();
      const killed = await run.done;
      assert.equal(killed.status, 'SIGKILL', `the run ended before the kill: ${killed.stdout}`);
      const written = [...(await db.senderIds()).values()].filter((v) => v !== null).length;
      const toWrite = archive.records.filter((r) => r.sender !== null).length;
      assert.ok(written > 0 && written < toWrite, `killed mid-way (${written} of ${toWrite} written)`);
      const resumed = await startMigrateProcess(args).done;
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stdout, /done \(end reached\)/);
      await assertAccepted(db, report);
    });
  }
}
