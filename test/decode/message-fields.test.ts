/**
 * origin_id and is_groupchat answered as MongooseIM's own functions answer them (get_origin_id/1 of
 * 3.7.0 with its exml_query, is_groupchat/1 of 6.2.1), run by a real Erlang VM on payloads it made:
 * named cases, realistic messages in three encodings, and mutants of both (differential fuzzing).
 * Seeded: FIELDS_FUZZ_SEED=<n> replays the random parts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractMessageFields, isGroupchatAnswer, isOriginId, type FieldAnswers } from '../../services/decode/index.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import {
  erlangFieldCases,
  erlangFieldMessages,
  erlangFieldOracle,
  type ExpectedGroupchat,
  type ExpectedOriginId,
  type FieldRecord,
} from '../support/erlang-fields.js';
import { fuzzSeed } from '../support/fuzz-seed.js';

const SEED = fuzzSeed('FIELDS_FUZZ_SEED', 'origin_id / is_groupchat against Erlang');

interface Ours {
  readonly originId: ExpectedOriginId;
  readonly isGroupchat: ExpectedGroupchat;
}

/**
 * Our answers in the oracle's terms. payload_too_large (a compressed size declared over our limit)
 * counts as malformed, as the sender's -1: both leave the record untouched and reported.
 */
function ours(answers: FieldAnswers): Ours {
  const o = answers.originId;
  const g = answers.isGroupchat;
  return {
    originId: isOriginId(o) ? { originId: o.originId } : 'malformed',
    isGroupchat: isGroupchatAnswer(g) ? g.isGroupchat : 'malformed',
  };
}

function mismatch(r: FieldRecord, format: 'eterm' | 'xml' | 'auto'): string | null {
  const got = ours(extractMessageFields(r.payload, format));
  const want = { originId: r.originId, isGroupchat: r.isGroupchat };
  return JSON.stringify(got) === JSON.stringify(want) ? null : `${r.name} (${format}): Erlang ${JSON.stringify(want)}, we ${JSON.stringify(got)}`;
}

const cases = erlangFieldCases();

test('the generator made eterm and xml cases with every kind of answer', () => {
  assert.ok(cases.filter((c) => c.format === 'eterm').length > 150, `${cases.length} cases`);
  assert.ok(cases.filter((c) => c.format === 'xml').length > 30, `${cases.length} cases`);
  const kinds = new Set(cases.map((c) => (c.originId === 'malformed' ? 'malformed' : c.originId.originId === null ? 'none' : 'id')));
  assert.deepEqual([...kinds].sort(), ['id', 'malformed', 'none']);
  const groupchat = new Set(cases.map((c) => String(c.isGroupchat)));
  assert.deepEqual([...groupchat].sort(), ['false', 'malformed', 'true']);
  // Both fields must be able to disagree: a crash of one function leaves the other's answer standing.
  assert.ok(cases.some((c) => c.originId === 'malformed' && c.isGroupchat !== 'malformed'));
  assert.ok(cases.some((c) => c.originId !== 'malformed' && c.isGroupchat === 'malformed'));
});

for (const c of cases) {
  test(`${c.format} case: ${c.name}`, () => {
    for (const format of [c.format, 'auto'] as const) assert.equal(mismatch(c, format), null);
  });
}

test('a message in MongooseIM 3.7 shape gives its origin-id; one without gives null (the column stays NULL)', () => {
  const withId = cases.find((c) => c.name === 'chat with origin-id (compressed)');
  const without = cases.find((c) => c.name === 'chat without origin-id (minor 1)');
  assert.ok(withId && without);
  assert.deepEqual(withId.originId, { originId: 'de305d54-75b4-431b-adb2-eb6b9e546014' });
  assert.deepEqual(without.originId, { originId: null });
  assert.equal(without.isGroupchat, false);
});

test(`1000 realistic messages (seed ${SEED}) in three encodings answer as Erlang does`, () => {
  const records = erlangFieldMessages(1000, SEED % 100_000);
  assert.equal(records.length, 3000);
  const failures = records.map((r) => mismatch(r, r.format)).filter((m): m is string => m !== null);
  assert.equal(failures.length, 0, `seed ${SEED} (replay with FIELDS_FUZZ_SEED=${SEED}):\n${failures.slice(0, 8).join('\n')}`);
  assert.ok(records.some((r) => r.originId !== 'malformed' && r.originId.originId === null));
  assert.ok(records.some((r) => r.isGroupchat === true));
});

const MUTANTS = Number(process.env.FIELDS_FUZZ_CASES ?? 3000);

test(`differential fuzzing against binary_to_term and MongooseIM's functions: ${MUTANTS} mutants, seed ${SEED}`, (t) => {
  const random = seededRandom(SEED);
  const int = (n: number): number => Math.floor(random() * n);
  const bases = [...cases.filter((c) => c.format === 'eterm'), ...erlangFieldMessages(100, (SEED + 1) % 100_000).filter((r) => r.format === 'eterm')].map(
    (r) => r.payload,
  );
  const mutants: Uint8Array[] = [];
  for (let i = 0; i < MUTANTS; i++) {
    const base = bases[int(bases.length)];
    const m = Uint8Array.from(base);
    switch (int(4)) {
      case 0:
        for (let k = 1 + int(2); k > 0; k--) m[int(m.length)] ^= 1 + int(255);
        mutants.push(m);
        break;
      case 1:
        mutants.push(m.subarray(0, int(m.length)));
        break;
      case 2: {
        // Small values nudged: lengths, arities and characters a little off.
        const at = 1 + int(m.length - 1);
        m[at] = (m[at] + (random() < 0.5 ? 1 : 255)) & 0xff;
        mutants.push(m);
        break;
      }
      default: {
        const at = int(m.length);
        mutants.push(Uint8Array.from(Buffer.concat([m.subarray(0, at), m.subarray(at + 1)])));
      }
    }
  }
  const expected = erlangFieldOracle(mutants);
  const failures: string[] = [];
  const seen: Record<string, number> = {};
  mutants.forEach((payload, i) => {
    const got = ours(extractMessageFields(payload, 'eterm'));
    const want = expected[i];
    const key = `${want.originId === 'malformed' ? 'malformed' : want.originId.originId === null ? 'none' : 'id'}/${String(want.isGroupchat)}`;
    seen[key] = (seen[key] ?? 0) + 1;
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      failures.push(`#${i}: Erlang ${JSON.stringify(want)}, we ${JSON.stringify(got)}\n  payload ${Buffer.from(payload).toString('hex')}`);
    }
  });
  assert.equal(failures.length, 0, `seed ${SEED} (replay with FIELDS_FUZZ_SEED=${SEED}): ${failures.length} mismatches\n${failures.slice(0, 6).join('\n')}`);
  t.diagnostic(`Erlang answered: ${JSON.stringify(seen)}`);
  assert.ok((seen['id/true'] ?? 0) + (seen['id/false'] ?? 0) > MUTANTS / 20, `answers seen: ${JSON.stringify(seen)}`);
});
