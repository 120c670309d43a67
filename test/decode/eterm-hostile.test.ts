/**
 * Hostile payloads: each must answer -1 (malformed or payload_too_large), promptly and without
 * holding memory: a compressed term declaring 4 GiB, a zlib bomb, 100,000 levels of nesting, a
 * 10 MB attribute. Times and memory are reported as diagnostics, never asserted (bench/ measures).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { deflateSync } from 'node:zlib';
import { DEFAULT_DECODE_LIMITS, extractSenderJid, isSuccess, type Answer } from '../../services/decode/index.js';
import { erlangOracle } from '../support/erlang-payloads.js';
import { asReference, describe } from './answer-match.js';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
const bin = (s: string | Buffer): Buffer => {
  const bytes = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.of(109), u32(bytes.length), bytes]);
};
const atom = (s: string): Buffer => Buffer.concat([Buffer.of(119, s.length), Buffer.from(s)]);
const tuple = (...els: Buffer[]): Buffer => Buffer.concat([Buffer.of(104, els.length), ...els]);
const list = (...els: Buffer[]): Buffer => (els.length === 0 ? Buffer.of(106) : Buffer.concat([Buffer.of(108), u32(els.length), ...els, Buffer.of(106)]));
const pair = (k: string, v: string | Buffer): Buffer => tuple(bin(k), bin(v));
const message = (attrs: Buffer[], itemJid: string | Buffer): Buffer =>
  Buffer.concat([
    Buffer.of(131),
    tuple(
      atom('xmlel'),
      bin('message'),
      list(...attrs),
      list(
        tuple(
          atom('xmlel'),
          bin('x'),
          list(pair('xmlns', 'http://jabber.org/protocol/muc#user')),
          list(tuple(atom('xmlel'), bin('item'), list(pair('jid', itemJid)), list())),
        ),
      ),
    ),
  ]);
const compressed = (inner: Buffer, declared: number): Buffer => Buffer.concat([Buffer.of(131, 80), u32(declared), deflateSync(inner)]);

function timed(t: TestContext, what: string, run: () => Answer): Answer {
  const before = process.memoryUsage().rss;
  const start = process.hrtime.bigint();
  const answer = run();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.diagnostic(`${what}: ${describe(answer).slice(0, 120)} in ${ms.toFixed(1)} ms, rss +${((process.memoryUsage().rss - before) / 2 ** 20).toFixed(1)} MiB`);
  return answer;
}

function assertRefused(answer: Answer, reason: string): void {
  assert.ok(!isSuccess(answer), describe(answer));
  assert.equal(answer.reason, reason, describe(answer));
}

test('a compressed term declaring 4 GiB is refused before inflating', (t) => {
  const payload = compressed(Buffer.alloc(1000), 0xffffffff);
  assertRefused(
    timed(t, '4 GiB', () => extractSenderJid(payload, 'eterm')),
    'payload_too_large',
  );
});

test('a zlib bomb stops at the declared size', (t) => {
  const zeros = Buffer.alloc(200 * 2 ** 20); // 200 MiB of zeros deflate to about 200 KB
  const inner = Buffer.concat([Buffer.of(109), u32(zeros.length - 5), zeros.subarray(5)]);
  const small = compressed(inner, 1000);
  const atLimit = compressed(inner, DEFAULT_DECODE_LIMITS.maxDecompressedBytes);
  assert.ok(small.length < DEFAULT_DECODE_LIMITS.maxPayloadBytes);
  assertRefused(
    timed(t, 'bomb declaring 1000 bytes', () => extractSenderJid(small, 'eterm')),
    'malformed',
  );
  assertRefused(
    timed(t, 'bomb declaring the 16 MiB limit', () => extractSenderJid(atLimit, 'eterm')),
    'malformed',
  );
});

test('100,000 levels of nested lists answer at once, whatever the depth limit', (t) => {
  const depth = 100_000;
  const open = Buffer.concat([Buffer.of(108), u32(1)]);
  const nested = Buffer.concat([Buffer.of(131), Buffer.concat(Array(depth).fill(open)), Buffer.alloc(depth + 1, 106)]);
  assertRefused(
    timed(t, 'nested lists, default limit', () => extractSenderJid(nested, 'eterm')),
    'malformed',
  );
  // With the depth limit lifted the reader still uses no JS stack: the term is valid, just not a message.
  const lifted = { ...DEFAULT_DECODE_LIMITS, maxDepth: 1_000_000 };
  assertRefused(
    timed(t, 'nested lists, limit lifted', () => extractSenderJid(nested, 'eterm', lifted)),
    'malformed',
  );
  const tuples = Buffer.concat([Buffer.of(131), Buffer.concat(Array(depth).fill(Buffer.of(104, 1))), Buffer.of(106)]);
  assertRefused(
    timed(t, 'nested tuples, limit lifted', () => extractSenderJid(tuples, 'eterm', lifted)),
    'malformed',
  );
  const compressedNesting = compressed(nested.subarray(1), nested.length - 1);
  assertRefused(
    timed(t, 'nested lists compressed', () => extractSenderJid(compressedNesting, 'eterm')),
    'malformed',
  );
});

test('a 10 MB attribute is refused by size, and handled when the limit allows it', (t) => {
  const huge = Buffer.alloc(10 * 10 ** 6, 0x61);
  const payload = message([pair('type', 'groupchat'), pair('big', huge)], 'Big@Example.com/r');
  assertRefused(
    timed(t, '10 MB attribute', () => extractSenderJid(payload, 'eterm')),
    'payload_too_large',
  );
  const roomy = { ...DEFAULT_DECODE_LIMITS, maxPayloadBytes: 16 * 2 ** 20 };
  const answer = timed(t, '10 MB attribute, roomy limit', () => extractSenderJid(payload, 'eterm', roomy));
  assert.ok(isSuccess(answer), describe(answer));
  assert.equal(answer.jid, 'big@example.com');
  // Compressed, it is small, and 10 MB inflated is within maxDecompressedBytes: a valid answer.
  const packed = compressed(payload.subarray(1), payload.length - 1);
  assert.ok(packed.length < DEFAULT_DECODE_LIMITS.maxPayloadBytes);
  const inflated = timed(t, '10 MB attribute compressed', () => extractSenderJid(packed, 'eterm'));
  assert.ok(isSuccess(inflated), describe(inflated));
});

test('element counts far beyond the data are truncation, found at once', (t) => {
  for (const tag of [104, 105, 108, 116]) {
    const header = tag === 104 ? Buffer.of(tag, 255) : Buffer.concat([Buffer.of(tag), u32(0xffffffff)]);
    const payload = Buffer.concat([Buffer.of(131), header, Buffer.alloc(100, 97)]);
    assertRefused(
      timed(t, `tag ${tag} announcing a huge count`, () => extractSenderJid(payload, 'eterm')),
      'malformed',
    );
  }
});

test('the depth limit counts as Erlang nests: a charlist is a level, a list tail is not', () => {
  // [[..."ab"...]] nested exactly `depth` lists deep, the innermost holding a charlist; and the
  // same depth reached through list tails (which do not nest).
  const oracleDepth = 8;
  const lists = (depth: number, inner: Buffer): Buffer =>
    Buffer.concat([Buffer.of(131), Buffer.concat(Array(depth).fill(Buffer.concat([Buffer.of(108), u32(1)]))), inner, Buffer.alloc(depth, 106)]);
  const charlist = Buffer.of(107, 0, 2, 97, 98);
  const limits = { ...DEFAULT_DECODE_LIMITS, maxDepth: oracleDepth };
  const detail = (a: Answer): string => (isSuccess(a) ? '' : a.detail);
  assert.match(detail(extractSenderJid(lists(oracleDepth, charlist), 'eterm', limits)), /nested deeper/);
  assert.doesNotMatch(detail(extractSenderJid(lists(oracleDepth - 1, charlist), 'eterm', limits)), /nested deeper/);
  assert.doesNotMatch(detail(extractSenderJid(lists(oracleDepth, Buffer.of(106)), 'eterm', limits)), /nested deeper/);
  const tails = Buffer.concat([Buffer.of(131), Buffer.concat(Array(50).fill(Buffer.concat([Buffer.of(108), u32(1), Buffer.of(97, 1)]))), Buffer.of(106)]);
  assert.doesNotMatch(detail(extractSenderJid(tails, 'eterm', limits)), /nested deeper/);
  // Inside a real message (root tuple, attribute list, attribute pair: 3 levels), the Erlang
  // oracle told the same limit agrees where the limit starts to bite.
  const nestedValue = (depth: number, inner: Buffer): Buffer => lists(depth, inner).subarray(1);
  const withDeepAttribute = (value: Buffer): Buffer => message([pair('type', 'groupchat'), tuple(bin('deep'), value)], 'Deep@Example.com/r');
  const payloads = [
    withDeepAttribute(nestedValue(oracleDepth - 3, charlist)),
    withDeepAttribute(nestedValue(oracleDepth - 4, charlist)),
    withDeepAttribute(nestedValue(oracleDepth - 3, Buffer.of(106))),
    withDeepAttribute(nestedValue(oracleDepth - 2, Buffer.of(106))),
  ];
  const erlang = erlangOracle(payloads, oracleDepth);
  assert.ok(erlang.some((a) => 'jid' in a) && erlang.some((a) => 'code' in a), JSON.stringify(erlang));
  assert.deepEqual(
    payloads.map((p) => asReference(extractSenderJid(p, 'eterm', limits))),
    erlang,
  );
});
