/**
 * Seeded generators of MongooseIM-shaped XML payloads (as `exml:to_binary` writes them: no XML
 * declaration, single-quoted attributes, the muc#user `<x>` appended last) for the xml decoder's
 * differential tests and its benchmark. The same seed always gives the same payloads.
 */

import type { Rand } from '../../cli/demo/seeded-random.js';

export const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)];
export const chance = (rand: Rand, p: number): boolean => rand() < p;
const int = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

export const MUC_USER = 'http://jabber.org/protocol/muc#user';

/** exml's escaping: attribute values and text. */
export function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}
export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const WORDS = [
  'hello',
  'room',
  'meeting',
  'at',
  'noon',
  'ok',
  'thanks',
  'Zażółć',
  'gęślą',
  'jaźń',
  'ΣΑΣ',
  'İstanbul',
  'straße',
  'こんにちは',
  '😀',
  'a&b',
  '<tag>',
  '"quoted"',
  "it's",
  'x > y',
  '1 < 2',
  'ünïcödé',
  'lorem',
  'ipsum',
];
const USERS = ['alice', 'Bob', 'gżegżółka', 'ΣΑΣ', 'İlker', 'STRASSE', "o'neil", 'x&y', 'user.name-1'];
const DOMAINS = ['localhost', 'Example.COM', 'brzęczyszczykiewicz.pl', 'chat.shakespeare.lit', 'xn--bcher-kva.example'];
const RESOURCES = ['', '/Phone', '/res/with/slashes', '/ΣΑΣ', '/Gajim.1A2B'];

export function body(rand: Rand): string {
  const target = int(rand, 20, 420);
  let s = '';
  while ([...s].length < target) s += (s ? ' ' : '') + pick(rand, WORDS);
  return [...s].slice(0, target).join('');
}

export function senderJid(rand: Rand): string {
  return `${pick(rand, USERS)}@${pick(rand, DOMAINS)}${pick(rand, RESOURCES)}`;
}

/** A stored MongooseIM 3.x MUC message; 2% are one-to-one chats (no muc#user `<x>`). */
export function realisticMessage(rand: Rand): string {
  const id = Math.floor(rand() * 1e12)
    .toString(16)
    .toUpperCase();
  const room = `room${int(rand, 1, 999)}@muc.${pick(rand, DOMAINS)}`;
  if (chance(rand, 0.02)) {
    return (
      `<message xmlns='jabber:client' from='${escapeAttr(senderJid(rand))}' to='${escapeAttr(senderJid(rand))}'` +
      ` id='${id}' type='chat'><body>${escapeText(body(rand))}</body></message>`
    );
  }
  const affiliation = pick(rand, ['owner', 'admin', 'member', 'none']);
  const role = pick(rand, ['moderator', 'participant', 'visitor']);
  return (
    `<message xmlns='jabber:client' from='${escapeAttr(room)}/nick${int(rand, 1, 99)}' to='${escapeAttr(room)}'` +
    ` id='${id}' type='groupchat'><body>${escapeText(body(rand))}</body>` +
    `<x xmlns='${MUC_USER}'><item affiliation='${affiliation}' jid='${escapeAttr(senderJid(rand))}' role='${role}'/></x></message>`
  );
}

// ---- varied, well-formed messages for the differential tests -------------------------------

interface Attr {
  name: string;
  value: string;
}

/** Spells an attribute value: raw escapes, with random (still well-formed) reference styles. */
function spellValue(rand: Rand, value: string, plain: boolean): string {
  let out = '';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (ch === '&') out += pick(rand, ['&amp;', '&#38;', '&#x26;']);
    else if (ch === '<') out += pick(rand, ['&lt;', '&#60;']);
    else if (ch === "'") out += pick(rand, ['&apos;', '&#39;']);
    else if (ch === '"') out += pick(rand, ['&quot;', '&#x22;']);
    else if (chance(rand, 0.05) && !(plain && /\s/u.test(ch))) out += chance(rand, 0.5) ? `&#${cp};` : `&#x${cp.toString(16)};`;
    else if (!plain && chance(rand, 0.002)) out += pick(rand, ['\t', '\n', '\r\n', '&#32; ', '&#10;&#x20;']) + ch;
    else out += ch;
  }
  return out;
}

