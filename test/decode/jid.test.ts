/**
 * JID lower-casing against Erlang's own string:lowercase/1, code point by code point; whole JIDs
 * (lower-casing in context, the cut at the first slash) against the reference's rules run by
 * Erlang (erlangOracle); splitting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lowercasePerCodePoint, normalizeJid, splitBareJid } from '../../services/decode/index.js';
import { mucMessage, termToBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import { erlangLowercaseTable, erlangOracle } from '../support/erlang-payloads.js';

/**
 * What the reference answers for each JID: each goes into an archived MUC message's item jid, and
 * Erlang decodes the payload and applies the reference's rules (string:lowercase/1, then
 * string:split/2 at "/"). The expectations are Erlang's, never written by hand.
 */
function erlangBareJids(jids: readonly string[]): string[] {
  const answers = erlangOracle(jids.map((jid) => termToBinary(xmlTerm(mucMessage({ jid })))));
  return answers.map((answer, i) => {
    assert.ok('jid' in answer, `Erlang gave no JID for ${JSON.stringify(jids[i])}: ${JSON.stringify(answer)}`);
    return answer.jid;
  });
}

test('every code point lower-cases as string:lowercase/1 does', () => {
  const erlang = erlangLowercaseTable();
  assert.ok(erlang.size > 1000, `Erlang changed only ${erlang.size} code points`);
  const differences: string[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    const ours = lowercasePerCodePoint(ch);
    const theirs = erlang.get(cp) ?? ch;
    if (ours !== theirs) differences.push(`U+${cp.toString(16)}: Erlang ${JSON.stringify(theirs)}, ours ${JSON.stringify(ours)}`);
  }
  assert.deepEqual(differences, []);
});

test('whole JIDs answer as Erlang answers: no final-sigma rule, full mappings, cut at the first slash', () => {
  const jids = [
    'ΣΑΣ@Example.COM/Res/x', // final sigma: JavaScript's toLowerCase() says σας
    'ὈΔΥΣΣΕΎΣ@x', // a sigma at the end of a word inside the JID
    'İ@x', // U+0130: i + U+0307 (full mapping)
    'ẞ@x',
    'Gżegżółka@Brzęczyszczykiewicz.PL',
    '',
    '/only-resource',
    'a@b/\u0301r/s', // a slash joined to a combining mark does not split (grapheme clusters)
    'a@b\u0600/r', // a prepended concatenation mark before the slash
  ];
  const erlang = erlangBareJids(jids);
  jids.forEach((jid, i) => assert.equal(normalizeJid(jid), erlang[i], `${JSON.stringify(jid)}: Erlang ${JSON.stringify(erlang[i])}`));
  // The sigma case is one where per-character lower-casing and JavaScript's differ: it tests something.
  assert.notEqual(erlang[0], 'ΣΑΣ@Example.COM'.toLowerCase());
});

test('splitBareJid splits at the first @ and names what is missing', () => {
  assert.deepEqual(splitBareJid('alice@example.com'), { user: 'alice', server: 'example.com' });
  assert.deepEqual(splitBareJid('a@b@c'), { user: 'a', server: 'b@c' });
  for (const [jid, reason] of [
    ['', 'jid_without_local_part'],
    ['host', 'jid_without_local_part'],
    ['@host', 'jid_without_local_part'],
    ['alice@', 'jid_without_domain'],
  ] as const) {
    const split = splitBareJid(jid);
    assert.ok('reason' in split, jid);
    assert.equal(split.reason, reason, jid);
    assert.ok(split.detail.length > 0);
  }
});
