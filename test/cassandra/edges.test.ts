/**
 * Edges of the Cassandra walk against a real Cassandra 5.0 node with password authentication and
 * Cassandra's own authorizer on (so that a role without MODIFY is a real one): a dry run on a
 * keyspace never migrated, checkpoints that are corrupt or outside their range, a table stored
 * `id ASC`, a role that may not write, `verify --complete`'s scan, the estimate, the driver's page
 * size under large payloads. Small archives, one node for the file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { CassandraBackend } from '../../clients/backends/cassandra/cassandra-backend.js';
import { connectCassandra } from '../../clients/backends/cassandra/connect.js';
import type { RangeCursor, CassandraRowKey } from '../../clients/backends/cassandra/keys.js';
import { WHOLE_TABLE, type ScannedRecord } from '../../clients/pipeline/types.js';
import { describeProgress, type ProgressSnapshot } from '../../clients/pipeline/progress.js';
import { MemoryReport, reportLine } from '../../clients/pipeline/report.js';
import { runMigration, type MigrationOptions } from '../../clients/pipeline/run-migration.js';
import { mucMessage, termToBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import { SUPERUSER, endProcessIfHeldOpen, startCassandra, type CassandraNode } from '../support/cassandra.js';
import { runCli } from '../support/cli-process.js';
import { dryRunsLeaveTheRealRun, limitRunsReachTheEnd } from '../support/cli-walk-contract.js';
import { inProcessExtract, openInProcessStream } from '../support/in-process-stream.js';
import { createMongooseIm33Keyspace, expectedRows, loadMessages, readAllRows, rowKey } from './archive.js';
import type { ArchivedMessage } from './dataset.js';

let node: CassandraNode;
let client: cassandra.Client;
const opened: CassandraBackend[] = [];

before(async () => {
  node = await startCassandra({ auth: true });
  client = await connectAs(SUPERUSER);
});

after(async () => {
  for (const backend of opened) await backend.close().catch(() => {});
  await client?.shutdown().catch(() => {});
  await node?.stop();
  endProcessIfHeldOpen();
});

function connectAs(credentials: { username: string; password: string }): Promise<cassandra.Client> {
  return connectCassandra({ contactPoints: [node.contactPoint], localDataCenter: 'datacenter1', credentials });
}

async function openBackend(
  keyspace: string,
  options: { fillNickCopies?: boolean; credentials?: { username: string; password: string } } = {},
): Promise<CassandraBackend> {
  const own = await connectAs(options.credentials ?? SUPERUSER);
  const backend = new CassandraBackend({
    client: own,
    keyspace,
    consistency: cassandra.types.consistencies.localOne,
    fillNickCopies: options.fillNickCopies ?? false,
  });
  opened.push(backend);
  return backend;
}

function migrate(backend: CassandraBackend, options: Partial<MigrationOptions> = {}) {
  const report = new MemoryReport<CassandraRowKey>();
  const run = runMigration({
    backend,
    openStream: openInProcessStream,
    report,
    batchSize: 20,
    concurrency: 2,
    applySchema: true,
    maxRetries: 3,
    backoff: { baseMs: 100, maxMs: 500 },
    ...options,
  });
  return { report, run };
}

const payloadCache = new Map<string, Buffer>();
function payloadFrom(jid: string, body?: string): Buffer {
  const key = `${jid}\u0000${body ?? ''}`;
  let payload = payloadCache.get(key);
  if (payload === undefined) {
    payload = Buffer.from(termToBinary(xmlTerm(mucMessage({ jid, ...(body === undefined ? {} : { body }) }))));
    payloadCache.set(key, payload);
  }
  return payload;
}

/** `count` messages over `rooms` rooms, each sent by `userN@example.com/r`, ids spread from `firstId`. */
function simpleArchive(count: number, rooms: number, firstId = 1000n): ArchivedMessage[] {
  return Array.from({ length: count }, (_, i) => {
    const user = `user${i % 7}`;
    return {
      roomJid: `room${i % rooms}@muc.example.com`,
      nick: `nick${i % 3}`,
      id: String(firstId + BigInt(i) * 37n),
      payload: payloadFrom(`${user}@Example.com/r`),
      expected: { fromJid: `${user}@example.com` },
    };
  });
}

