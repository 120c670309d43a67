/**
 * The acceptance suite on Cassandra 5.0: the Erlang-made archive in MongooseIM 3.3's keyspace (both
 * copies of every message), the real `migrate` command, with and without --fill-nick-copies, then
 * MongooseIM 3.4.0's own GDPR query (mod_mam_muc_cassandra_arch's prepared
 * `SELECT id, message FROM mam_muc_message WHERE from_jid = ?`, every page, sorted by id
 * afterwards) for every sender, checked against the generator.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { connectTestClient, createMongooseIm33Keyspace, loadMessages } from '../cassandra/archive.js';
import { endProcessIfHeldOpen, startCassandra, type CassandraNode } from '../support/cassandra.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { buildAcceptanceArchive, roomJid, type AcceptanceArchive } from './archive.js';
import { gdprProblems, reportProblems, type GdprRow } from './gdpr-check.js';

let node: CassandraNode;
let client: cassandra.Client;
let archive: AcceptanceArchive;
let dir: string;

before(async () => {
  archive = await buildAcceptanceArchive();
  node = await startCassandra();
  client = await connectTestClient(node.contactPoint);
  dir = mkdtempSync(join(tmpdir(), 'mim-acceptance-cassandra-'));
});
after(async () => {
  await client?.shutdown().catch(() => {});
  await node?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  endProcessIfHeldOpen();
});

/**
 * For each JID, MongooseIM 3.4.0's answer: the module's prepared query with the bare JID bound,
 * cqerl's page size (`batch_size` 20) and consistency ONE, every page, then sorted by id as
 * `lists:sort/1` sorts the `#{id, message}` rows.
 */
async function cassandraGdpr(keyspace: string, jids: readonly string[]): Promise<Map<string, GdprRow[]>> {
  const answers = new Map<string, GdprRow[]>();
  for (const jid of jids) {
    const rows: GdprRow[] = [];
    let pageState: string | undefined;
    do {
      const result = await client.execute(`SELECT id, message FROM ${keyspace}.mam_muc_message WHERE from_jid = ?`, [jid], {
        prepare: true,
        fetchSize: 20,
        consistency: cassandra.types.consistencies.one,
        pageState,
      });
      for (const r of result.rows) rows.push({ id: String(r['id']), message: r['message'] as Buffer });
      pageState = result.pageState ?? undefined;
    } while (pageState !== undefined);
    rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
    answers.set(jid, rows);
  }
  return answers;
}

async function seededKeyspace(keyspace: string): Promise<void> {
  await createMongooseIm33Keyspace(client, keyspace);
  await loadMessages(
    client,
    keyspace,
    archive.records.map((r) => ({ roomJid: roomJid(r.room), nick: r.nick, id: r.id, payload: r.eterm, expected: { reason: 'malformed' as const } })),
  );
}

async function migrate(keyspace: string, extra: string[] = []): Promise<string> {
  const report = join(dir, `${keyspace}.jsonl`);
  const args = [
    'cassandra',
    '--contact-points',
    node.contactPoint,
    '--keyspace',
    keyspace,
    '--apply-schema',
    '--batch-size',
    '32',
    '--report',
    report,
    ...extra,
  ];
  const result = await startMigrateProcess(args).done;
  assert.equal(result.status, 0, result.stderr);
  return report;
}

/** Report lines of the `''` copies (the only ones the backfill reads) as message ids. */
function readReport(path: string): { id: string; reason: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { with_nick: string; id: string; reason: string })
    .map((l) => {
      assert.equal(l.with_nick, '', "only the with_nick = '' copies are reported");
      return { id: l.id, reason: l.reason };
    });
}

const eterm = { format: 'eterm', ordered: true } as const;

