/**
 * The CLI on a 100,000-message Cassandra archive (200,000 rows), against a real Cassandra 5.0:
 * an uninterrupted run in one keyspace; in a second keyspace with the same rows, runs killed
 * with SIGKILL at least five times after observed progress, then re-run until done. Every row of
 * both copies must end as in the uninterrupted run, and a run after the end changes nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type cassandra from 'cassandra-driver';
import { startCassandra, type CassandraNode } from '../support/cassandra.js';
import { CLI_LAUNCHER } from '../support/cli-process.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { connectTestClient, createMongooseIm33Keyspace, expectedRows, loadMessages, readAllRows, rowKey } from './archive.js';
import { buildRandomMessages, type ArchivedMessage } from './dataset.js';

const SEED = Number(process.env.MIM_TEST_SEED ?? 4_242);
const MESSAGES = 100_000;
const KILLS = 5;
console.log(`cassandra kill -9 suite: seed ${SEED} (MIM_TEST_SEED to repeat), ${MESSAGES} messages`);

const suiteStart = performance.now();
function step(what: string): void {
  console.log(`[${((performance.now() - suiteStart) / 1000).toFixed(1)} s] ${what}`);
}

let node: CassandraNode;
let client: cassandra.Client;
let messages: ArchivedMessage[];
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mim-cassandra-kill-'));
  node = await startCassandra();
  client = await connectTestClient(node.contactPoint);
  step('node up');
  messages = buildRandomMessages(MESSAGES, SEED, 300, seededRandom(SEED));
  step('erlang payloads made');
  for (const keyspace of ['ks_whole', 'ks_killed']) {
    await createMongooseIm33Keyspace(client, keyspace);
    await loadMessages(client, keyspace, messages);
    step(`${keyspace}: loaded ${MESSAGES} messages`);
  }
});

after(async () => {
  await client?.shutdown().catch(() => {});
  await node?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function migrateArgs(keyspace: string, extra: string[] = []): string[] {
  return [
    'cassandra',
    '--contact-points',
    node.contactPoint,
    '--keyspace',
    keyspace,
    '--batch-size',
    '500',
    '--concurrency',
    '4',
    '--progress-interval',
    '1',
    '--report',
    join(dir, `${keyspace}.jsonl`),
    ...extra,
  ];
}

/** Checkpoint rows as text: changes whenever any range advanced. */
async function checkpointState(keyspace: string): Promise<string> {
  try {
    const result = await client.execute(`SELECT walk, last_token, id FROM ${keyspace}.mim_sender_jid_checkpoint`);
    return result.rows
      .map((r) => `${r['walk']}:${r['last_token']}:${r['id']}`)
      .sort()
      .join('\n');
  } catch {
    return ''; // no table yet
  }
}

function reportedKeys(keyspace: string): string[] {
  const lines = readFileSync(join(dir, `${keyspace}.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  return lines.map((l) => {
    const row = JSON.parse(l) as Record<string, string>;
    return rowKey(row['room_jid'], row['with_nick'], row['id']);
  });
}

test('without --apply-schema the CLI refuses a 3.3 keyspace and prints the statements', async () => {
  const run = startMigrateProcess(migrateArgs('ks_killed'));
  const { status, stderr } = await run.done;
  assert.equal(status, 4, 'the schema step not done has its own exit status');
  assert.match(stderr, /ALTER TABLE ks_killed\.mam_muc_message ADD from_jid varchar/);
  assert.match(stderr, /--apply-schema/);
});

test('kill -9 five times during a 100,000-message run, re-run until done: every row as in an uninterrupted run', async () => {
  const whole = await startMigrateProcess(migrateArgs('ks_whole', ['--apply-schema'])).done;
  assert.equal(whole.status, 0, whole.stderr);
  step('uninterrupted run done');
  const expectedFailures = new Set(messages.filter((m) => 'reason' in m.expected).map((m) => rowKey(m.roomJid, '', m.id)));
  assert.deepEqual(new Set(reportedKeys('ks_whole')), expectedFailures, 'the uninterrupted run reports exactly the failures');

  const rand = seededRandom(SEED + 7);
  let kills = 0;
  let runs = 0;
  // Bounded: five killed runs, then at most five more to finish.
  for (; runs < KILLS + 5; runs++) {
    const before = await checkpointState('ks_killed');
    const run = startMigrateProcess(migrateArgs('ks_killed', ['--apply-schema', '--max-rate', '6000']));
    let exited = false;
    void run.done.then(() => (exited = true));
    if (kills < KILLS) {
      let progressed = false;
      for (let i = 0; i < 600 && !progressed && !exited; i++) {
        await new Promise((r) => setTimeout(r, 100));
        progressed = (await checkpointState('ks_killed')) !== before;
      }
      assert.ok(progressed, `run ${runs + 1}: no checkpoint advanced before the run ended (status ${exited})`);
      const delay = Math.floor(rand() * 1500);
      await new Promise((r) => setTimeout(r, delay));
      if (!exited) {
        run.kill9();
        const { status } = await run.done;
        assert.equal(status, 'SIGKILL');
        kills++;
        step(`run ${runs + 1}: killed ${delay} ms after observed progress`);
        continue;
      }
    }
    const { status, stderr } = await run.done;
    assert.equal(status, 0, stderr);
    step(`run ${runs + 1}: ended by itself`);
    break;
  }
  assert.equal(kills, KILLS, 'every planned kill happened after progress and before the end');

  const whole_ = await readAllRows(client, 'ks_whole');
  const killed = await readAllRows(client, 'ks_killed');
  assert.equal(killed.size, 2 * MESSAGES);
  assert.equal(whole_.size, killed.size);
  let different = 0;
  for (const [key, row] of whole_) if (killed.get(key)?.fromJid !== row.fromJid) different++;
  assert.equal(different, 0, 'rows that differ from the uninterrupted run');
  let wrong = 0;
  for (const [key, want] of expectedRows(messages, false)) if (killed.get(key)?.fromJid !== want) wrong++;
  assert.equal(wrong, 0, 'rows that differ from what Erlang says');
  for (const key of reportedKeys('ks_killed')) assert.ok(expectedFailures.has(key), `reported but decodable: ${key}`);

  // A run after the end: nothing decoded, nothing changed.
  const checkpointsAtEnd = await checkpointState('ks_killed');
  const end = await startMigrateProcess(migrateArgs('ks_killed')).done;
  assert.equal(end.status, 0, end.stderr);
  assert.equal(await checkpointState('ks_killed'), checkpointsAtEnd, 'no checkpoint moved');
  const afterEnd = await readAllRows(client, 'ks_killed');
  for (const [key, row] of killed) assert.equal(afterEnd.get(key)?.fromJid, row.fromJid);

  // verify through the CLI: a sample of the migrated rows re-decodes to what is stored.
  const verify = await promisify(execFile)(process.execPath, [
    CLI_LAUNCHER,
    'verify',
    'cassandra',
    '--contact-points',
    node.contactPoint,
    '--keyspace',
    'ks_killed',
    '--sample',
    '200',
  ]);
  assert.match(verify.stderr, /verify cassandra: \d+ records checked, \d+ match, 0 mismatches/);
  assert.equal(verify.stdout, '');
});
