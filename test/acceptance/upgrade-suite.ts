/**
 * The upgrade's acceptance suite on one SQL server (run by postgres.test.ts and mariadb.test.ts,
 * on the server those files start): a MongooseIM 3.3 archive of both tables (upgrade-archive.ts:
 * Erlang-made payloads, answers from Erlang), taken through the README's three backfills and then
 * asked MongooseIM's own lookups (mongooseim-upgrade-sql.ts):
 *
 * 1. The README's commands, as written there, through the real CLI (database URL from
 *    MIM_SENDER_JID_DB_URL, default report files in the working directory), in order:
 *    `migrate KIND --apply-schema`, `migrate KIND --field origin_id --apply-schema`,
 *    `migrate KIND --field is_groupchat --apply-schema`; after each, every row holds Erlang's
 *    answer and the report files name exactly the records without one; then `verify KIND
 *    --complete` and `verify KIND --field origin_id|is_groupchat --complete` exit 0.
 *    MongooseIM 3.7.0's retraction lookups (rooms: room, sender id resolved as 3.7 does, origin_id;
 *    one to one: owner, minified remote bare JID, origin_id, direction; newest first, one row) then
 *    find, for every sender/peer and every origin-id seen, the message the generator says
 *    MongooseIM would retract, and nothing where it says none (unknown sender, unknown origin-id,
 *    a stranger). MongooseIM 6.2.1's lookup for a client asking without groupchat messages gives
 *    every owner exactly their one-to-one messages that are no groupchat copies.
 * 2. The same checks fail when a backfill is skipped: on an archive whose schema the operator
 *    upgraded by MongooseIM's guides alone, every lookup misses and the filter lets groupchat
 *    copies through; after `--field origin_id` and `--field is_groupchat` but without the sender's
 *    walk, the one-to-one lookups and the filter are right and every room lookup still misses;
 *    the sender's walk then makes them right.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DatabaseFixture, TestDatabase } from '../sql/fixture.js';
import { pairKey } from '../sql/fixture.js';
import { runCliBounded, type BoundedRun } from '../support/bounded-cli.js';
import { bareJid, guideSchema, mamMessage33, openMongooseSession, PAGE_SIZE, type UpgradeKind } from './mongooseim-upgrade-sql.js';
import {
  buildUpgradeArchive,
  minifiedFullJid,
  MUC_HOST,
  mucLookups,
  OWNERS,
  pmLookups,
  remoteResource,
  ROOMS,
  storedOriginId,
  withoutGroupchat,
  type MucLookup,
  type PmLookup,
  type UpgradeArchive,
} from './upgrade-archive.js';

const CLI_TIMEOUT_MS = 120_000;

/** One server for the whole test file: each suite's `start` gets the same one, stopped once by the file. */
export function sharedFixture(start: () => Promise<DatabaseFixture>): { start: () => Promise<DatabaseFixture>; stop: () => Promise<void> } {
  let started: Promise<DatabaseFixture> | undefined;
  return {
    start: async () => {
      started ??= start();
      const fixture = await started;
      return { ...fixture, stop: async () => {} };
    },
    stop: async () => {
      if (started !== undefined) await (await started.catch(() => undefined))?.stop();
    },
  };
}

