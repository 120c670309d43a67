/**
 * Peak memory of a real `migrate` process (defaults: --batch-size 2000, --max-batch-bytes 32 MiB)
 * over rows of valid 1 MiB payloads on a real PostgreSQL: pages stop at the byte bound, so the
 * peak stays bounded however many such rows a page of 2,000 could hold. Before the bound, one
 * page read every row at once (12,000 such rows peaked at 21 GB).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mucMessage, termToBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import { DEFAULT_DECODE_LIMITS } from '../../services/decode/limits.js';
import { erlangOracle } from '../support/erlang-payloads.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { ROOMS } from './dataset.js';
import { pairKey, type DatabaseFixture, type TestDatabase } from './fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';
import { expectedPair } from './random-archive.js';

const ROWS = 600;
/**
 * Measured on a 2-core machine: 403 MiB with the byte bound, 1,205 MiB without (one page of all
 * 600 rows); the peak no longer grows with the rows a page of 2,000 could hold. The bound leaves
 * room for the decoder pool and V8's slack.
 */
const PEAK_RSS_BOUND = 700 * 1024 * 1024;
const PROBE = fileURLToPath(new URL('../support/peak-rss-probe.js', import.meta.url));

let fixture: DatabaseFixture;
let db: TestDatabase;
let dir: string;
before(async () => {
  fixture = await startPostgresFixture();
  db = await fixture.freshDatabase();
  dir = mkdtempSync(join(tmpdir(), 'mim-page-memory-'));
});
after(async () => {
  await db?.close().catch(() => {});
  await fixture?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test(`${ROWS} rows of 1 MiB payloads, default batch size: peak RSS of the migrate process under ${PEAK_RSS_BOUND / 2 ** 20} MiB`, async () => {
  // Just under the decoder's payload limit: every row is valid and must be written.
  const payload = termToBinary(xmlTerm(mucMessage({ jid: 'Big@Example.com/r', body: 'z'.repeat(DEFAULT_DECODE_LIMITS.maxPayloadBytes - 400) })));
  assert.ok(payload.length <= DEFAULT_DECODE_LIMITS.maxPayloadBytes && payload.length > 0.99 * 2 ** 20, `payload of ${payload.length} bytes`);
  const [answer] = erlangOracle([payload]);
  assert.ok('jid' in answer, 'Erlang reads a sender from the payload');
  const ids = await db.insertUsers(ROOMS);
  const roomId = ids.get(pairKey(ROOMS[0]))!;
  // One row sent, the others copied by the server (a client-side array of 600 MiB would not fit a string).
  await db.insertMessages([{ roomId, id: '399582233150625537', payload }]);
  await db.execute(
    `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
       SELECT room_id, id + g * 256, nick_name, message, search_body FROM mam_muc_message, generate_series(1, ${ROWS - 1}) AS g`,
  );

  const peakFile = join(dir, 'peak');
  process.env.MIM_PEAK_RSS_FILE = peakFile;
  const result = await startMigrateProcess(['postgres', '--url', db.url, '--apply-schema', '--report', join(dir, 'report.jsonl')], ['--import', PROBE]).done;
  delete process.env.MIM_PEAK_RSS_FILE;
  assert.equal(result.status, 0, result.stderr);
  const peak = Number(readFileSync(peakFile, 'utf8'));
  console.log(`# peak RSS of the migrate process: ${(peak / 2 ** 20).toFixed(0)} MiB for ${ROWS} rows of ${payload.length} bytes`);

  const users = new Map((await db.users()).map((u) => [u.id, pairKey(u)]));
  const senders = [...(await db.senderIds()).values()].map((id) => (id === null ? null : users.get(id)));
  assert.deepEqual(new Set(senders), new Set([expectedPair(answer.jid)]), 'every row got its sender');
  assert.ok(peak < PEAK_RSS_BOUND, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB over the bound of ${PEAK_RSS_BOUND / 2 ** 20} MiB`);
});
