/** Realistic messages made by Erlang: eterm, compressed eterm (and xml through 'auto') answer as Erlang does. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractSenderJid } from '../../services/decode/index.js';
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import { asReference, describe } from './answer-match.js';

const SEED = Number(process.env.DECODE_TEST_SEED ?? 20260611);
const records = erlangRandomMessages(2000, SEED);

test(`2000 random messages (seed ${SEED}) in three encodings answer as Erlang does`, () => {
  assert.equal(records.length, 6000);
  let mismatches = 0;
  const first: string[] = [];
  for (const r of records) {
    const answer = extractSenderJid(r.payload, r.format === 'eterm' ? 'eterm' : 'auto');
    const ours = asReference(answer);
    if (JSON.stringify(ours) !== JSON.stringify(r.expected)) {
      mismatches++;
      if (first.length < 5) first.push(`${r.name}: expected ${JSON.stringify(r.expected)}, got ${describe(answer)}`);
    }
  }
  assert.equal(mismatches, 0, first.join('\n'));
  assert.ok(
    records.some((r) => 'code' in r.expected && r.expected.code === '-2'),
    'some one-to-one chat messages',
  );
  assert.ok(
    records.some((r) => r.format === 'eterm' && r.payload[1] === 80),
    'some really compressed terms',
  );
});
