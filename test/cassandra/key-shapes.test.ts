/**
 * Key shapes no one picked: fast-check draws small archives whose `room_jid`s and nicks hold
 * Unicode, `/`, quotes and empty strings, whose ids span the whole bigint range (-2^63 .. 2^63-1,
 * every magnitude), with partitions of one row and of many; the real migration runs on them
 * through the real backend against a real Cassandra 5.0 with pages of a few rows, and every row
 * must end written right or reported. Seed printed; replay with MIM_CASSANDRA_KEYS_SEED.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import cassandra from 'cassandra-driver';
import fc from 'fast-check';
import { CassandraBackend } from '../../clients/backends/cassandra/cassandra-backend.js';
import { connectCassandra } from '../../clients/backends/cassandra/connect.js';
import type { CassandraRowKey } from '../../clients/backends/cassandra/keys.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { mucMessage, termToBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import { endProcessIfHeldOpen, startCassandra, type CassandraNode } from '../support/cassandra.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { createMongooseIm33Keyspace, expectedRows, loadMessages, readAllRows, rowKey } from './archive.js';
import type { ArchivedMessage } from './dataset.js';

const SEED = fuzzSeed('MIM_CASSANDRA_KEYS_SEED', 'cassandra key shapes');
const NUM_RUNS = 20;
const KEYSPACE = 'ks_key_shapes';

let node: CassandraNode;
let client: cassandra.Client;

before(async () => {
  node = await startCassandra();
  client = await connectCassandra({ contactPoints: [node.contactPoint], localDataCenter: 'datacenter1' });
  await createMongooseIm33Keyspace(client, KEYSPACE);
  await client.execute(`ALTER TABLE ${KEYSPACE}.mam_muc_message ADD from_jid varchar`);
  await client.execute(`CREATE INDEX ON ${KEYSPACE}.mam_muc_message (from_jid)`);
});

after(async () => {
  await client?.shutdown().catch(() => {});
  await node?.stop();
  endProcessIfHeldOpen();
});

const MIN_ID = -(2n ** 63n);
const MAX_ID = 2n ** 63n - 1n;

/** Names with what breaks naive code: empty, `/`, quotes, NUL, RTL marks, astral characters. */
const oddName = fc.oneof(
  fc.constantFrom('', '/', "'", '"', "o'brien", 'a/b/c', '\u0000', '\u200f', 'room@muc.example.com', 'pokój@muc/x'),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('/', "'", '"', '\\', ' ', '%', 'é', '😀', 'a'), maxLength: 6 }),
);

/** Ids of every magnitude: the ends, around zero, each power of two's neighbourhood, anywhere. */
const anyId = fc.oneof(
  fc.constantFrom(MIN_ID, MIN_ID + 1n, -1n, 0n, 1n, MAX_ID - 1n, MAX_ID),
  fc.integer({ min: 0, max: 62 }).chain((bits) => fc.bigInt({ min: -(2n ** BigInt(bits)), max: 2n ** BigInt(bits) })),
  fc.bigInt({ min: MIN_ID, max: MAX_ID }),
);

const SENDERS = [
  { jid: 'Alice@Example.COM/Phone', bare: 'alice@example.com' },
  { jid: 'żółw@łąka.pl/dom', bare: 'żółw@łąka.pl' },
  { jid: "o'neil/x@example.com/r", bare: "o'neil/x@example.com" },
];
const payloads = SENDERS.map((s) => Buffer.from(termToBinary(xmlTerm(mucMessage({ jid: s.jid })))));
const UNDECODABLE = Buffer.from([131, 1, 2, 3]);

interface Drawn {
  readonly rooms: string[];
  readonly nicks: string[];
  readonly rows: { room: number; nick: number; id: bigint; sender: number }[];
  readonly batchSize: number;
  readonly concurrency: number;
  readonly fillNickCopies: boolean;
  /** The first run stops (as on Ctrl-C) after this many checkpoints; the second resumes from them. */
  readonly stopAfter: number;
}

