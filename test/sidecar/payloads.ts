/**
 * Payloads for the gRPC suites, made by a real Erlang VM (term_to_binary/1,2 of exml records, as
 * MongooseIM archives them) or written as XML, each with the answer the reference semantics give.
 * The expected answers come from the construction, never from the decoder under test.
 */
import { erlangEncode } from '../support/term-encoder-erlang.js';
import { MUC_USER_NS, mucMessage, xmlTerm, type MucMessageSpec } from '../../cli/demo/term-encoder.js';
import type { ErrorCodeName, ExtractItem } from '../../clients/decoder-client/index.js';

export type Expected = { readonly bareJid: string; readonly user: string; readonly server: string } | { readonly code: ErrorCodeName };

export interface Case {
  readonly name: string;
  readonly payload: Buffer;
  readonly format: 'eterm' | 'xml';
  readonly expected: Expected;
}

/** Bodies this long inflate past the small decompression limit the limit tests set. */
export const LONG_BODY_CHARS = 6_000;

const ETERM_SPECS: readonly { name: string; spec: MucMessageSpec; expected: Expected }[] = [
  { name: 'sender', spec: { jid: 'Alice@Example.COM/phone' }, expected: { bareJid: 'alice@example.com', user: 'alice', server: 'example.com' } },
  {
    name: 'unicode sender',
    spec: { jid: 'GŻEGŻÓŁKA@brzęczyszczykiewicz.pl/x' },
    expected: { bareJid: 'gżegżółka@brzęczyszczykiewicz.pl', user: 'gżegżółka', server: 'brzęczyszczykiewicz.pl' },
  },
  { name: 'chat, not groupchat', spec: { jid: 'bob@example.com', type: 'chat' }, expected: { code: 'not_groupchat' } },
  { name: 'no muc#user x', spec: { jid: 'bob@example.com', withoutX: true }, expected: { code: 'not_groupchat' } },
  { name: 'item without jid', spec: {}, expected: { code: 'malformed' } },
  { name: 'jid without local part', spec: { jid: '@example.com/r' }, expected: { code: 'jid_without_local_part' } },
  { name: 'jid without @', spec: { jid: 'example.com' }, expected: { code: 'jid_without_local_part' } },
  { name: 'jid without domain', spec: { jid: 'alice@' }, expected: { code: 'jid_without_domain' } },
  {
    name: 'long body',
    spec: { jid: 'carol@example.com', body: 'x'.repeat(LONG_BODY_CHARS) },
    expected: { bareJid: 'carol@example.com', user: 'carol', server: 'example.com' },
  },
];

function xmlMessage(jid: string, type = 'groupchat'): Buffer {
  return Buffer.from(
    `<message from='room@muc.example.com/nick' to='room@muc.example.com' id='m1' type='${type}'>` +
      `<body>hello</body><x xmlns='${MUC_USER_NS}'><item affiliation='member' jid='${jid}' role='participant'/></x></message>`,
    'utf8',
  );
}

let cached: { plain: Case[]; compressed: Case[]; xml: Case[] } | null = null;

/** Every case, as uncompressed eterm, compressed eterm and XML. One erl run per process. */
export function payloadCases(): { plain: Case[]; compressed: Case[]; xml: Case[] } {
  if (cached !== null) return cached;
  const encoded = erlangEncode(ETERM_SPECS.map((c) => xmlTerm(mucMessage(c.spec))));
  const plain = ETERM_SPECS.map((c, i): Case => ({ name: `${c.name} (eterm)`, payload: encoded[i].plain, format: 'eterm', expected: c.expected }));
  const compressed = ETERM_SPECS.map((c, i): Case => ({
    name: `${c.name} (compressed eterm)`,
    payload: encoded[i].compressed,
    format: 'eterm',
    expected: c.expected,
  }));
  const xml: Case[] = [
    {
      name: 'sender (xml)',
      payload: xmlMessage('Dave@Example.com/Home'),
      format: 'xml',
      expected: { bareJid: 'dave@example.com', user: 'dave', server: 'example.com' },
    },
    { name: 'chat (xml)', payload: xmlMessage('dave@example.com', 'chat'), format: 'xml', expected: { code: 'not_groupchat' } },
    { name: 'unclosed (xml)', payload: Buffer.from('<message type="groupchat"><x', 'utf8'), format: 'xml', expected: { code: 'malformed' } },
    { name: 'jid without domain (xml)', payload: xmlMessage('dave@'), format: 'xml', expected: { code: 'jid_without_domain' } },
  ];
  for (const c of compressed) {
    if (c.payload[1] !== 80) throw new Error(`Erlang did not compress ${c.name}: the suite needs compressed terms`);
  }
  cached = { plain, compressed, xml };
  return cached;
}

export function asItems(cases: readonly Case[], withFormat = true): ExtractItem[] {
  return cases.map((c, i) => ({ key: `${i}:${c.name}`, payload: c.payload, ...(withFormat ? { format: c.format } : {}) }));
}

/** Garbage that starts like a term: malformed in eterm and auto format. */
export const TRUNCATED_TERM = Buffer.from([131, 104, 4, 100, 0]);
