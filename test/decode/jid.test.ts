/** JID lower-casing against Erlang's own string:lowercase/1, code point by code point; splitting. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lowercasePerCodePoint, normalizeJid, splitBareJid } from '../../services/decode/index.js';
import { erlangLowercaseTable } from '../support/erlang-payloads.js';

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

test('no final-sigma rule, full mappings, cut at the first slash', () => {
  assert.equal(normalizeJid('ΣΑΣ@Example.COM/Res/x'), 'σασ@example.com');
  assert.equal(normalizeJid('İ@x'), 'i\u0307@x');
  assert.equal(normalizeJid('ẞ@x'), 'ß@x');
  assert.equal(normalizeJid('Gżegżółka@Brzęczyszczykiewicz.PL'), 'gżegżółka@brzęczyszczykiewicz.pl');
  assert.equal(normalizeJid(''), '');
  assert.equal(normalizeJid('/only-resource'), '');
});

test('a slash joined to a combining mark does not split (string:split/2 works on grapheme clusters)', () => {
  assert.equal(normalizeJid('a@b/\u0301r/s'), 'a@b/\u0301r');
  assert.equal(normalizeJid('a@b\u0600/r'), 'a@b\u0600');
});

test('splitBareJid splits at the first @ and names what is missing', () => {
  assert.deepEqual(splitBareJid('alice@example.com'), { user: 'alice', server: 'example.com' });
  assert.deepEqual(splitBareJid('a@b@c'), { user: 'a', server: 'b@c' });
  for (const [jid, reason] of [['', 'jid_without_local_part'], ['host', 'jid_without_local_part'], ['@host', 'jid_without_local_part'], ['alice@', 'jid_without_domain']] as const) {
    const split = splitBareJid(jid);
    assert.ok('reason' in split, jid);
    assert.equal(split.reason, reason, jid);
    assert.ok(split.detail.length > 0);
  }
});
