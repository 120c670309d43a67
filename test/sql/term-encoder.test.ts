/**
 * The JS term encoder (used by the demo and the benchmark) against a real Erlang VM: the plain
 * encoding must be byte-identical to `term_to_binary/1`, and Erlang must decode both our plain
 * and our compressed payloads back to the same term.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { erlangEncode } from '../support/term-encoder-erlang.js';
import { atom, bin, int, list, mucMessage, termToBinary, termToCompressedBinary, tuple, xmlTerm, type Term } from '../../cli/demo/term-encoder.js';

const samples: Term[] = [
  xmlTerm(mucMessage({ jid: 'Alice@Example.COM/Phone' })),
  xmlTerm(mucMessage({ jid: 'gżegżółka@brzęczyszczykiewicz.pl/res', body: 'Zażółć gęślą jaźń '.repeat(20) })),
  xmlTerm(mucMessage({ jid: 'ΣΑΣ@Ελλάδα.gr', type: 'chat' })),
  xmlTerm(mucMessage({ withoutX: true })),
  xmlTerm({ name: 'presence' }),
  atom('a'),
  tuple(atom('xmlel'), list(), int(-5), int(300), int(7), bin('')),
  xmlTerm(mucMessage({ jid: 'bob@host', body: 'x'.repeat(70_000) })),
];

test('plain encoding is byte-identical to term_to_binary/1, and Erlang decodes both forms', () => {
  const ours = samples.map((t) => ({ plain: termToBinary(t), compressed: termToCompressedBinary(t) }));
  const erl = erlangEncode(
    samples,
    ours.map((o) => [o.plain, o.compressed]),
  );
  assert.equal(erl.length, samples.length);
  for (let i = 0; i < samples.length; i++) {
    assert.deepEqual(ours[i].plain, erl[i].plain, `sample ${i}: plain bytes differ`);
    assert.deepEqual(erl[i].checks, [true, true], `sample ${i}: Erlang did not decode our payloads to the same term`);
    // Same choice as Erlang between the compressed form and the plain fallback.
    assert.equal(ours[i].compressed[1], erl[i].compressed[1], `sample ${i}: compressed tag differs`);
  }
});

test('compressed form falls back to the plain encoding for tiny terms, like Erlang', () => {
  assert.deepEqual(termToCompressedBinary(atom('a')), termToBinary(atom('a')));
  const big = xmlTerm(mucMessage({ jid: 'bob@host', body: 'y'.repeat(1000) }));
  assert.equal(termToCompressedBinary(big)[1], 80);
});
