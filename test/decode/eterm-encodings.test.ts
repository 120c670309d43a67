/**
 * One term, many byte forms: Erlang reads an atom written with any of its four tags, a tuple as
 * SMALL or LARGE, a binary as BINARY_EXT or an 8-bit BIT_BINARY_EXT, a list cut into chained
 * LIST_EXT cells (or opened by an empty LIST_EXT), [] as NIL, an empty STRING_EXT or an empty
 * LIST_EXT, and gets the same term. Erlang-made messages are re-written here in random equivalent
 * forms; Erlang (the oracle) must find the same answer as for the original, and so must we.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractSenderJid } from '../../services/decode/index.js';
import { erlangCases, erlangOracle, erlangRandomMessages } from '../support/erlang-payloads.js';
import { asReference, describe, hex } from './answer-match.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { fuzzSeed } from '../support/fuzz-seed.js';

type Term =
  | { t: 'atom'; name: Buffer }
  | { t: 'bin'; bytes: Buffer }
  | { t: 'tuple'; els: Term[] }
  | { t: 'list'; els: Term[]; tail: Term }
  | { t: 'nil' }
  | { t: 'raw'; bytes: Buffer }; // anything else, copied as it is

/** A small reader of the forms term_to_binary writes for these messages (independent of the decoder under test). */
function parse(b: Buffer, pos: number): [Term, number] {
  const tag = b[pos];
  switch (tag) {
    case 100:
    case 118: {
      const n = b.readUInt16BE(pos + 1);
      return [{ t: 'atom', name: b.subarray(pos + 3, pos + 3 + n) }, pos + 3 + n];
    }
    case 115:
    case 119: {
      const n = b[pos + 1];
      return [{ t: 'atom', name: b.subarray(pos + 2, pos + 2 + n) }, pos + 2 + n];
    }
    case 109: {
      const n = b.readUInt32BE(pos + 1);
      return [{ t: 'bin', bytes: b.subarray(pos + 5, pos + 5 + n) }, pos + 5 + n];
    }
    case 104:
    case 105: {
      const arity = tag === 104 ? b[pos + 1] : b.readUInt32BE(pos + 1);
      let p = pos + (tag === 104 ? 2 : 5);
      const els: Term[] = [];
      for (let i = 0; i < arity; i++) {
        const [e, next] = parse(b, p);
        els.push(e);
        p = next;
      }
      return [{ t: 'tuple', els }, p];
    }
    case 106:
      return [{ t: 'nil' }, pos + 1];
    case 108: {
      const n = b.readUInt32BE(pos + 1);
      let p = pos + 5;
      const els: Term[] = [];
      for (let i = 0; i < n; i++) {
        const [e, next] = parse(b, p);
        els.push(e);
        p = next;
      }
      const [tail, next] = parse(b, p);
      return [{ t: 'list', els, tail }, next];
    }
    case 107: {
      const n = b.readUInt16BE(pos + 1);
      return [{ t: 'raw', bytes: b.subarray(pos, pos + 3 + n) }, pos + 3 + n];
    }
    case 97:
      return [{ t: 'raw', bytes: b.subarray(pos, pos + 2) }, pos + 2];
    case 98:
      return [{ t: 'raw', bytes: b.subarray(pos, pos + 5) }, pos + 5];
    default:
      throw new Error(`test parser: tag ${tag} at ${pos}`);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Writes the term back in a randomly chosen equivalent form. */
function encode(term: Term, random: () => number): Buffer {
  const pick = (n: number): number => Math.floor(random() * n);
  switch (term.t) {
    case 'atom': {
      const n = term.name.length;
      switch (pick(4)) {
        case 0:
          return Buffer.concat([Buffer.of(100), u32(n).subarray(2), term.name]);
        case 1:
          return Buffer.concat([Buffer.of(115, n), term.name]);
        case 2:
          return Buffer.concat([Buffer.of(118), u32(n).subarray(2), term.name]);
        default:
          return Buffer.concat([Buffer.of(119, n), term.name]);
      }
    }
    case 'bin':
      if (term.bytes.length > 0 && pick(2) === 0) return Buffer.concat([Buffer.of(77), u32(term.bytes.length), Buffer.of(8), term.bytes]);
      if (term.bytes.length === 0 && pick(3) === 0) return Buffer.of(77, 0, 0, 0, 0, 0);
      return Buffer.concat([Buffer.of(109), u32(term.bytes.length), term.bytes]);
    case 'tuple': {
      const header = term.els.length < 256 && pick(2) === 0 ? Buffer.of(104, term.els.length) : Buffer.concat([Buffer.of(105), u32(term.els.length)]);
      return Buffer.concat([header, ...term.els.map((e) => encode(e, random))]);
    }
    case 'nil':
      return [Buffer.of(106), Buffer.of(107, 0, 0), Buffer.of(108, 0, 0, 0, 0, 106)][pick(3)];
    case 'list': {
      // Cut the elements into chained cells, sometimes opened by an empty cell.
      if (term.els.length === 0) return encode(term.tail, random);
      const cut = 1 + pick(term.els.length);
      const first = term.els.slice(0, cut);
      const rest: Term = cut === term.els.length ? term.tail : { t: 'list', els: term.els.slice(cut), tail: term.tail };
      const cell = Buffer.concat([Buffer.of(108), u32(first.length), ...first.map((e) => encode(e, random)), encode(rest, random)]);
      return pick(5) === 0 ? Buffer.concat([Buffer.of(108, 0, 0, 0, 0), cell]) : cell;
    }
    case 'raw':
      return term.bytes;
  }
}

const SEED = fuzzSeed('DECODE_FUZZ_SEED', 'equivalent eterm encodings');

test(`equivalent encodings answer alike, for Erlang and for us (seed ${SEED})`, () => {
  const random = seededRandom(SEED);
  // Uncompressed originals without pids, funs, maps and the like, which the small parser does not read.
  const originals = [...erlangCases(), ...erlangRandomMessages(200, SEED % 100_000)]
    .filter((r) => r.format === 'eterm' && r.payload[0] === 131 && r.payload[1] !== 80)
    .flatMap((r) => {
      try {
        const [term] = parse(Buffer.from(r.payload), 1);
        return [{ r, term }];
      } catch {
        return [];
      }
    });
  assert.ok(originals.length > 200, `only ${originals.length} originals`);
  const variants = originals.flatMap(({ r, term }) => [0, 1, 2].map(() => ({ r, payload: Buffer.concat([Buffer.of(131), encode(term, random)]) })));
  const erlang = erlangOracle(variants.map((v) => v.payload));
  const failures: string[] = [];
  variants.forEach((v, i) => {
    if (JSON.stringify(erlang[i]) !== JSON.stringify(v.r.expected)) failures.push(`Erlang changed its answer for ${v.r.name}: ${JSON.stringify(erlang[i])}`);
    const ours = extractSenderJid(v.payload, 'eterm');
    if (JSON.stringify(asReference(ours)) !== JSON.stringify(erlang[i]))
      failures.push(`${v.r.name}: Erlang ${JSON.stringify(erlang[i])}, we ${describe(ours)}\n  ${hex(v.payload)}`);
  });
  assert.equal(failures.length, 0, `seed ${SEED}: ${failures.length} failures\n${failures.slice(0, 6).join('\n')}`);
});