const archive: fc.Arbitrary<Drawn> = fc
  .record({
    rooms: fc.uniqueArray(oddName, { minLength: 1, maxLength: 4 }),
    nicks: fc.uniqueArray(oddName, { minLength: 1, maxLength: 3 }),
    batchSize: fc.integer({ min: 1, max: 6 }),
    concurrency: fc.integer({ min: 1, max: 3 }),
    fillNickCopies: fc.boolean(),
    stopAfter: fc.integer({ min: 1, max: 12 }),
  })
  .chain((shape) =>
    fc
      .uniqueArray(
        // Room 0 is drawn more often: one partition of many rows beside partitions of one.
        fc.record({
          room: fc.oneof({ arbitrary: fc.constant(0), weight: 2 }, { arbitrary: fc.nat(shape.rooms.length - 1), weight: 1 }),
          nick: fc.nat(shape.nicks.length - 1),
          id: anyId,
          sender: fc.nat(SENDERS.length), // SENDERS.length: an undecodable payload
        }),
        { minLength: 1, maxLength: 60, size: 'max', selector: (r) => `${r.room}/${r.id}` },
      )
      .map((rows) => ({ ...shape, rows })),
  );

function messagesOf(drawn: Drawn): ArchivedMessage[] {
  return drawn.rows.map((r) => ({
    roomJid: drawn.rooms[r.room],
    nick: drawn.nicks[r.nick],
    id: r.id.toString(),
    payload: r.sender < SENDERS.length ? payloads[r.sender] : UNDECODABLE,
    expected: r.sender < SENDERS.length ? { fromJid: SENDERS[r.sender].bare } : { reason: 'malformed' as const },
  }));
}

test('any room_jid, with_nick and id, partitions of one row and of many, small pages: every row written right or reported', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(archive, async (drawn) => {
      runs++;
      await client.execute(`TRUNCATE ${KEYSPACE}.mam_muc_message`);
      const messages = messagesOf(drawn);
      await loadMessages(client, KEYSPACE, messages);
      const report = new MemoryReport<CassandraRowKey>();
      // A run stopped after some checkpoints (inside a partition, often), then the run that resumes.
      for (const stopAfter of [drawn.stopAfter, undefined]) {
        const backend = new CassandraBackend({
          client: await connectCassandra({ contactPoints: [node.contactPoint], localDataCenter: 'datacenter1' }),
          keyspace: KEYSPACE,
          consistency: cassandra.types.consistencies.one,
          fillNickCopies: drawn.fillNickCopies,
        });
        const controller = new AbortController();
        if (stopAfter !== undefined) {
          let saves = 0;
          const save = backend.saveCheckpoint.bind(backend);
          backend.saveCheckpoint = async (partition, cursor) => {
            await save(partition, cursor);
            if (++saves >= stopAfter) controller.abort();
          };
        }
        try {
          const summary = await runMigration({
            backend,
            openStream: openInProcessStream,
            report,
            batchSize: drawn.batchSize,
            concurrency: drawn.concurrency,
            reset: stopAfter !== undefined,
            signal: controller.signal,
            maxRetries: 3,
            backoff: { baseMs: 100, maxMs: 500 },
          });
          if (stopAfter === undefined) assert.equal(summary.reachedEnd, true);
        } finally {
          await backend.close();
        }
      }
      const stored = await readAllRows(client, KEYSPACE);
      const expected = expectedRows(messages, drawn.fillNickCopies);
      // (An empty nick makes both copies one row, MongooseIM's own edge: expectedRows keeps the '' copy's.)
      // Over both runs a record may be reported twice (the stopped run's last batch is read again), never with two reasons.
      const reported = new Map(report.rows.map((r) => [rowKey(r.fields['room_jid'], r.fields['with_nick'], r.fields['id']), r.reason]));
      assert.equal(stored.size, expected.size, 'row count');
      for (const [key, want] of expected) {
        const got = stored.get(key)?.fromJid ?? null;
        if (got === want) continue;
        // Not written: only where the walk reported it (the '' copy of an undecodable payload).
        assert.equal(got, null, `row ${JSON.stringify(key)} holds ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
        assert.ok(reported.has(key), `row ${JSON.stringify(key)} neither written (${JSON.stringify(want)}) nor reported`);
      }
      for (const m of messages) {
        if ('reason' in m.expected) assert.equal(reported.get(rowKey(m.roomJid, '', m.id)), 'malformed', `undecodable ${m.roomJid}/${m.id} reported`);
      }
    }),
    { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
  );
  assert.equal(runs >= NUM_RUNS, true);
});
