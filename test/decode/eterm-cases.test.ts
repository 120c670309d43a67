/** Every named case the Erlang generator makes (semantics page rules 0-7, Unicode, compression) answers as Erlang does. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractSenderJid, isSuccess } from '../../services/decode/index.js';
import { erlangCases } from '../support/erlang-payloads.js';
import { useReusableInflater } from '../../services/decode/eterm-inflate.js';
import { asReference, describe } from './answer-match.js';

const cases = erlangCases().filter((c) => c.format === 'eterm');

test('the generator made the cases', () => {
  assert.ok(cases.length > 150, `only ${cases.length} cases`);
  // The suite must see all three answers, or it proves little.
  const kinds = new Set(cases.map((c) => ('jid' in c.expected ? 'jid' : c.expected.code)));
  assert.deepEqual([...kinds].sort(), ['-1', '-2', 'jid']);
});

for (const c of cases) {
  test(`eterm case: ${c.name}`, () => {
    for (const format of ['eterm', 'auto'] as const) {
      const answer = extractSenderJid(c.payload, format);
      assert.deepEqual(asReference(answer), c.expected, `${format}: we answer ${describe(answer)}`);
      if (!isSuccess(answer)) assert.ok(answer.detail.length > 0);
    }
  });
}

test('a compressed term declaring 4 GiB is refused as too large before inflating', () => {
  const c = cases.find((x) => x.name === 'declares 4 GiB');
  assert.ok(c);
  const answer = extractSenderJid(c.payload, 'eterm');
  assert.ok(!isSuccess(answer));
  assert.equal(answer.reason, 'payload_too_large');
});

test('the reference example answers the reference JID', () => {
  const c = cases.find((x) => x.name === 'reference example (minor 1)');
  assert.ok(c);
  assert.deepEqual(c.expected, { jid: 'gżegżółka@brzęczyszczykiewicz.pl' });
  assert.deepEqual(asReference(extractSenderJid(c.payload, 'eterm')), c.expected);
});

test('the per-payload zlib.inflateSync fallback answers every case as the reused handle does', () => {
  try {
    useReusableInflater(false);
    for (const c of cases) assert.deepEqual(asReference(extractSenderJid(c.payload, 'eterm')), c.expected, c.name);
  } finally {
    useReusableInflater(true);
  }
});
