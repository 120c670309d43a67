/**
 * Differential fuzzing with Erlang as the oracle: valid payloads made by Erlang are mutated
 * (byte flips, tag swaps, truncation, appended and inserted bytes, wrong compressed sizes, broken
 * zlib streams, mutations inside the compressed term), then Erlang answers every mutant in one
 * batch (binary_to_term + the reference rules) and we must answer the same for each.
 * Seeded: DECODE_FUZZ_SEED=<n> replays a run; the seed is printed when the file loads, on every run,
 * and again in a failure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, inflateSync } from 'node:zlib';
import { extractSenderJid } from '../../services/decode/index.js';
import { erlangCases, erlangOracle, erlangRandomMessages } from '../support/erlang-payloads.js';
import { asReference, describe, hex } from './answer-match.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { fuzzSeed } from '../support/fuzz-seed.js';

const SEED = fuzzSeed('DECODE_FUZZ_SEED', 'eterm differential fuzzing');
const MUTANTS = Number(process.env.DECODE_FUZZ_CASES ?? 6000);

const INTERESTING_TAGS = [
  70, 77, 80, 82, 88, 89, 90, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 0, 255,
];

interface Mutant {
  readonly how: string;
  readonly payload: Uint8Array;
}

function mutate(base: Uint8Array, random: () => number): Mutant {
  const int = (n: number): number => Math.floor(random() * n);
  const copy = (): Uint8Array => Uint8Array.from(base);
  const compressed = base.length > 6 && base[1] === 80;
  const kind = int(compressed ? 10 : 7);
  switch (kind) {
    case 0: {
      const m = copy();
      const flips = 1 + int(3);
      for (let i = 0; i < flips; i++) m[int(m.length)] ^= 1 + int(255);
      return { how: `flip ${flips} bytes`, payload: m };
    }
    case 1: {
      const m = copy();
      const at = int(m.length);
      m[at] = INTERESTING_TAGS[int(INTERESTING_TAGS.length)];
      return { how: `tag at ${at}`, payload: m };
    }
    case 2: {
      const len = int(base.length);
      return { how: `truncate to ${len}`, payload: base.subarray(0, len) };
    }
    case 3: {
      const extra = Uint8Array.from({ length: 1 + int(8) }, () => int(256));
      return { how: `append ${extra.length}`, payload: concat(base, extra) };
    }
    case 4: {
      const at = int(base.length);
      return { how: `insert at ${at}`, payload: concat(base.subarray(0, at), Uint8Array.of(int(256)), base.subarray(at)) };
    }
    case 5: {
      // Small integers nudged: lengths and arities a little off.
      const m = copy();
      const at = 1 + int(m.length - 1);
      m[at] = (m[at] + (random() < 0.5 ? 1 : 255)) & 0xff;
      return { how: `nudge byte ${at}`, payload: m };
    }
    case 6: {
      const at = int(base.length);
      return { how: `delete at ${at}`, payload: concat(base.subarray(0, at), base.subarray(at + 1)) };
    }
    case 7: {
      const m = copy();
      const view = new DataView(m.buffer);
      const delta = [-2, -1, 1, 2, 1000][int(5)];
      view.setUint32(2, (view.getUint32(2) + delta) >>> 0);
      return { how: `declared size ${delta}`, payload: m };
    }
    case 8: {
      const m = copy();
      const at = 6 + int(m.length - 6);
      m[at] ^= 1 << int(8);
      return { how: `zlib bit at ${at}`, payload: m };
    }
    default: {
      // Mutate the term inside the compression, then compress it again with a correct size.
      let inner: Uint8Array;
      try {
        inner = Uint8Array.from(inflateSync(base.subarray(6)));
      } catch {
        return { how: 'unchanged broken compressed base', payload: base };
      }
      const innerMutant = mutate(concat(Uint8Array.of(131), inner), random);
      const body = innerMutant.payload.subarray(1);
      const header = new Uint8Array(6);
      header[0] = 131;
      header[1] = 80;
      new DataView(header.buffer).setUint32(2, body.length);
      return { how: `inside compression: ${innerMutant.how}`, payload: concat(header, deflateSync(body)) };
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

test(`differential fuzzing against binary_to_term: ${MUTANTS} mutants, seed ${SEED}`, (t) => {
  const random = seededRandom(SEED);
  const bases = [...erlangCases().filter((c) => c.format === 'eterm'), ...erlangRandomMessages(150, SEED % 100_000).filter((r) => r.format === 'eterm')].map(
    (r) => r.payload,
  );
  const mutants: Mutant[] = [];
  for (let i = 0; i < MUTANTS; i++) mutants.push(mutate(bases[Math.floor(random() * bases.length)], random));
  const expected = erlangOracle(mutants.map((m) => m.payload));
  const failures: string[] = [];
  const seen = { jid: 0, '-1': 0, '-2': 0 };
  mutants.forEach((m, i) => {
    const answer = extractSenderJid(m.payload, 'eterm');
    const ours = asReference(answer);
    const want = expected[i];
    seen['jid' in want ? 'jid' : want.code]++;
    if (JSON.stringify(ours) !== JSON.stringify(want)) {
      failures.push(`#${i} (${m.how}): Erlang ${JSON.stringify(want)}, we ${describe(answer)}\n  payload ${hex(m.payload)}`);
    }
  });
  assert.equal(failures.length, 0, `seed ${SEED} (replay with DECODE_FUZZ_SEED=${SEED}): ${failures.length} mismatches\n${failures.slice(0, 8).join('\n')}`);
  t.diagnostic(`Erlang answered: ${JSON.stringify(seen)}`);
  // The mutants must exercise both sides, or the comparison proves little.
  assert.ok(seen.jid > MUTANTS / 20 && seen['-1'] > MUTANTS / 5, `answers seen: ${JSON.stringify(seen)}`);
});
