/**
 * The xml rules of sender-jid-semantics.md, one test per case, each checked two ways: our
 * extractFromXml gives the expected answer, and the reference (Erlang's xmerl, run by
 * test/support/xmerl-oracle.escript exactly as the reference tool runs it) gives it too, except
 * where we deviate on purpose (DOCTYPE, limits), where the test states the reference's answer.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isSuccess, type Answer } from '../../services/decode/answer.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../../services/decode/limits.js';
import { extractFromXml } from '../../services/decode/xml-rules.js';
import { askXmerl, type OracleAnswer } from '../support/xmerl-oracle.js';
import { REFERENCE_EXAMPLE_XML } from '../support/reference-example.js';

type Expected = { jid: string } | '-1' | '-2';

interface Case {
  readonly name: string;
  readonly payload: string | Uint8Array;
  readonly expected: Expected;
  /** Where we deliberately differ: what the reference answers instead. */
  readonly reference?: Expected;
}

const MUC = "xmlns='http://jabber.org/protocol/muc#user'";
const GC = "type='groupchat'";
/** A minimal valid message with hooks: before the root, inside it before <x>, the jid, after it. */
const msg = (o: { pre?: string; inside?: string; jid?: string; post?: string } = {}): string =>
  `${o.pre ?? ''}<message ${GC}>${o.inside ?? ''}<x ${MUC}><item jid='${o.jid ?? 'Alice@Example.COM/Phone'}'/></x></message>${o.post ?? ''}`;
const ALICE = { jid: 'alice@example.com' };
const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** Never sent to xmerl: it would try to expand it. */
const BILLION_LAUGHS =
  `<!DOCTYPE lolz [<!ENTITY lol "lol">` +
  Array.from({ length: 9 }, (_, k) => `<!ENTITY lol${k + 1} "${`&lol${k === 0 ? '' : k};`.repeat(10)}">`).join('') +
  `]><message ${GC}><x ${MUC}><item jid='&lol9;'/></x></message>`;

