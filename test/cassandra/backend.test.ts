/**
 * The Cassandra backend through the pipeline, against a real Cassandra 5.0 node started here:
 * MongooseIM 3.3-shaped archives (both copies of each message, payloads made by Erlang, every
 * failure kind), every row of both copies checked after each run, with and without
 * --fill-nick-copies; the schema step; verify; two shards; a node restart in the middle of a run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type cassandra from 'cassandra-driver';
import definition from '../../clients/backends/cassandra/definition.js';
import type { CassandraBackend } from '../../clients/backends/cassandra/cassandra-backend.js';
import type { CassandraRowKey } from '../../clients/backends/cassandra/keys.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { SchemaNotReadyError, runMigration, type MigrationOptions } from '../../clients/pipeline/run-migration.js';
import { runVerify } from '../../clients/pipeline/run-verify.js';
import type { PlannedWrite, ShardSpec } from '../../clients/pipeline/types.js';
import type { TokenRange } from '../../clients/backends/cassandra/token-ranges.js';
import { startCassandra, type CassandraNode, endProcessIfHeldOpen } from '../support/cassandra.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { connectTestClient, createMongooseIm33Keyspace, expectedRows, loadMessages, readAllRows, rowKey } from './archive.js';
import { buildAlreadyMigrated, buildEdgeCaseMessages, buildRandomMessages, type ArchivedMessage } from './dataset.js';

const SEED = Number(process.env.MIM_TEST_SEED ?? 20_261_130);
console.log(`cassandra backend suite: seed ${SEED} (MIM_TEST_SEED to repeat)`);

const suiteStart = performance.now();
/** Where the suite's time goes (printed, never asserted). */
function step(what: string): void {
  console.log(`[${((performance.now() - suiteStart) / 1000).toFixed(1)} s] ${what}`);
}

let node: CassandraNode;
let client: cassandra.Client;
const opened: CassandraBackend[] = [];

before(async () => {
  node = await startCassandra();
  client = await connectTestClient(node.contactPoint);
  step('node up');
});

after(async () => {
  for (const backend of opened) await backend.close().catch(() => {});
  await client?.shutdown().catch(() => {});
  await node?.stop();
  endProcessIfHeldOpen();
});

async function openBackend(keyspace: string, extra: Record<string, string | boolean> = {}): Promise<CassandraBackend> {
  const backend = (await definition.open(
    { 'contact-points': node.contactPoint, keyspace, ...extra },
    { command: 'migrate', concurrency: 4, log: () => {} },
  )) as CassandraBackend;
  opened.push(backend);
  return backend;
}

function migrate(backend: CassandraBackend, options: Partial<MigrationOptions> = {}) {
  const report = new MemoryReport<CassandraRowKey>();
  const run = runMigration({
    backend,
    openStream: openInProcessStream,
    report,
    batchSize: 40,
    concurrency: 4,
    applySchema: true,
    backoff: { baseMs: 200, maxMs: 3000 },
    ...options,
  });
  return { report, run };
}

/** Compares every row of both copies with what a complete backfill must leave; returns the row count. */
async function assertEveryRow(keyspace: string, messages: readonly ArchivedMessage[], fillNickCopies: boolean): Promise<number> {
  const stored = await readAllRows(client, keyspace);
  const expected = expectedRows(messages, fillNickCopies);
  assert.equal(stored.size, expected.size, 'row count');
  let wrong = 0;
  const examples: string[] = [];
  for (const [key, want] of expected) {
    const row = stored.get(key);
    assert.ok(row !== undefined, `row missing: ${key}`);
    if (row.fromJid !== want) {
      wrong++;
      if (examples.length < 5) examples.push(`${key.replaceAll('\u0000', ' | ')}: from_jid ${JSON.stringify(row.fromJid)}, want ${JSON.stringify(want)}`);
    }
  }
  assert.equal(wrong, 0, `rows with a wrong from_jid, e.g.\n${examples.join('\n')}`);
  return stored.size;
}

function failures(messages: readonly ArchivedMessage[]): Map<string, string> {
  const reasons = new Map<string, string>();
  for (const m of messages) if (m.alreadyFrom === undefined && 'reason' in m.expected) reasons.set(rowKey(m.roomJid, '', m.id), m.expected.reason);
  return reasons;
}