async function assertEveryRow(keyspace: string, messages: readonly ArchivedMessage[], fillNickCopies = false): Promise<void> {
  const stored = await readAllRows(client, keyspace);
  const expected = expectedRows(messages, fillNickCopies);
  assert.equal(stored.size, expected.size, 'row count');
  const wrong: string[] = [];
  for (const [key, want] of expected) {
    const row = stored.get(key);
    if (row?.fromJid !== want) wrong.push(`${key.split('\u0000').join(' | ')}: ${JSON.stringify(row?.fromJid)}, want ${JSON.stringify(want)}`);
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} rows wrong`);
}

async function nullRows(keyspace: string): Promise<number> {
  const stored = await readAllRows(client, keyspace);
  return [...stored.values()].filter((r) => r.withNick === '' && r.fromJid === null).length;
}

test("--dry-run on a keyspace never migrated (no checkpoint table yet) runs: Cassandra 5 says 'table ... does not exist'", async () => {
  const keyspace = 'ks_dry_fresh';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(30, 4);
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  await backend.applySchema(); // the guide's step 1, done by hand: a dry run never changes the schema
  const { run, report } = migrate(backend, { dryRun: true });
  const summary = await run;
  assert.equal(summary.reachedEnd, true);
  assert.equal(summary.records, messages.length);
  assert.equal(summary.written, messages.length, 'would write every record');
  assert.equal(report.rows.length, 0);
  assert.equal(await nullRows(keyspace), messages.length, 'a dry run writes nothing');
  const tables = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true });
  assert.ok(!tables.rows.some((r) => r['table_name'] === 'mim_sender_jid_checkpoint'), 'a dry run creates no checkpoint table');
});

test('a checkpoint outside its own token range, or with a null column, is refused with its name and --reset; --reset then walks every row', async () => {
  const keyspace = 'ks_bad_checkpoint';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(200, 40);
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  await backend.applySchema();
  await backend.prepareCheckpoints();
  const table = `${keyspace}.mim_sender_jid_checkpoint`;
  const insert = `INSERT INTO ${table} (walk, last_token, room_jid, with_nick, id) VALUES (?, ?, ?, ?, ?)`;
  // Range 5 is (-2^63 + 5 * 2^58, -2^63 + 6 * 2^58]: the largest token is far outside it.
  await client.execute(insert, ['blank-copies/range-05-of-64', 2n ** 63n - 1n, 'room1@muc.example.com', '', 5n], { prepare: true });
  const outside = migrate(backend);
  await assert.rejects(outside.run, (error: Error) => {
    assert.match(error.message, /checkpoint 'blank-copies\/range-05-of-64' in ks_bad_checkpoint\.mim_sender_jid_checkpoint/);
    assert.match(error.message, /holds token 9223372036854775807, outside its range/);
    assert.match(error.message, /--reset/);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    return true;
  });
  assert.equal(await nullRows(keyspace), messages.length, 'refused before any write');

  // A row with a null id (what a hand edit or a partial write leaves).
  await client.execute(`DELETE FROM ${table} WHERE walk = ?`, ['blank-copies/range-05-of-64'], { prepare: true });
  await client.execute(`INSERT INTO ${table} (walk, last_token) VALUES (?, ?)`, ['blank-copies/range-09-of-64', -(2n ** 63n) + 9n * 2n ** 58n + 1n], {
    prepare: true,
  });
  const corrupt = migrate(backend);
  await assert.rejects(corrupt.run, (error: Error) => {
    assert.match(
      error.message,
      /checkpoint 'blank-copies\/range-09-of-64' in ks_bad_checkpoint\.mim_sender_jid_checkpoint is corrupt \(room_jid, with_nick, id null\)/,
    );
    assert.match(error.message, /--reset/);
    assert.doesNotMatch(error.message, /BigInt/);
    return true;
  });
  assert.equal(await nullRows(keyspace), messages.length, 'refused before any write');

  const reset = migrate(backend, { reset: true });
  const summary = await reset.run;
  assert.equal(summary.reachedEnd, true);
  assert.equal(summary.written, messages.length);
  await assertEveryRow(keyspace, messages);
});

test('a table stored CLUSTERING ORDER BY (id ASC): a run interrupted inside a partition resumes with the rest of it, every row written', async () => {
  const keyspace = 'ks_id_asc';
  await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(
    `CREATE TABLE ${keyspace}.mam_muc_message (id bigint, room_jid varchar, nick_name varchar, with_nick varchar, message blob, ` +
      'PRIMARY KEY ((room_jid, with_nick), id)) WITH CLUSTERING ORDER BY (id ASC)',
  );
  // One big room (its '' partition holds 150 rows) and a few small ones.
  const messages = [...simpleArchive(150, 1, -5_000n), ...simpleArchive(12, 6, 10_000_000n).map((m) => ({ ...m, roomJid: `small-${m.roomJid}` }))];
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  const controller = new AbortController();
  let stoppedAt: { roomJid: string; id: string } | undefined;
  const save = backend.saveCheckpoint.bind(backend);
  backend.saveCheckpoint = async (partition, cursor) => {
    await save(partition, cursor);
    if (cursor.roomJid === 'room0@muc.example.com' && cursor.withNick === '' && stoppedAt === undefined) {
      stoppedAt = cursor;
      controller.abort();
    }
  };
  const first = migrate(backend, { batchSize: 10, concurrency: 1, signal: controller.signal });
  const interrupted = await first.run;
  assert.equal(interrupted.reachedEnd, false, 'interrupted');
  assert.ok(stoppedAt !== undefined, 'stopped after a checkpoint inside the big partition');
  assert.ok(BigInt(stoppedAt.id) < -5_000n + 149n * 37n, `the checkpoint (id ${stoppedAt.id}) is inside the partition, not at its end`);
  assert.ok((await nullRows(keyspace)) > 0, 'rows left for the resumed run');

  const resumed = await migrate(await openBackend(keyspace), { batchSize: 10, concurrency: 1 }).run;
  assert.equal(resumed.reachedEnd, true);
  assert.ok(resumed.resumedPartitions >= 1, 'the second run resumed from the checkpoint');
  assert.equal(interrupted.written + resumed.written, messages.length, 'every record written once over both runs');
  await assertEveryRow(keyspace, messages);
});

test('a table whose key is not ((room_jid, with_nick), id) is refused before anything is walked', async () => {
  const keyspace = 'ks_other_shape';
  await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(
    `CREATE TABLE ${keyspace}.mam_muc_message (id bigint, room_jid varchar, nick_name varchar, with_nick varchar, message blob, from_jid varchar, ` +
      'PRIMARY KEY ((room_jid, with_nick), nick_name, id))',
  );
  await client.execute(`CREATE INDEX ON ${keyspace}.mam_muc_message (from_jid)`);
  const backend = await openBackend(keyspace);
  await assert.rejects(migrate(backend).run, /PRIMARY KEY \(\(room_jid, with_nick\), nick_name, id\), not \(\(room_jid, with_nick\), id\)/);
});

test('a role without MODIFY on mam_muc_message: the CLI stops at the first refused write with one line and exit 1, no checkpoint moved, nothing reported', async (t) => {
  const keyspace = 'ks_no_modify';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(120, 30);
  await loadMessages(client, keyspace, messages);
  const admin = await openBackend(keyspace);
  await admin.applySchema();
  await admin.prepareCheckpoints();
  // May read the archive and keep its place, may not write the archive.
  await client.execute("CREATE ROLE mim_reader WITH PASSWORD = 'reader-secret' AND LOGIN = true");
  await client.execute(`GRANT SELECT ON KEYSPACE ${keyspace} TO mim_reader`);
  await client.execute(`GRANT MODIFY ON TABLE ${keyspace}.mim_sender_jid_checkpoint TO mim_reader`);
  const dir = mkdtempSync(join(tmpdir(), 'mim-cassandra-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'password'), 'reader-secret\n');
  const reportFile = join(dir, 'report.jsonl');
  const result = await runCli(
    t,
    [
      'migrate',
      'cassandra',
      '--contact-points',
      node.contactPoint,
      '--keyspace',
      keyspace,
      '--username',
      'mim_reader',
      '--password-file',
      join(dir, 'password'),
      '--batch-size',
      '20',
      '--concurrency',
      '2',
      '--report',
      reportFile,
      '--consistency',
      'ONE',
    ],
    new Uint8Array(),
  );
  const failedLines = result.stderr.split('\n').filter((l) => l.includes('failed:'));
  assert.equal(result.code, 1, `exit status; stderr:\n${result.stderr}`);
  assert.equal(failedLines.length, 1, result.stderr);
  assert.match(failedLines[0], /refuses every write to ks_no_modify\.mam_muc_message: .*MODIFY/);
  assert.match(failedLines[0], /GRANT MODIFY ON TABLE ks_no_modify\.mam_muc_message/);
  assert.doesNotMatch(result.stderr, /reader-secret/);
  const saved = await client.execute(`SELECT walk FROM ${keyspace}.mim_sender_jid_checkpoint`);
  assert.equal(saved.rows.length, 0, 'no checkpoint moved');
  assert.equal(existsSync(reportFile) ? readFileSync(reportFile, 'utf8') : '', '', 'no record reported write_refused');
  assert.equal(await nullRows(keyspace), messages.length);

  // Once the role may write, the same command does the work.
  await client.execute(`GRANT MODIFY ON TABLE ${keyspace}.mam_muc_message TO mim_reader`);
  const again = await migrate(await openBackend(keyspace, { credentials: { username: 'mim_reader', password: 'reader-secret' } })).run;
  assert.equal(again.reachedEnd, true);
  await assertEveryRow(keyspace, messages);
});

/** Every record `scanPage` gives for the whole ring, pages of `rows`, alternating two backends so that half the pages start from a cursor. */
async function scanAll(backends: readonly CassandraBackend[], rows: number): Promise<ScannedRecord<CassandraRowKey>[]> {
  const all: ScannedRecord<CassandraRowKey>[] = [];
  let turn = 0;
  for (const partition of await backends[0].partitions(WHOLE_TABLE)) {
    let after: RangeCursor | null = null;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 10_000, 'scan ends');
      const page = await backends[turn++ % backends.length].scanPage(partition, after, { records: rows, bytes: 1 << 20 });
      all.push(...page.records);
      if (page.end) break;
      assert.ok(page.cursor !== null, 'a page that is not the end has a cursor');
      after = page.cursor;
    }
  }
  return all;
}

test('scanPage (verify --complete) visits every row the walk answers for exactly once across ranges and cursors, written or not, and says what is stored', async () => {
  const keyspace = 'ks_scan';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = [...simpleArchive(150, 40, -(2n ** 62n)), ...simpleArchive(40, 2, 2n ** 62n)];
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  await backend.applySchema();
  assert.equal(typeof backend.noAccountingReason, 'string');
  // Some '' copies written right, one wrong, the rest not at all; one nick copy written.
  const set = `UPDATE ${keyspace}.mam_muc_message SET from_jid = ? WHERE room_jid = ? AND with_nick = ? AND id = ?`;
  const stored = new Map<string, string>();
  for (const m of messages.filter((_, i) => i % 3 === 0)) {
    const value = m === messages[0] ? 'mallory@evil.example' : (m.expected as { fromJid: string }).fromJid;
    await client.execute(set, [value, m.roomJid, '', BigInt(m.id)], { prepare: true });
    stored.set(rowKey(m.roomJid, '', m.id), value);
  }
  await client.execute(set, ['', messages[1].roomJid, messages[1].nick, BigInt(messages[1].id)], { prepare: true });

  const scanned = await scanAll([backend, await openBackend(keyspace)], 7);
  const keys = scanned.map((r) => rowKey(r.key.roomJid, r.key.withNick, r.key.id));
  assert.equal(new Set(keys).size, keys.length, 'no row twice');
  assert.deepEqual(new Set(keys), new Set(messages.map((m) => rowKey(m.roomJid, '', m.id))), "every '' copy, no nick copy");
  let mismatches = 0;
  for (const record of scanned) {
    const key = rowKey(record.key.roomJid, record.key.withNick, record.key.id);
    assert.equal(record.written, stored.has(key), `written flag of ${key}`);
    assert.equal(record.stored, stored.get(key) ?? '');
    assert.ok(record.payload.length > 0);
    if (record.written) {
      const [answer] = inProcessExtract([{ key: '0', payload: record.payload }], 'eterm');
      if (backend.verifyAnswer(record, answer) !== null) mismatches++;
    }
  }
  assert.equal(mismatches, 1, 'the one wrong sender is a mismatch, the right ones are not');

  // With --fill-nick-copies the nick copies are the walk's too: scanned, and '' is right for them.
  const filling = await openBackend(keyspace, { fillNickCopies: true });
  const withNicks = await scanAll([filling, await openBackend(keyspace, { fillNickCopies: true })], 5);
  assert.equal(withNicks.length, messages.length * 2);
  const nick = withNicks.find((r) => r.key.withNick !== '' && r.written);
  assert.ok(nick !== undefined && nick.stored === '');
  const [nickAnswer] = inProcessExtract([{ key: '0', payload: nick.payload }], 'eterm');
  assert.equal(filling.verifyAnswer(nick, nickAnswer), null);
});

test("the progress line does not pass the walked count off as the total: Cassandra's estimate is unknown, and the line says so", async () => {
  const keyspace = 'ks_progress';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(60, 10);
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  const snapshots: ProgressSnapshot[] = [];
  const progress = { update: (s: ProgressSnapshot) => snapshots.push(s), finish: (s: ProgressSnapshot) => snapshots.push(s) };
  const summary = await migrate(backend, { progress }).run;
  assert.equal(summary.records, messages.length);
  assert.ok(snapshots.length > 1);
  for (const snapshot of snapshots) {
    assert.equal(snapshot.estimate, 0, 'counting rows is a full scan in Cassandra: no estimate');
    const line = describeProgress(snapshot, false);
    assert.match(line, /records \(total unknown\)/);
    assert.match(line, /ETA unknown/);
    assert.doesNotMatch(line, / \/ ~|%/);
  }
});

test('large payloads: the driver pages the backend asks the node for stay within --max-batch-bytes (sized by the rows seen), and every row is written', async () => {
  const keyspace = 'ks_large';
  await createMongooseIm33Keyspace(client, keyspace);
  const body = 'z'.repeat(200_000);
  const messages = simpleArchive(16, 3).map((m, i) => ({ ...m, payload: payloadFrom(`user${i % 7}@Example.com/r`, body) }));
  const largest = Math.max(...messages.map((m) => m.payload.length));
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  const own = (backend as unknown as { client: cassandra.Client }).client;
  const asked: number[] = [];
  const execute = own.execute.bind(own) as (...args: unknown[]) => Promise<unknown>;
  // Watch what the backend asks for; the real node still answers.
  (own as unknown as { execute: unknown }).execute = (query: string, params?: unknown, options?: { fetchSize?: number }) => {
    if (/\bmessage\b/.test(query) && /FROM ks_large\.mam_muc_message/.test(query)) asked.push(options?.fetchSize ?? 5000);
    return execute(query, params, options);
  };
  const maxBatchBytes = 500_000;
  const summary = await migrate(backend, { batchSize: 40, concurrency: 4, maxBatchBytes }).run;
  assert.equal(summary.written, messages.length);
  await assertEveryRow(keyspace, messages);
  assert.ok(asked.length > 0);
  for (const fetchSize of asked) {
    assert.ok(
      fetchSize * largest <= maxBatchBytes + largest,
      `asked for pages of ${fetchSize} rows of up to ${largest} bytes under a ${maxBatchBytes}-byte bound (all: ${asked.join(', ')})`,
    );
  }
});

test('verify cassandra --complete (CLI) finds the row a walk passed over, and only it: exit 3, one line naming it; reported rows are accounted for', async (t) => {
  const keyspace = 'ks_verify_complete';
  await createMongooseIm33Keyspace(client, keyspace);
  const undecodable: ArchivedMessage = {
    roomJid: 'room0@muc.example.com',
    nick: 'nick0',
    id: '-42',
    payload: Buffer.from([131, 1, 2, 3]),
    expected: { reason: 'malformed' },
  };
  const messages = [...simpleArchive(80, 12), undecodable];
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  // A page reader that drops one record: neither written nor reported by the walk.
  const dropped = messages[17];
  const readPage = backend.readPage.bind(backend);
  backend.readPage = async (partition, after, limits) => {
    const page = await readPage(partition, after, limits);
    return { ...page, records: page.records.filter((r) => !(r.key.roomJid === dropped.roomJid && r.key.id === dropped.id)) };
  };
  const { run, report } = migrate(backend);
  await run;
  assert.equal(report.rows.length, 1, 'the undecodable row is reported');
  assert.equal(await nullRows(keyspace), 2);

  const dir = mkdtempSync(join(tmpdir(), 'mim-cassandra-verify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'password'), `${SUPERUSER.password}\n`);
  const reportFile = join(dir, 'report.jsonl');
  writeFileSync(reportFile, report.rows.map((r) => reportLine(r)).join(''));
  const result = await runCli(
    t,
    [
      'verify',
      'cassandra',
      '--contact-points',
      node.contactPoint,
      '--keyspace',
      keyspace,
      '--consistency',
      'ONE',
      '--username',
      SUPERUSER.username,
      '--password-file',
      join(dir, 'password'),
      '--complete',
      '--report',
      reportFile,
    ],
    new Uint8Array(),
  );
  assert.equal(result.code, 3, result.stderr);
  const findings = result.stdout
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, string>);
  assert.deepEqual(
    findings.map((f) => ({ room_jid: f['room_jid'], with_nick: f['with_nick'], id: f['id'], class: f['class'] })),
    [{ room_jid: dropped.roomJid, with_nick: '', id: dropped.id, class: 'not_written_unreported' }],
  );
  assert.match(result.stderr, /1 not written and reported, 1 not written and not reported/);
});

test('a batch failing part-way (one statement timed out while others completed): written counts each row once', async () => {
  const keyspace = 'ks_part_way';
  await createMongooseIm33Keyspace(client, keyspace);
  // 400 rooms over 64 token ranges: a range holds several, so a batch is several statements,
  // and a range several batches.
  const messages = simpleArchive(800, 400);
  await loadMessages(client, keyspace, messages);
  const own = await connectAs(SUPERUSER);
  // The node's client, but the 12th update of the archive (an execute or a batch) times out once,
  // unsent, while the statements around it complete.
  let updates = 0;
  let failed = false;
  const isUpdate = (query: unknown): boolean => typeof query === 'string' && query.startsWith(`UPDATE ${keyspace}.mam_muc_message `);
  const faulty = new Proxy(own, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if ((name !== 'execute' && name !== 'batch') || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const first = name === 'execute' ? args[0] : (args[0] as { query: string }[])[0]?.query;
        if (isUpdate(first) && ++updates === 12) {
          failed = true;
          return Promise.reject(new cassandra.errors.OperationTimedOutError('injected: the node did not answer in time'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const backend = new CassandraBackend({ client: faulty, keyspace, consistency: cassandra.types.consistencies.localOne, fillNickCopies: false });
  opened.push(backend);
  const summary = await migrate(backend, { batchSize: 8 }).run;
  await own.shutdown();
  assert.ok(failed, 'the update timed out');
  assert.equal(summary.reachedEnd, true);
  assert.equal(summary.retries, 1);
  await assertEveryRow(keyspace, messages);
  // The rows of the failing batch that landed, and those of the batches after it in its range, are
  // passed over by the retry's reads: counted when they landed, once.
  assert.equal(summary.written, messages.length);
});

/** `migrate cassandra` arguments as the superuser, small batches, several ranges read at once. */
function cliWalk(dir: string, keyspace: string, report: string) {
  writeFileSync(join(dir, 'password'), `${SUPERUSER.password}\n`);
  const args = ['cassandra', '--contact-points', node.contactPoint, '--keyspace', keyspace, '--username', SUPERUSER.username];
  args.push('--password-file', join(dir, 'password'), '--consistency', 'ONE', '--apply-schema', '--batch-size', '20', '--concurrency', '4');
  return { args, report: join(dir, report) };
}

test('migrate --limit N run again and again, N below what the ranges read at once hold: each run walks N more, to the end', async (t) => {
  const keyspace = 'ks_cli_limit';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(300, 60);
  await loadMessages(client, keyspace, messages);
  const dir = mkdtempSync(join(tmpdir(), 'mim-cassandra-limit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await limitRunsReachTheEnd(cliWalk(dir, keyspace, 'report.jsonl'), 30, messages.length);
  await assertEveryRow(keyspace, messages);
});

test("--dry-run and --dry-run --reset after an interrupted run: the real run's report, checkpoints and rows stay as they were", async (t) => {
  const keyspace = 'ks_cli_dry_run';
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = simpleArchive(300, 60).map((m, i) =>
    i % 5 === 0 ? { ...m, payload: Buffer.from([131, 1, 2, 3]), expected: { reason: 'malformed' as const } } : m,
  );
  await loadMessages(client, keyspace, messages);
  const dir = mkdtempSync(join(tmpdir(), 'mim-cassandra-dry-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const snapshot = async () => {
    const rows = [...(await readAllRows(client, keyspace)).entries()].map(([key, row]) => `${key} ${row.fromJid}`).sort();
    const saved = await client.execute(`SELECT * FROM ${keyspace}.mim_sender_jid_checkpoint`);
    return { rows, checkpoints: saved.rows.map((r) => JSON.stringify(Object.values(r).map(String))).sort() };
  };
  const walk = cliWalk(dir, keyspace, 'report.jsonl');
  await dryRunsLeaveTheRealRun(walk, 100, snapshot);
  await assertEveryRow(keyspace, messages);
  const lines = readFileSync(walk.report, 'utf8').trim().split('\n');
  assert.equal(lines.length, messages.filter((m) => 'reason' in m.expected).length, 'each undecodable message reported once');
});