const CASES: readonly Case[] = [
  // The reference tool's own example and its 2023 companions.
  {
    name: 'reference example (pretty-printed coven@chat.shakespeare.lit message)',
    payload: REFERENCE_EXAMPLE_XML,
    expected: { jid: 'gżegżółka@brzęczyszczykiewicz.pl' },
  },
  {
    name: 'reference unsupported_input example: a type=chat message',
    expected: '-2',
    payload: "<message from='a@localhost' to='b@localhost' type='chat'>\n    <body>Zażółć gęślą jaźń</body>\n</message>\n",
  },
  { name: 'reference malformed_input example: <item_malformed>', expected: '-1', payload: REFERENCE_EXAMPLE_XML.replace('<item ', '<item_malformed ') },

  // Rule 1: well-formedness.
  { name: 'rule 1: duplicate attribute', payload: msg({ inside: "<a b='1' b='2'/>" }), expected: '-1' },
  { name: 'rule 1: duplicate type attribute on the root', expected: '-1', payload: `<message type='chat' ${GC}><x ${MUC}><item jid='a@b'/></x></message>` },
  { name: 'rule 1: unclosed element', payload: `<message ${GC}><x ${MUC}><item jid='a@b'/></x>`, expected: '-1' },
  { name: 'rule 1: mismatched end tag', payload: msg({ inside: '<a></b>' }), expected: '-1' },
  { name: 'rule 1: a second XML declaration (the payload brings its own)', payload: `<?xml version='1.0'?>${msg()}`, expected: '-1' },
  { name: 'rule 1: XML declaration after leading white space', payload: ` <?xml version='1.0'?>${msg()}`, expected: '-1' },
  { name: 'rule 1: leading white space', payload: ` \n\t\r\n${msg()}`, expected: ALICE },
  {
    name: 'rule 1: comments, PIs and CDATA are fine',
    expected: ALICE,
    payload: msg({ pre: '<!-- before --><?app data?>', inside: "<!-- c --><?pi x?><![CDATA[<x xmlns='http://jabber.org/protocol/muc#user'> & ]] ]]>" }),
  },
  { name: 'rule 1: anything after the root element is ignored', payload: msg({ post: 'junk <unclosed & ]]> \u0001' }), expected: ALICE },
  { name: 'rule 1: after the root, a second root element is ignored too', payload: msg({ post: `<message ${GC}>` }), expected: ALICE },
  { name: 'rule 1: after the root, comments are still read: a malformed one is -1', payload: msg({ post: ' <!-- a -- b -->' }), expected: '-1' },
  { name: "rule 1: '--' in a comment", payload: msg({ inside: '<!-- a -- b -->' }), expected: '-1' },
  { name: "rule 1: ']]>' in text", payload: msg({ inside: 'a ]]> b' }), expected: '-1' },
  { name: "rule 1: ']]>' through a character reference (&#93;]>)", payload: msg({ inside: 'a &#93;]> b' }), expected: '-1' },
  { name: "rule 1: '<' in an attribute value", payload: msg({ inside: "<a b='<'/>" }), expected: '-1' },
  { name: 'rule 1: unquoted attribute value', payload: msg({ inside: '<a b=c/>' }), expected: '-1' },
  { name: 'rule 1: no white space between attributes', payload: msg({ inside: `<a b='1'c='2'/>` }), expected: '-1' },
  { name: "rule 1: '&' alone in text", payload: msg({ inside: 'a & b' }), expected: '-1' },
  { name: 'rule 1: text before the root', payload: `text${msg()}`, expected: '-1' },
  { name: 'rule 1: CDATA before the root', payload: `<![CDATA[x]]>${msg()}`, expected: '-1' },
  { name: 'rule 1: empty payload', payload: '', expected: '-1' },
  { name: 'rule 1: white space only', payload: '  \n', expected: '-1' },
  { name: 'rule 1: a PI target starting with xml is reserved', payload: msg({ inside: '<?xmlfoo bar?>' }), expected: '-1' },
  { name: 'rule 1: ...except xml-stylesheet', payload: msg({ pre: '<?xml-stylesheet href="a"?>' }), expected: ALICE },
  { name: 'rule 1: names use XML 1.0 4th-edition classes: <ñ/> is fine', payload: msg({ inside: '<ñ/>' }), expected: ALICE },
  { name: 'rule 1: names use XML 1.0 4th-edition classes: <Ĳ/> is not', payload: msg({ inside: '<Ĳ/>' }), expected: '-1' },
  { name: 'rule 1: names use XML 1.0 4th-edition classes: no name above U+FFFF', payload: msg({ inside: '<a\u{10000}/>' }), expected: '-1' },
  { name: 'rule 1: a 255-character name is fine', payload: msg({ inside: `<${'a'.repeat(255)}/>` }), expected: ALICE },
  { name: 'rule 1: a 256-character name is not (an Erlang atom in the reference)', payload: msg({ inside: `<${'a'.repeat(256)}/>` }), expected: '-1' },
  {
    name: 'rule 1: a 256-character namespace name is not (an Erlang atom in the reference)',
    payload: msg({ inside: `<a xmlns:p='${'u'.repeat(256)}'/>` }),
    expected: '-1',
  },
  { name: 'rule 1: invalid UTF-8 in text', payload: bytes(`<message ${GC}>`, [0xc3, 0x28], `<x ${MUC}><item jid='a@b'/></x></message>`), expected: '-1' },
  {
    name: 'rule 1: a UTF-8 encoded surrogate',
    payload: bytes(`<message ${GC}>`, [0xed, 0xa0, 0x80], `<x ${MUC}><item jid='a@b'/></x></message>`),
    expected: '-1',
  },
  { name: 'rule 1: an overlong UTF-8 sequence', payload: bytes(`<message ${GC}>`, [0xc0, 0xbc], `<x ${MUC}><item jid='a@b'/></x></message>`), expected: '-1' },
  { name: 'rule 1: U+FFFE in text', payload: msg({ inside: '\ufffe' }), expected: '-1' },
  { name: 'rule 1: a control character in text', payload: msg({ inside: '\u0001' }), expected: '-1' },
  { name: 'rule 1: invalid UTF-8 after the root is ignored', payload: bytes(msg(), [0xff, 0xc3]), expected: ALICE },
  { name: 'rule 1: a byte-order mark is not white space', payload: `\ufeff${msg()}`, expected: '-1' },

  // Rule 2: root and type.
  { name: 'rule 2: root <presence> is -2 (eterm would say -1)', payload: `<presence ${GC}><x ${MUC}><item jid='a@b'/></x></presence>`, expected: '-2' },
  {
    name: 'rule 2: prefixed root <m:message> does not count',
    payload: `<m:message xmlns:m='jabber:client' ${GC}><x ${MUC}><item jid='a@b'/></x></m:message>`,
    expected: '-2',
  },
  { name: 'rule 2: uppercase GROUPCHAT', payload: `<message type='GROUPCHAT'><x ${MUC}><item jid='a@b'/></x></message>`, expected: '-2' },
  { name: 'rule 2: type chat', payload: `<message type='chat'><x ${MUC}><item jid='a@b'/></x></message>`, expected: '-2' },
  { name: 'rule 2: no type attribute', payload: `<message><x ${MUC}><item jid='a@b'/></x></message>`, expected: '-2' },
  {
    name: 'rule 2: a prefixed u:type does not count',
    payload: `<message xmlns:u='v' u:type='groupchat'><x ${MUC}><item jid='a@b'/></x></message>`,
    expected: '-2',
  },
  {
    name: 'rule 2: type spelled with a reference is decoded',
    payload: `<message type='group&#99;hat'><x ${MUC}><item jid='a@b'/></x></message>`,
    expected: { jid: 'a@b' },
  },
  { name: 'rule 2: type with a space around it', payload: `<message type=' groupchat'><x ${MUC}><item jid='a@b'/></x></message>`, expected: '-2' },
  { name: 'rule 2: malformed beats not-groupchat', payload: `<message type='chat'><x ${MUC}><item jid='a@b'/></x>`, expected: '-1' },

  // Rule 3: the muc#user <x>.
  { name: 'rule 3: namespace declared on <x>', payload: msg(), expected: ALICE },
  { name: 'rule 3: namespace inherited from the root', expected: { jid: 'a@b' }, payload: `<message ${GC} ${MUC}><x><item jid='a@b'/></x></message>` },
  {
    name: 'rule 3: prefixed <u:x xmlns:u=muc#user> does not count',
    expected: '-2',
    payload: `<message ${GC}><u:x xmlns:u='http://jabber.org/protocol/muc#user'><item jid='a@b'/></u:x></message>`,
  },
  { name: 'rule 3: <x> of another namespace only', payload: `<message ${GC}><x xmlns='jabber:x:conference'><item jid='a@b'/></x></message>`, expected: '-2' },
  { name: 'rule 3: <x> without any namespace', payload: `<message ${GC}><x><item jid='a@b'/></x></message>`, expected: '-2' },
  { name: "rule 3: xmlns='' on <x> undoes the root's muc#user", payload: `<message ${GC} ${MUC}><x xmlns=''><item jid='a@b'/></x></message>`, expected: '-2' },
  {
    name: 'rule 3: muc#user <x> deeper than a child of the root does not count',
    payload: `<message ${GC}><y><x ${MUC}><item jid='a@b'/></x></y></message>`,
    expected: '-2',
  },
  {
    name: 'rule 3: the namespace value is decoded',
    expected: { jid: 'a@b' },
    payload: `<message ${GC}><x xmlns='http://jabber.org/protocol/muc&#35;user'><item jid='a@b'/></x></message>`,
  },
  {
    name: 'rule 3: <x> with extra attributes still counts (eterm would say -2)',
    expected: { jid: 'a@b' },
    payload: `<message ${GC}><x ${MUC} extra='1'><item jid='a@b'/></x></message>`,
  },
  { name: 'rule 3: no <x> at all', payload: `<message ${GC}><body>hi</body></message>`, expected: '-2' },

  // Rule 4: exactly one jid.
  {
    name: 'rule 4: a second <x> of another namespace with its own item jid makes two',
    expected: '-1',
    payload: `<message ${GC}><x ${MUC}><item jid='a@b'/></x><x xmlns='jabber:x:other'><item jid='c@d'/></x></message>`,
  },
  {
    name: 'rule 4: the item may sit in an <x> of any namespace once a muc#user <x> exists',
    expected: { jid: 'c@d' },
    payload: `<message ${GC}><x ${MUC}/><x xmlns='jabber:x:other'><item jid='c@d'/></x></message>`,
  },
  { name: 'rule 4: two items in one <x>', payload: `<message ${GC}><x ${MUC}><item jid='a@b'/><item jid='c@d'/></x></message>`, expected: '-1' },
  { name: 'rule 4: an item without jid', payload: `<message ${GC}><x ${MUC}><item role='none'/></x></message>`, expected: '-1' },
  { name: 'rule 4: no item', payload: `<message ${GC}><x ${MUC}><status code='100'/></x></message>`, expected: '-1' },
  {
    name: 'rule 4: an actor jid deeper down does not count',
    expected: { jid: 'a@b' },
    payload: `<message ${GC}><x ${MUC}><item jid='a@b'><actor jid='c@d'/></item></x></message>`,
  },
  { name: 'rule 4: an actor jid alone is not the jid', payload: `<message ${GC}><x ${MUC}><item><actor jid='c@d'/></item></x></message>`, expected: '-1' },
  { name: 'rule 4: a prefixed <u:item> does not count', payload: `<message ${GC}><x ${MUC}><u:item jid='a@b'/></x></message>`, expected: '-1' },
  { name: 'rule 4: a prefixed u:jid does not count', payload: `<message ${GC}><x ${MUC}><item u:jid='a@b'/></x></message>`, expected: '-1' },
  { name: 'rule 4: an item outside <x> does not count', payload: `<message ${GC}><x ${MUC}/><y><item jid='a@b'/></y></message>`, expected: '-1' },

  // Rule 5: attribute values are decoded.
  { name: 'rule 5: &amp; in the jid', payload: msg({ jid: 'a&amp;b@c' }), expected: { jid: 'a&b@c' } },
  { name: 'rule 5: &#65; in the jid', payload: msg({ jid: '&#65;lice@c' }), expected: { jid: 'alice@c' } },
  {
    name: 'rule 5: every predefined entity and hex reference',
    payload: msg({ jid: '&lt;&gt;&amp;&apos;&quot;&#x42;&#x1F600;' }),
    expected: { jid: `<>&'"b\u{1f600}` },
  },
  { name: 'rule 5: an unknown entity', payload: msg({ jid: '&nbsp;' }), expected: '-1' },
  { name: 'rule 5: a reference to an illegal character', payload: msg({ jid: 'a&#0;' }), expected: '-1' },
  { name: 'rule 5: a reference to a surrogate', payload: msg({ jid: 'a&#xD800;' }), expected: '-1' },
  { name: 'rule 5: &#X41; (capital X) is malformed', payload: msg({ jid: '&#X41;' }), expected: '-1' },
  { name: 'rule 5: a reference without its semicolon', payload: msg({ jid: '&#65' }), expected: '-1' },
  { name: 'rule 5: literal TAB, LF and CR become spaces (CR LF gives two)', payload: msg({ jid: 'a\tb\nc\r\nd' }), expected: { jid: 'a b c  d' } },
  { name: 'rule 5: white space after a white-space character reference is dropped', payload: msg({ jid: 'a&#32; &#32;\nb' }), expected: { jid: 'a b' } },
  { name: 'rule 5: a DOCTYPE is refused (our deviation: the reference would answer)', payload: `<!DOCTYPE message>${msg()}`, expected: '-1', reference: ALICE },
  {
    name: 'rule 5: internal DTD entities are never expanded',
    expected: '-1',
    reference: { jid: 'alice@example.com' },
    payload: `<!DOCTYPE message [<!ENTITY who "Alice@Example.COM">]><message ${GC}><x ${MUC}><item jid='&who;'/></x></message>`,
  },
  { name: 'rule 5: billion laughs behind an XML declaration', payload: `<?xml version="1.0"?>${BILLION_LAUGHS}`, expected: '-1' },

  // Rule 6: the result.
  { name: 'rule 6: lower-cased, resource dropped', payload: msg({ jid: 'Alice@Example.COM/Res/With/Slashes' }), expected: ALICE },
  { name: 'rule 6: per-character lower-casing, no final sigma, İ to i + U+0307', payload: msg({ jid: 'ΣΑΣ@İ.PL/X' }), expected: { jid: 'σασ@i\u0307.pl' } },
  { name: 'rule 6: an empty jid is an answer', payload: msg({ jid: '' }), expected: { jid: '' } },
];

