/**
 * Every flag of `migrate` is checked before anything is opened: a refused flag is bad usage
 * (exit 2), and `--apply-schema` has run no statement by then. The decoder's payload limit as a
 * flag of `migrate`. Against a real PostgreSQL, whose
 * schema is looked at after each refusal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCliBounded } from '../support/bounded-cli.js';
import { buildDataset, PREEXISTING_USERS, ROOMS } from './dataset.js';
import { pairKey, type DatabaseFixture, type TestDatabase } from './fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

const CHILD_TIMEOUT_MS = 60_000;

let fixture: DatabaseFixture;
let db: TestDatabase;
let dir: string;

before(async () => {
  fixture = await startPostgresFixture();
  db = await fixture.freshDatabase();
  dir = mkdtempSync(join(tmpdir(), 'mim-cli-flags-'));
});
after(async () => {
  await db?.close();
  await fixture?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('flags over the pipeline limits with --apply-schema: exit 2, no schema statement run', { timeout: 300_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [['--shard', '0/65'], /--shard 0\/65: at most 64 shards/],
    [['--shard', '64/65'], /at most 64 shards/],
    [['--batch-size', '20000'], /--batch-size must be an integer from 1 to 10000, got 20000/],
    [['--concurrency', '65'], /--concurrency must be an integer from 1 to 64, got 65/],
  ];
  for (const [flags, message] of cases) {
    const run = await runCliBounded(
      ['migrate', 'postgres', '--url', db.url, '--apply-schema', '--report', join(dir, 'report.jsonl'), ...flags],
      CHILD_TIMEOUT_MS,
    );
    assert.equal(run.status, 2, `${flags.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /schema: ran/);
    assert.equal(await db.columnExists('mam_muc_message', 'sender_id'), false, `${flags.join(' ')}: the schema is unchanged`);
  }
  // The same command within the limits does apply the schema: the refusals above were the flags'.
  const fine = await runCliBounded(
    ['migrate', 'postgres', '--url', db.url, '--apply-schema', '--report', join(dir, 'report.jsonl'), '--shard', '0/64', '--concurrency', '64'],
    CHILD_TIMEOUT_MS,
  );
  assert.equal(fine.status, 0, fine.stderr);
  assert.equal(await db.columnExists('mam_muc_message', 'sender_id'), true);
});

test('a backend with fewer partitions than the pipeline limit refuses more shards before connecting', async () => {
  // Nothing listens on port 1: reaching the store would fail with exit 1.
  const es = await runCliBounded(
    ['migrate', 'elasticsearch', '--url', 'http://127.0.0.1:1', '--shard', '0/17', '--apply-schema', '--report', join(dir, 'es.jsonl')],
    CHILD_TIMEOUT_MS,
  );
  assert.equal(es.status, 2, es.stderr);
  assert.match(es.stderr, /--shard 0\/17: elasticsearch is walked in 16 partitions, so at most 16 shards/);
  const cassandra = await runCliBounded(
    ['migrate', 'cassandra', '--contact-points', '127.0.0.1:1', '--shard', '3/65', '--report', join(dir, 'c.jsonl')],
    CHILD_TIMEOUT_MS,
  );
  assert.equal(cassandra.status, 2, cassandra.stderr);
  assert.match(cassandra.stderr, /at most 64 shards/);
});

test(
  '--max-payload-bytes: decoding in this process reports a larger payload payload_too_large; refused with --sidecar or when not a positive number',
  { timeout: 300_000 },
  async () => {
    const fresh = await fixture.freshDatabase();
    try {
      const ids = await fresh.insertUsers([...ROOMS, ...PREEXISTING_USERS]);
      const roomIds = ROOMS.map((r) => ids.get(pairKey(r))!);
      const rows = buildDataset(1).map((r) => ({ roomId: roomIds[r.roomIndex], id: r.id, payload: r.payload }));
      await fresh.insertMessages(rows);
      const LIMIT = 300;
      const over = rows
        .filter((r) => r.payload.length > LIMIT)
        .map((r) => `${r.roomId}:${r.id}`)
        .sort();
      assert.ok(over.length > 0 && over.length < rows.length, 'the dataset has payloads on both sides of the limit');
      const report = join(dir, 'payload-limit.jsonl');
      for (const [flags, message] of [
        [['--max-payload-bytes', '0'], /--max-payload-bytes needs a positive whole number/],
        [['--max-payload-bytes', '300', '--sidecar', '127.0.0.1:1'], /--max-payload-bytes sets decoding in this process: with --sidecar/],
      ] as [string[], RegExp][]) {
        const refused = await runCliBounded(['migrate', 'postgres', '--url', fresh.url, '--apply-schema', '--report', report, ...flags], CHILD_TIMEOUT_MS);
        assert.equal(refused.status, 2, refused.stderr);
        assert.match(refused.stderr, message);
      }
      const run = await runCliBounded(
        ['migrate', 'postgres', '--url', fresh.url, '--apply-schema', '--report', report, '--max-payload-bytes', String(LIMIT)],
        CHILD_TIMEOUT_MS,
      );
      assert.equal(run.status, 0, run.stderr);
      const lines = readFileSync(report, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { room_id: string; id: string; reason: string; detail: string });
      const tooLarge = lines.filter((l) => l.reason === 'payload_too_large');
      assert.deepEqual(tooLarge.map((l) => `${l.room_id}:${l.id}`).sort(), over);
      assert.match(tooLarge[0].detail, new RegExp(`over the limit of ${LIMIT}`));
    } finally {
      await fresh.close();
    }
  },
);