function spellAttrs(rand: Rand, attrs: Attr[], plainRefs: boolean): string {
  let s = '';
  for (const a of attrs) {
    const q = chance(rand, 0.7) ? "'" : '"';
    const eq = pick(rand, ['=', '=', '=', ' = ', '\n=\t']);
    s += pick(rand, [' ', ' ', '  ', '\n  ', '\t']) + a.name + eq + q + spellValue(rand, a.value, plainRefs) + q;
  }
  return s + pick(rand, ['', '', ' ', '\n']);
}

function shuffle<T>(rand: Rand, xs: T[]): T[] {
  for (let k = xs.length - 1; k > 0; k--) {
    const j = Math.floor(rand() * (k + 1));
    [xs[k], xs[j]] = [xs[j], xs[k]];
  }
  return xs;
}

function element(rand: Rand, name: string, attrs: Attr[], children: string, plainRefs: boolean): string {
  const open = `<${name}${spellAttrs(rand, shuffle(rand, attrs), plainRefs)}`;
  if (children === '' && chance(rand, 0.5)) return `${open}/>`;
  return `${open}>${children}</${name}${chance(rand, 0.1) ? ' ' : ''}>`;
}

function filler(rand: Rand): string {
  return pick(rand, [
    '',
    '',
    '',
    '\n  ',
    '<!-- note -->',
    '<?pi data?>',
    '<![CDATA[ <raw> & ]] ]]>',
    'text & more'.replace('&', '&amp;'),
    '<delay xmlns="urn:xmpp:delay" stamp="2019-06-18T12:00:00Z"/>',
    '<thread>t1</thread>',
    '<subject>s</subject>',
  ]);
}

/**
 * A well-formed message with the variations the rules care about: root name and prefix, type,
 * namespaces declared or inherited, several `x` and `item`, deeper jids, references in values.
 * `plainRefs` keeps to spellings every parser decodes alike: no literal TAB/LF/CR and no white-space
 * character references inside values (xmerl's attribute-value normalisation is its own).
 */
export function variedMessage(rand: Rand, plainRefs = false): string {
  const rootName = chance(rand, 0.9) ? 'message' : pick(rand, ['m:message', 'presence']);
  const rootAttrs: Attr[] = [];
  const type = chance(rand, 0.85) ? 'groupchat' : pick(rand, ['chat', 'GROUPCHAT', 'normal', '', null]);
  if (type !== null) rootAttrs.push({ name: 'type', value: type });
  const rootNs = pick(rand, [null, 'jabber:client', 'jabber:client', MUC_USER]);
  if (rootNs !== null) rootAttrs.push({ name: 'xmlns', value: rootNs });
  if (rootName.startsWith('m:') || chance(rand, 0.1)) rootAttrs.push({ name: 'xmlns:m', value: 'jabber:client' });
  rootAttrs.push({ name: 'id', value: Math.floor(rand() * 1e9).toString(36) });
  if (chance(rand, 0.8)) rootAttrs.push({ name: 'from', value: senderJid(rand) });
  if (chance(rand, 0.5)) rootAttrs.push({ name: 'to', value: senderJid(rand) });

  const children: string[] = [filler(rand), `<body>${escapeText(body(rand))}</body>`];
  const xCount = chance(rand, 0.85) ? 1 : pick(rand, [0, 2, 3]);
  for (let k = 0; k < xCount; k++) children.push(filler(rand), xElement(rand, plainRefs));
  children.push(filler(rand));
  const payload = element(rand, rootName, rootAttrs, shuffleTail(rand, children).join(''), plainRefs);
  const lead = pick(rand, ['', '', '', ' \n', '<!-- archived -->', '<?mim v1?>\n']);
  const trail = pick(rand, ['', '', '', '\n', ' <!-- end -->', 'garbage after the root', '<other/>']);
  return lead + payload + trail;
}

function shuffleTail(rand: Rand, xs: string[]): string[] {
  return chance(rand, 0.2) ? shuffle(rand, xs) : xs;
}