test('schema: a 3.3 keyspace is refused with the guide statements; --apply-schema adds from_jid and its index, once', async () => {
  const keyspace = 'ks_schema';
  await createMongooseIm33Keyspace(client, keyspace);
  step('schema: keyspace created');
  const backend = await openBackend(keyspace);
  await assert.rejects(migrate(backend, { applySchema: false }).run, (error: unknown) => {
    assert.ok(error instanceof SchemaNotReadyError);
    assert.match(error.message, /ALTER TABLE ks_schema\.mam_muc_message ADD from_jid varchar/);
    assert.match(error.message, /CREATE INDEX IF NOT EXISTS mam_muc_message_from_jid_idx ON ks_schema\.mam_muc_message \(from_jid\)/);
    return true;
  });
  assert.equal((await backend.checkSchema()).ready, false);
  const ran = await backend.applySchema();
  assert.equal(ran.length, 2);
  assert.deepEqual(await backend.checkSchema(), { ready: true, missing: [], statements: [] });
  assert.deepEqual(await backend.applySchema(), [], 'a second apply runs nothing');

  const other = await openBackend('ks_no_such_keyspace');
  await assert.rejects(other.checkSchema(), /keyspace 'ks_no_such_keyspace' has no table mam_muc_message/);
});

test('migrate: every row of both copies, failures reported with room_jid, with_nick and id; a run after the end changes nothing; --fill-nick-copies then fills the nick copies', async () => {
  const keyspace = 'ks_main';
  const rand = seededRandom(SEED);
  await createMongooseIm33Keyspace(client, keyspace);
  const legacy = [...buildEdgeCaseMessages(5, rand), ...buildRandomMessages(800, SEED, 12, rand)];
  step('erlang payloads made');
  await loadMessages(client, keyspace, legacy);
  step(`loaded ${legacy.length} messages`);
  const backend = await openBackend(keyspace);
  await backend.applySchema();
  // MongooseIM 3.4 started meanwhile: its rows have from_jid on both copies and are not ours to touch.
  const newer = buildAlreadyMigrated(30, rand, 1_000_000);
  await loadMessages(client, keyspace, newer);
  const messages = [...legacy, ...newer];
  const expectedFailures = failures(messages);
  assert.ok(new Set(expectedFailures.values()).size >= 5, 'the data holds every failure kind');

  const first = migrate(backend);
  const summary = await first.run;
  step(`first run: ${summary.records} records`);
  assert.equal(summary.reachedEnd, true);
  assert.equal(summary.partitions, 64);
  await assertEveryRow(keyspace, messages, false);
  const reported = new Map(first.report.rows.map((r) => [rowKey(r.fields['room_jid'], r.fields['with_nick'], r.fields['id']), r.reason]));
  assert.equal(first.report.rows.length, reported.size, 'each record reported once');
  assert.deepEqual(reported, expectedFailures);
  assert.equal(summary.records, legacy.length, "only the '' copies without from_jid were decoded");
  assert.equal(summary.written, legacy.length - expectedFailures.size);

  const again = migrate(backend);
  const second = await again.run;
  assert.equal(second.records, 0, 'every range resumes at its end');
  assert.equal(again.report.rows.length, 0);
  await assertEveryRow(keyspace, messages, false);

  const reset = migrate(backend, { reset: true });
  const third = await reset.run;
  assert.equal(third.records, expectedFailures.size, 'from the start, only the rows still null are decoded');
  assert.equal(reset.report.rows.length, expectedFailures.size);
  await assertEveryRow(keyspace, messages, false);

  const filling = await openBackend(keyspace, { 'fill-nick-copies': true });
  const fill = migrate(filling);
  const fourth = await fill.run;
  step('fill run done');
  assert.equal(fourth.reachedEnd, true);
  // Nick copies get '' whatever their payload says; the '' copies that failed are reported again.
  assert.equal(fourth.written, legacy.length);
  await assertEveryRow(keyspace, messages, true);

  // verify: the sample matches; after someone writes a wrong sender, verify finds it.
  const checked = await runVerify({ backend, openStream: openInProcessStream, sample: 40 });
  assert.ok(checked.checked >= 10, `verify sampled ${checked.checked}`);
  assert.deepEqual(checked.mismatches, []);
  const tampered = new Set<string>();
  for (const m of legacy) {
    if ('fromJid' in m.expected && rand() < 0.3) {
      await client.execute(
        `UPDATE ${keyspace}.mam_muc_message SET from_jid = ? WHERE room_jid = ? AND with_nick = '' AND id = ?`,
        ['mallory@evil.example', m.roomJid, BigInt(m.id)],
        { prepare: true },
      );
      tampered.add(rowKey(m.roomJid, '', m.id));
    }
  }
  const verified = await runVerify({ backend, openStream: openInProcessStream, sample: 60 });
  const mismatched = new Set(verified.mismatches.map((v) => rowKey(v.fields['room_jid'], v.fields['with_nick'], v.fields['id'])));
  assert.ok(mismatched.size > 0, `verify found none of ${tampered.size} tampered rows in ${verified.checked} samples`);
  for (const key of mismatched) assert.ok(tampered.has(key), `a mismatch on a row nobody tampered: ${key}`);
  for (const v of verified.mismatches) assert.equal(v.kind, 'different_sender');
});

