/**
 * The summary's `written` counts each object the run wrote exactly once, whatever failed on the
 * way, on the double with scripted faults (no randomness):
 * - an update that Riak applied but whose answer was lost (connection reset), then refused with
 *   503 on every retry: its batch fails, and the object, written but never counted, must still be
 *   counted by the walk that follows;
 * - a batch that fails on its own while the batch before it still writes: the walk must not be
 *   retried until that earlier batch is done, or the retry passes over what it writes after all;
 * - a batch that fails after its undecodable objects were reported: the walk after the retry
 *   decodes them again but reports each once, and `failed` counts each once (it is what the
 *   report file gained).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RiakBackend } from '../../clients/backends/riak/riak-backend.js';
import { RiakHttp } from '../../clients/backends/riak/riak-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { RiakDouble } from '../support/riak-double.js';
import { logLines, startLoadedDouble } from './fixture.js';

const BUCKET = 'mam_2020_1';
const KEYS = [
  'alice@example.com/room@muc.example.com/1',
  'alice@example.com/room@muc.example.com/2',
  'bob@example.com/room@muc.example.com/3',
  'bob@example.com/room@muc.example.com/4',
];

const packet = (n: number): string =>
  `<message from='room@muc.example.com/nick${n}' to='bob@example.com' type='groupchat'><body>m${n}</body>` +
  `<x xmlns='http://jabber.org/protocol/muc#user'><item jid='sender${n}@example.com/res'/></x></message>`;

/**
 * The real backend with a retry policy of the test's own: the faults are scripted per attempt,
 * and `$bucket` pages list the keys in their sorted order, so the batches are known.
 */
function openRiak(double: RiakDouble, attempts: number): RiakBackend {
  return new RiakBackend({
    http: new RiakHttp({ nodes: [new URL(double.url)], maxSockets: 32, timeoutMs: 10_000 }),
    bucketType: 'mam_yz',
    listing: '2i',
    requestConcurrency: 4,
    retry: { attempts, backoff: { baseMs: 1, maxMs: 2 } },
    log: (line) => logLines.push(line),
  });
}

/** A room's JID where the sender's should be: a JID without a user, never written. */
const UNSTORABLE =
  `<message from='room@muc.example.com/nick' to='bob@example.com' type='groupchat'><body>m</body>` +
  `<x xmlns='http://jabber.org/protocol/muc#user'><item jid='muc.example.com'/></x></message>`;

async function migrate(backend: RiakBackend, batchSize: number, report = new MemoryReport()) {
  try {
    return await runMigration({
      backend,
      openStream: openInProcessStream,
      report,
      backoff: { baseMs: 5, maxMs: 10 },
      batchSize,
      concurrency: 2,
      log: (line) => logLines.push(line),
    });
  } finally {
    await backend.close();
  }
}

function assertAllWritten(double: RiakDouble): void {
  KEYS.forEach((key, n) => {
    const stored = double.getMap(BUCKET, key);
    assert.deepEqual({ t: stored?.mam_type, o: stored?.msg_owner_jid }, { t: 'muc', o: `sender${n}@example.com` }, key);
  });
}

describe('riak: the summary counts each written object once', () => {
  const doubles: RiakDouble[] = [];
  const start = async (): Promise<RiakDouble> => {
    const double = await startLoadedDouble(null, { seed: 1 });
    doubles.push(double);
    KEYS.forEach((key, n) => double.putMap(BUCKET, key, { packet: packet(n), msg_id: String(n + 1), source_jid: 'room@muc.example.com/x' }));
    return double;
  };
  after(async () => {
    await Promise.all(doubles.map((d) => d.stop()));
  });

  it('an update applied whose answer was lost, then 503 on every retry, is counted by the next walk', async () => {
    const double = await start();
    double.failNextUpdates(BUCKET, KEYS[1], ['lost-answer', '503', '503']);
    const summary = await migrate(openRiak(double, 3), 4);
    assert.equal(summary.reachedEnd, true);
    assert.equal(double.stats.lostAnswers, 1);
    assert.ok(summary.retries >= 1, 'the batch failed and the walk was retried');
    assertAllWritten(double);
    assert.equal(summary.written, KEYS.length);
  });

  it('a batch failing while the batch before it still writes: the retry waits for it, and counts what it wrote', async () => {
    const double = await start();
    // Batch A = keys 0 and 1, batch B = keys 2 and 3. A's update of key 1 is held; B's update of
    // key 2 is answered 503 (no retry): B fails while A still writes. A's held update is answered
    // 503 too, once a walk after B's failure updates key 1 again (what a retry started without
    // waiting for A does, having passed over key 0: written by A, not counted yet), or else after
    // a while (the pipeline waits for A: nothing else happens until A is done).
    let release = (): void => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const heldArrived = double.updateArrives(BUCKET, KEYS[1]);
    double.failNextUpdates(BUCKET, KEYS[1], [{ until: released, then: '503' }]);
    double.failNextUpdates(BUCKET, KEYS[2], ['503']);
    const run = migrate(openRiak(double, 1), 2);
    await heldArrived;
    const fallback = setTimeout(release, 2_000);
    void double.updateArrives(BUCKET, KEYS[1]).then(release);
    const summary = await run.finally(() => clearTimeout(fallback));
    release();
    assert.equal(summary.reachedEnd, true);
    assert.ok(summary.retries >= 1, 'the batches failed and the walk was retried');
    assertAllWritten(double);
    assert.equal(summary.written, KEYS.length);
  });

  it('objects reported by a batch that then fails are counted once in failed, as the report holds them once', async () => {
    const double = await start();
    // Key 0's packet names a room, not a user: reported. Key 1's update is answered 503 (no
    // retry): the batch fails after the report line was appended, and the walk is retried.
    double.putMap(BUCKET, KEYS[0], { packet: UNSTORABLE });
    double.failNextUpdates(BUCKET, KEYS[1], ['503']);
    const report = new MemoryReport();
    const summary = await migrate(openRiak(double, 1), 4, report);
    assert.equal(summary.reachedEnd, true);
    assert.ok(summary.retries >= 1, 'the batch failed and the walk was retried');
    assert.deepEqual(
      report.rows.map((r) => [r.fields.key, r.reason]),
      [[KEYS[0], 'jid_without_local_part']],
    );
    assert.equal(summary.reported, 1);
    assert.deepEqual(summary.reportedByReason, { jid_without_local_part: 1 });
    assert.equal(summary.written, KEYS.length - 1);
    assert.equal(double.getMap(BUCKET, KEYS[0])?.mam_type, undefined);
  });
});