describe('acceptance on Cassandra: MongooseIM 3.4.0 GDPR query', () => {
  for (const fill of [false, true]) {
    test(`after \`migrate\`${fill ? ' --fill-nick-copies' : ''}, every sender gets exactly their messages, each once`, async () => {
      const keyspace = fill ? 'ks_fill' : 'ks_plain';
      await seededKeyspace(keyspace);
      const report = await migrate(keyspace, fill ? ['--fill-nick-copies'] : []);
      const answers = await cassandraGdpr(keyspace, archive.asked);
      assert.deepEqual(gdprProblems(archive, answers, eterm), []);
      assert.deepEqual(reportProblems(archive, readReport(report)), []);
      for (const jid of archive.senders) assert.ok(answers.get(jid)!.length > 20, `${jid}: more than one page of cqerl's 20`);
      if (fill) {
        // What --fill-nick-copies wrote is the empty string, which nobody's export asks for.
        const blank = await cassandraGdpr(keyspace, ['']);
        assert.equal(blank.get('')!.length, archive.records.length, "every nick copy holds '' (also those of records nobody sent)");
      }
    });
  }

  test('after `migrate --fill-nick-copies` killed with SIGKILL and resumed, every sender still gets exactly their messages, each once', async () => {
    const keyspace = 'ks_killed';
    await seededKeyspace(keyspace);
    const report = join(dir, `${keyspace}.jsonl`);
    const args = [
      'cassandra',
      '--contact-points',
      node.contactPoint,
      '--keyspace',
      keyspace,
      '--apply-schema',
      '--batch-size',
      '16',
      '--report',
      report,
      '--fill-nick-copies',
    ];
    const findable = async (): Promise<number> => {
      try {
        return [...(await cassandraGdpr(keyspace, archive.senders)).values()].reduce((n, rows) => n + rows.length, 0);
      } catch {
        return 0; // no from_jid column or index yet
      }
    };
    // Slow enough to be caught mid-way; killed once some senders can be found.
    const run = startMigrateProcess([...args, '--max-rate', '150']);
    let ended = false;
    void run.done.then(() => (ended = true));
    while (!ended && (await findable()) === 0) await new Promise((r) => setTimeout(r, 25));
    run.kill9();
    const killed = await run.done;
    assert.equal(killed.status, 'SIGKILL', `the run ended before the kill: ${killed.stdout}`);
    const found = await findable();
    const toWrite = archive.records.filter((r) => r.sender !== null).length;
    assert.ok(found > 0 && found < toWrite, `killed mid-way (${found} of ${toWrite} findable)`);
    const resumed = await startMigrateProcess(args).done;
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.deepEqual(gdprProblems(archive, await cassandraGdpr(keyspace, archive.asked), eterm), []);
    assert.deepEqual(reportProblems(archive, readReport(report)), []);
  });

  test('the check fails on a single misattributed message or a nick copy that names its sender', async () => {
    const keyspace = 'ks_wrong';
    await seededKeyspace(keyspace);
    await migrate(keyspace);
    const bobs = archive.records.find((r) => r.sender === 'bob@example.com')!;
    const carols = archive.records.find((r) => r.sender === 'carol@example.com')!;
    const set = (r: typeof bobs, withNick: string, fromJid: string | null) =>
      client.execute(
        `UPDATE ${keyspace}.mam_muc_message SET from_jid = ? WHERE room_jid = ? AND with_nick = ? AND id = ?`,
        [fromJid, roomJid(r.room), withNick, BigInt(r.id)],
        { prepare: true },
      );
    await set(bobs, '', 'alice@example.com');
    // Carol's nick copy names her too: her export would list that message twice.
    await set(carols, carols.nick, 'carol@example.com');
    const count = (jid: string): number => archive.records.filter((r) => r.sender === jid).length;
    assert.deepEqual(
      gdprProblems(archive, await cassandraGdpr(keyspace, archive.asked), eterm).sort(),
      [
        `alice@example.com: got message ${bobs.id}, bob@example.com's`,
        `bob@example.com: 1 of its ${count('bob@example.com')} messages missing (${bobs.id})`,
        'carol@example.com: 1 messages returned twice',
      ].sort(),
    );
  });
});