interface Sql {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function connect(kind: UpgradeKind, url: string): Sql {
  if (kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on('error', () => {});
    return { query: async (sql, params = []) => (await pool.query(sql, params)).rows as Record<string, unknown>[], close: () => pool.end() };
  }
  const pool = mysql.createPool({ uri: url, connectionLimit: 1, supportBigNumbers: true, bigNumberStrings: true, charset: 'utf8mb4' });
  return { query: async (sql, params = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[], close: () => pool.end() };
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/** Runs the CLI as a user would from `cwd`, the database URL in the environment (as the README exports it). */
function cli(args: readonly string[], cwd: string, url: string): Promise<BoundedRun> {
  return runCliBounded(args, CLI_TIMEOUT_MS, { ...process.env, MIM_SENDER_JID_DB_URL: url }, cwd);
}

export interface UpgradeAcceptance {
  readonly kind: UpgradeKind;
  readonly start: () => Promise<DatabaseFixture>;
}

export function upgradeAcceptanceSuite(s: UpgradeAcceptance): void {
  const kind = s.kind;
  let fixture: DatabaseFixture;
  let archive: UpgradeArchive;
  let dir: string;
  const opened: { db: TestDatabase; sql: Sql }[] = [];

  before(async () => {
    archive = buildUpgradeArchive();
    fixture = await s.start();
    dir = mkdtempSync(join(tmpdir(), `mim-upgrade-${kind}-`));
  });
  after(async () => {
    for (const { db, sql } of opened) {
      await sql.close().catch(() => {});
      await db.close().catch(() => {});
    }
    await fixture?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  interface Seeded {
    readonly db: TestDatabase;
    readonly sql: Sql;
    /** Room index -> mam_server_user id; owner bare JID -> its id. */
    readonly roomIds: string[];
    readonly ownerIds: Map<string, string>;
    /** The working directory the CLI runs in (its default report files land here). */
    readonly cwd: string;
  }

  /** A fresh database holding the archive as MongooseIM 3.3 stored it. */
  async function seeded(name: string): Promise<Seeded> {
    const db = await fixture.freshDatabase();
    await db.execute(...mamMessage33(kind));
    const sql = connect(kind, db.url);
    opened.push({ db, sql });
    const rooms = ROOMS.map((user) => ({ server: MUC_HOST, user }));
    const owners = OWNERS.map((jid) => ({ server: bareJid(jid).server, user: bareJid(jid).user }));
    const ids = await db.insertUsers([...rooms, ...owners]);
    const roomIds = rooms.map((r) => ids.get(pairKey(r))!);
    const ownerIds = new Map(OWNERS.map((jid, i) => [jid, ids.get(pairKey(owners[i]))!]));
    await db.insertMessages(archive.muc.map((r) => ({ roomId: roomIds[r.room], id: r.id, payload: r.payload })));
    const p = (n: number): string => (kind === 'postgres' ? `$${n}` : '?');
    for (const r of archive.pm) {
      // As 3.3's mod_mam_rdbms_arch:prepare_message/8 stores it (mam_jid_mini JIDs).
      const owner = bareJid(r.owner);
      const from = r.direction === 'I' ? r.remote : `${r.owner}/res`;
      await sql.query(
        `INSERT INTO mam_message (id, user_id, remote_bare_jid, remote_resource, direction, from_jid, message, search_body)
         VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, 'hi')`,
        [
          r.id,
          ownerIds.get(r.owner),
          minifiedFullJid(owner, r.remote.split('/')[0]),
          remoteResource(r.remote),
          r.direction,
          minifiedFullJid(owner, from),
          r.payload,
        ],
      );
    }
    return { db, sql, roomIds, ownerIds, cwd: mkdtempSync(join(dir, `${name}-`)) };
  }

  /** The report lines written by the command just run: the new .jsonl files in the working directory since `seen`. */
  function newReportLines(cwd: string, seen: Set<string>): Record<string, string>[] {
    const lines: Record<string, string>[] = [];
    for (const file of readdirSync(cwd)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()) {
      if (seen.has(file)) continue;
      seen.add(file);
      for (const line of readFileSync(join(cwd, file), 'utf8').split('\n')) if (line.length > 0) lines.push(JSON.parse(line) as Record<string, string>);
    }
    return lines;
  }

  async function run(db: Seeded, args: readonly string[]): Promise<string> {
    const result = await cli(args, db.cwd, db.db.url);
    assert.equal(result.status, 0, `${args.join(' ')}: exit ${result.status}\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  // ---- what the store holds, against Erlang's answers

  async function assertSenders(db: Seeded): Promise<void> {
    const rows = await db.sql.query(
      'SELECT m.id AS id, u.server AS server, u.user_name AS user_name FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id',
    );
    const got = Object.fromEntries(rows.map((r) => [text(r.id)!, r.server === null ? null : `${text(r.user_name)}@${text(r.server)}`]));
    assert.deepEqual(got, Object.fromEntries(archive.muc.map((r) => [r.id, r.sender])));
  }

  async function assertOriginIds(db: Seeded): Promise<void> {
    for (const [table, records] of [
      ['mam_muc_message', archive.muc],
      ['mam_message', archive.pm],
    ] as const) {
      const rows = await db.sql.query(`SELECT id, origin_id FROM ${table}`);
      assert.deepEqual(
        Object.fromEntries(rows.map((r) => [text(r.id)!, text(r.origin_id)])),
        Object.fromEntries(records.map((r) => [r.id, storedOriginId(r.originId)])),
        table,
      );
    }
  }

  async function assertGroupchat(db: Seeded): Promise<void> {
    const rows = await db.sql.query('SELECT id, is_groupchat FROM mam_message');
    assert.deepEqual(
      Object.fromEntries(rows.map((r) => [text(r.id)!, r.is_groupchat === true || Number(r.is_groupchat) === 1])),
      Object.fromEntries(archive.pm.map((r) => [r.id, r.isGroupchat === true])),
    );
  }

  /** Report lines as `id reason`, sorted (ids are unique across both tables here). */
  const reportedIds = (lines: Record<string, string>[]): string[] => lines.map((l) => `${l.id} ${l.reason}`).sort();

  // ---- MongooseIM's lookups

  interface Answers {
    readonly muc: { lookup: MucLookup; got: string | null }[];
    readonly pm: { lookup: PmLookup; got: string | null }[];
    readonly filter: Map<string, string[]>;
  }

  /** `filter`: ask 6.2.1's lookup too (the is_groupchat column must exist). */
  async function askMongooseIM(db: Seeded, filter = true): Promise<Answers> {
    const session = await openMongooseSession(kind, db.db.url);
    try {
      const muc = [];
      for (const lookup of mucLookups(archive)) {
        muc.push({ lookup, got: await session.mucRetractTarget(db.roomIds[lookup.room], bareJid(lookup.sender), lookup.originId) });
      }
      const pm = [];
      for (const lookup of pmLookups(archive)) {
        const owner = bareJid(lookup.owner);
        pm.push({
          lookup,
          got: await session.pmRetractTarget(await session.archiveId(owner), owner, bareJid(lookup.remote), lookup.originId, lookup.direction),
        });
      }
      const pages = new Map<string, string[]>();
      if (filter) for (const owner of OWNERS) pages.set(owner, await session.withoutGroupchat(await session.archiveId(bareJid(owner))));
      return { muc, pm, filter: pages };
    } finally {
      await session.close();
    }
  }

  const wrongMuc = (a: Answers): string[] =>
    a.muc
      .filter((x) => x.got !== x.lookup.expected)
      .map((x) => `${ROOMS[x.lookup.room]} ${x.lookup.sender} ${x.lookup.originId}: got ${x.got}, want ${x.lookup.expected}`);
  const wrongPm = (a: Answers): string[] =>
    a.pm
      .filter((x) => x.got !== x.lookup.expected)
      .map((x) => `${x.lookup.owner} ${x.lookup.remote} ${x.lookup.originId} ${x.lookup.direction}: got ${x.got}, want ${x.lookup.expected}`);
  const wrongFilter = (a: Answers): string[] => {
    const want = withoutGroupchat(archive);
    return OWNERS.filter((o) => JSON.stringify(a.filter.get(o)) !== JSON.stringify(want.get(o))).map(
      (o) => `${o}: got ${a.filter.get(o)!.length} messages, want ${want.get(o)!.length}`,
    );
  };
  /** Before a backfill: every lookup that should find a message finds none. */
  const assertAllMissed = (found: { lookup: { expected: string | null }; got: string | null }[], what: string): void => {
    const expected = found.filter((x) => x.lookup.expected !== null);
    assert.ok(expected.length > 0, `${what}: some lookups have a message to find`);
    assert.deepEqual(
      found.filter((x) => x.got !== null),
      [],
      `${what}: found before its backfill`,
    );
  };
  /** Before the is_groupchat backfill: each owner gets its groupchat copies too. */
  const assertFilterLeaks = (a: Answers): void => {
    const want = withoutGroupchat(archive);
    for (const owner of OWNERS) {
      const all = archive.pm.filter((r) => r.owner === owner).map((r) => r.id);
      assert.deepEqual(a.filter.get(owner), all, `${owner}: without is_groupchat every message comes back`);
      assert.ok(all.length > want.get(owner)!.length, `${owner} has groupchat copies`);
    }
  };

  test('the archive is what the suite says: room and one-to-one lookups with and without a message to find, groupchat copies, records without answers', () => {
    const muc = mucLookups(archive);
    const pm = pmLookups(archive);
    assert.ok(muc.some((l) => l.expected !== null) && muc.some((l) => l.expected === null));
    assert.ok(pm.some((l) => l.expected !== null) && pm.some((l) => l.expected === null));
    // One sender's repeated origin-id in a room: the newest one, not the first.
    assert.ok(
      muc.some(
        (l) =>
          l.expected !== null && archive.muc.filter((r) => r.room === l.room && r.sender === l.sender && storedOriginId(r.originId) === l.originId).length > 1,
      ),
    );
    assert.ok(pm.some((l) => l.expected !== null && l.direction === 'O') && pm.some((l) => l.expected !== null && l.direction === 'I'));
    // An origin-id whose message has no known sender, newer than the one to retract: only sender_id tells them apart.
    assert.ok(
      muc.some(
        (l) =>
          l.expected !== null &&
          archive.muc.some((r) => r.room === l.room && r.sender === null && storedOriginId(r.originId) === l.originId && BigInt(r.id) > BigInt(l.expected!)),
      ),
    );
    assert.ok(archive.muc.some((r) => r.originId === 'malformed'));
    assert.ok(archive.pm.some((r) => r.isGroupchat === true) && archive.pm.some((r) => r.originId !== 'malformed' && r.originId.originId === null));
    for (const owner of OWNERS) assert.ok(archive.pm.filter((r) => r.owner === owner).length < PAGE_SIZE, 'one page holds an archive');
  });

  test("the README's three backfills in order, then MongooseIM 3.7's retraction and 6.2.1's groupchat filter find the old messages", async () => {
    const db = await seeded('readme');
    const seen = new Set<string>();

    const sender = await run(db, ['migrate', kind, '--apply-schema']);
    assert.match(sender, /done \(end reached\)/);
    assert.match(sender, /accounted for: every record written or reported/);
    await assertSenders(db);
    assert.deepEqual(
      reportedIds(newReportLines(db.cwd, seen)),
      archive.muc
        .filter((r) => r.reason !== null)
        .map((r) => `${r.id} ${r.reason}`)
        .sort(),
    );

    assert.match(await run(db, ['migrate', kind, '--field', 'origin_id', '--apply-schema']), /done \(end reached\)/);
    await assertOriginIds(db);
    assert.deepEqual(
      reportedIds(newReportLines(db.cwd, seen)),
      [...archive.muc, ...archive.pm]
        .filter((r) => r.originId === 'malformed')
        .map((r) => `${r.id} malformed`)
        .sort(),
    );
    // Before 6.2.1's column exists: the retraction lookups only.
    const retracting = await askMongooseIM(db, false);
    assert.deepEqual(wrongMuc(retracting), []);
    assert.deepEqual(wrongPm(retracting), []);

    assert.match(await run(db, ['migrate', kind, '--field', 'is_groupchat', '--apply-schema']), /done \(end reached\)/);
    await assertGroupchat(db);
    assert.deepEqual(reportedIds(newReportLines(db.cwd, seen)), []);
    const filtering = await askMongooseIM(db);
    assert.deepEqual(wrongFilter(filtering), []);
    assert.deepEqual([...wrongMuc(filtering), ...wrongPm(filtering)], []);

    for (const field of [[], ['--field', 'origin_id'], ['--field', 'is_groupchat']]) {
      const verify = await cli(['verify', kind, ...field, '--complete'], db.cwd, db.db.url);
      assert.equal(verify.status, 0, `verify ${field.join(' ')}: ${verify.stdout}\n${verify.stderr}`);
      assert.equal(verify.stdout, '');
    }
  });

  test("each lookup misses when its backfill is skipped: MongooseIM's guides alone, then the fields without the sender, then the sender", async () => {
    const db = await seeded('skipped');
    const guide = guideSchema(kind);
    await db.db.execute(...guide.sender, ...guide.originId, ...guide.isGroupchat);

    const untouched = await askMongooseIM(db);
    assertAllMissed(untouched.muc, 'room retraction');
    assertAllMissed(untouched.pm, 'one-to-one retraction');
    assertFilterLeaks(untouched);

    // The schema is the guides': the walks need no --apply-schema.
    await run(db, ['migrate', kind, '--field', 'origin_id']);
    await run(db, ['migrate', kind, '--field', 'is_groupchat']);
    const withoutSender = await askMongooseIM(db);
    assert.deepEqual(wrongPm(withoutSender), []);
    assert.deepEqual(wrongFilter(withoutSender), []);
    assertAllMissed(withoutSender.muc, 'room retraction without the sender backfill');

    await run(db, ['migrate', kind]);
    const all = await askMongooseIM(db);
    assert.deepEqual([...wrongMuc(all), ...wrongPm(all), ...wrongFilter(all)], []);
  });
}