const LIMITS = DEFAULT_DECODE_LIMITS;

function code(answer: Answer): Expected {
  if (isSuccess(answer)) return { jid: answer.jid };
  return answer.reason === 'not_groupchat' ? '-2' : '-1';
}

function fromOracle(answer: OracleAnswer): Expected {
  return 'jid' in answer ? { jid: answer.jid } : answer.code;
}

const toBytes = (p: string | Uint8Array): Uint8Array => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);

describe('xml rules, case by case, against xmerl', () => {
  let oracle: OracleAnswer[] = [];
  before(async () => {
    oracle = await askXmerl(CASES.map((c) => toBytes(c.payload)));
  });

  it('the reference example is the 427 bytes of the reference tool', () => {
    assert.equal(Buffer.byteLength(REFERENCE_EXAMPLE_XML, 'utf8'), 427);
  });

  CASES.forEach((c, k) => {
    it(c.name, () => {
      const ours = extractFromXml(toBytes(c.payload), LIMITS);
      assert.deepEqual(code(ours), c.expected, `ours: ${JSON.stringify(ours)}`);
      assert.deepEqual(fromOracle(oracle[k]), c.reference ?? c.expected, 'the reference (xmerl) answers differently');
    });
  });
});

describe('xml: hostile and large input stays bounded', () => {
  const bigLimits: DecodeLimits = { ...LIMITS, maxPayloadBytes: 64 * 1024 * 1024 };

  it('a 10 MB jid attribute is read in one linear pass', () => {
    const jid = `${'A'.repeat(10 * 1024 * 1024)}@b`;
    const answer = extractFromXml(Buffer.from(msg({ jid })), bigLimits);
    assert.ok(isSuccess(answer));
    assert.equal(answer.jid.length, jid.length);
    assert.equal(answer.jid.slice(0, 3), 'aaa');
  });

  it('a 10 MB attribute elsewhere, never closed, is -1', () => {
    const payload = `<message ${GC} big='${'x'.repeat(10 * 1024 * 1024)}`;
    const answer = extractFromXml(Buffer.from(payload), bigLimits);
    assert.deepEqual(code(answer), '-1');
  });

  it('100,000 levels of nesting: -1 at the depth limit, no recursion', () => {
    const depth = 100_000;
    const payload = `<message ${GC}>${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}<x ${MUC}><item jid='a@b'/></x></message>`;
    const answer = extractFromXml(Buffer.from(payload), LIMITS);
    assert.deepEqual(code(answer), '-1');
    assert.match((answer as { detail: string }).detail, /nested deeper than 512/);
  });

  it('100,000 levels of nesting are scanned without a stack when the limit allows them', () => {
    const depth = 100_000;
    const payload = `<message ${GC}>${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}<x ${MUC}><item jid='a@b'/></x></message>`;
    const answer = extractFromXml(Buffer.from(payload), { ...LIMITS, maxDepth: depth + 10 });
    assert.deepEqual(code(answer), { jid: 'a@b' });
  });

  it('more attributes than limits.maxXmlAttributes on one element is -1 (the reference has no such limit)', () => {
    const attrs = Array.from({ length: 300 }, (_, k) => ` a${k}='${k}'`).join('');
    const payload = msg({ inside: `<big${attrs}/>` });
    assert.deepEqual(code(extractFromXml(Buffer.from(payload), LIMITS)), '-1');
    assert.deepEqual(code(extractFromXml(Buffer.from(payload), { ...LIMITS, maxXmlAttributes: 300 })), ALICE);
  });

  it('duplicate detection stays exact past the small-element fast path', () => {
    const attrs = Array.from({ length: 100 }, (_, k) => ` a${k}='${k}'`).join('');
    assert.deepEqual(code(extractFromXml(Buffer.from(msg({ inside: `<big${attrs}/>` })), LIMITS)), ALICE);
    assert.deepEqual(code(extractFromXml(Buffer.from(msg({ inside: `<big${attrs} a57='x'/>` })), LIMITS)), '-1');
    assert.deepEqual(code(extractFromXml(Buffer.from(msg({ inside: `<big a3='x'${attrs}/>` })), LIMITS)), '-1');
  });

  it('billion laughs is refused at the DOCTYPE, before any expansion', () => {
    const answer = extractFromXml(Buffer.from(BILLION_LAUGHS), LIMITS);
    assert.deepEqual(code(answer), '-1');
    assert.match((answer as { detail: string }).detail, /DOCTYPE/);
  });

  it('every failure says what and where', () => {
    const answer = extractFromXml(Buffer.from(msg({ inside: "<a b='1' b='2'/>" })), LIMITS);
    assert.ok(!isSuccess(answer));
    assert.equal(answer.reason, 'malformed');
    assert.match(answer.detail, /duplicate attribute \(at byte \d+\)/);
  });
});