test('--shard 0/2 and 1/2, run together, cover every row exactly once', async () => {
  const keyspace = 'ks_shards';
  const rand = seededRandom(SEED + 1);
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = [...buildEdgeCaseMessages(3, rand), ...buildRandomMessages(1000, SEED + 1, 40, rand)];
  step('shards: payloads made');
  await loadMessages(client, keyspace, messages);
  step('shards: loaded');
  const written: string[][] = [[], []];
  const reported: string[][] = [[], []];
  const runs = [0, 1].map(async (index) => {
    const backend = await openBackend(keyspace);
    // Watch what the real backend writes (it still writes it).
    const writeBatch = backend.writeBatch.bind(backend);
    backend.writeBatch = (partition: TokenRange, writes: readonly PlannedWrite<CassandraRowKey, string>[]) => {
      for (const w of writes) written[index].push(rowKey(w.key.roomJid, w.key.withNick, w.key.id));
      return writeBatch(partition, writes);
    };
    const shard: ShardSpec = { index, count: 2 };
    const { run, report } = migrate(backend, { shard });
    const summary = await run;
    for (const r of report.rows) reported[index].push(rowKey(r.fields['room_jid'], r.fields['with_nick'], r.fields['id']));
    assert.equal(summary.partitions, 32);
    return summary;
  });
  await Promise.all(runs);
  const all = [...written[0], ...written[1]];
  assert.equal(new Set(all).size, all.length, 'no row written by both shards, nor twice');
  const allReported = [...reported[0], ...reported[1]];
  assert.equal(new Set(allReported).size, allReported.length, 'no row reported twice');
  const expectedFailures = failures(messages);
  assert.deepEqual(new Set(allReported), new Set(expectedFailures.keys()));
  assert.equal(all.length, messages.length - expectedFailures.size);
  assert.ok(written[0].length > 0 && written[1].length > 0, 'both shards had work');
  await assertEveryRow(keyspace, messages, false);
});

test('a Cassandra restart in the middle of a run is survived: the run retries and ends as a whole run would', async () => {
  const keyspace = 'ks_restart';
  const rand = seededRandom(SEED + 2);
  await createMongooseIm33Keyspace(client, keyspace);
  const messages = buildRandomMessages(2500, SEED + 2, 20, rand);
  await loadMessages(client, keyspace, messages);
  const backend = await openBackend(keyspace);
  // Slow enough that the restart lands in the middle.
  // Retries bounded in count (about 5 minutes of backoff): a restart takes 20 s to well over a minute on a loaded machine.
  const { run } = migrate(backend, { maxRate: 150, batchSize: 25, maxRetries: 70, backoff: { baseMs: 500, maxMs: 5000 } });
  let finished = false;
  void run.then(
    () => (finished = true),
    () => (finished = true),
  );
  // Restart once the walk has saved checkpoints (observed progress), bounded wait.
  let progressed = false;
  for (let i = 0; i < 200 && !progressed && !finished; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const saved = await client.execute(`SELECT walk FROM ${keyspace}.mim_sender_jid_checkpoint`).catch(() => ({ rows: [] }));
    progressed = saved.rows.length >= 2;
  }
  assert.ok(progressed && !finished, 'the run made progress and was still going when the node went down');
  step('restarting the node');
  await node.restart();
  step('node back');
  const summary = await run;
  assert.equal(summary.reachedEnd, true);
  assert.ok(summary.retries > 0, 'the run saw the node go away and retried');
  await client.shutdown();
  client = await connectTestClient(node.contactPoint);
  await assertEveryRow(keyspace, messages, false);
});