function xElement(rand: Rand, plainRefs: boolean): string {
  const prefixed = chance(rand, 0.04);
  const name = prefixed ? 'u:x' : chance(rand, 0.95) ? 'x' : 'y';
  const attrs: Attr[] = [];
  const ns = chance(rand, 0.85) ? MUC_USER : pick(rand, [null, 'jabber:x:conference', '']);
  if (prefixed) attrs.push({ name: 'xmlns:u', value: MUC_USER });
  if (ns !== null) attrs.push({ name: 'xmlns', value: ns });
  if (chance(rand, 0.1)) attrs.push({ name: 'extra', value: '1' });
  const items: string[] = [];
  const itemCount = chance(rand, 0.9) ? 1 : pick(rand, [0, 2]);
  for (let k = 0; k < itemCount; k++) {
    const itemName = chance(rand, 0.05) ? 'u:item' : chance(rand, 0.05) ? 'items' : 'item';
    const itemAttrs: Attr[] = [
      { name: 'affiliation', value: pick(rand, ['none', 'member', 'owner']) },
      { name: 'role', value: pick(rand, ['participant', 'moderator']) },
    ];
    if (chance(rand, 0.95)) itemAttrs.push({ name: chance(rand, 0.05) ? 'u:jid' : 'jid', value: senderJid(rand) });
    const inner = chance(rand, 0.1) ? `<actor jid='${escapeAttr(senderJid(rand))}'/>` : chance(rand, 0.05) ? '<reason>r</reason>' : '';
    items.push(element(rand, itemName, itemAttrs, inner, plainRefs));
  }
  if (chance(rand, 0.05)) items.push(`<status code='100'/>`);
  return element(rand, name, attrs, items.join(chance(rand, 0.2) ? '\n' : ''), plainRefs);
}

// ---- mutations: mostly malformed variants for the xmerl differential ------------------------

const INSERTS: readonly (string | number[])[] = [
  '<',
  '>',
  '&',
  '&amp',
  '&#0;',
  '&#xD800;',
  '&bogus;',
  ']]>',
  '--',
  '"',
  "'",
  '=',
  '/',
  '</x>',
  '<x>',
  '<!--',
  '-->',
  '<?xml version="1.0"?>',
  '<?xml-stylesheet a?>',
  '<!DOCTYPE x>',
  '<![CDATA[',
  ' ',
  '\t',
  '\r\n',
  ':',
  'xmlns',
  ' a="1" a="2"',
  ' type="chat"',
  ' jid="z@z"',
  [0x00],
  [0x1f],
  [0xc3],
  [0xff],
  [0xed, 0xa0, 0x80],
  [0xef, 0xbf, 0xbe],
  [0xc3, 0xa9],
  '&#32;',
  '&#10;',
  '\u00b7',
  '\u0300',
  'é',
  '一',
  'Ĳ',
  // Near the reference's Erlang-atom limit (255 characters) for names and namespace names.
  'n'.repeat(130),
  'é'.repeat(130),
  '一'.repeat(130),
  ` xmlns:q='${'u'.repeat(250)}'`,
  ` xmlns='${MUC_USER}${'/'.repeat(220)}'`,
];

/** A random mutation of a payload: byte flips, inserts of markup-significant text, cuts, swaps. */
export function mutate(rand: Rand, payload: Uint8Array): Uint8Array {
  const b = Buffer.from(payload);
  const at = Math.floor(rand() * (b.length + 1));
  switch (Math.floor(rand() * 6)) {
    case 0: {
      // flip one byte
      if (b.length === 0) return b;
      const c = Buffer.from(b);
      c[Math.min(at, b.length - 1)] = Math.floor(rand() * 256);
      return c;
    }
    case 1: {
      // delete a short run
      const len = int(rand, 1, 4);
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]);
    }
    case 2: // truncate
      return b.subarray(0, at);
    case 3: {
      // duplicate a short run
      const len = int(rand, 1, 12);
      return Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
    }
    default: {
      // insert something markup-significant
      const ins = pick(rand, INSERTS);
      const bytes = typeof ins === 'string' ? Buffer.from(ins, 'utf8') : Buffer.from(ins);
      return Buffer.concat([b.subarray(0, at), bytes, b.subarray(at)]);
    }
  }
}
