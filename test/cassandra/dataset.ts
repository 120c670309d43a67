/**
 * MongooseIM 3.3-shaped Cassandra archives: every message stored twice (`with_nick = ''` and
 * `with_nick = <nick>`, same id, nick_name and payload), payloads encoded by a real Erlang VM
 * (plain and compressed eterm), Unicode rooms, nicks and senders, and every failure kind, each
 * with what the `''` copy must hold afterwards.
 */
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { mucMessage, termToBinary, xmlTerm, type MucMessageSpec } from '../../cli/demo/term-encoder.js';
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import type { Rand } from '../../cli/demo/seeded-random.js';
import { erlangEncode } from '../support/term-encoder-erlang.js';

/** The sender's bare JID, or why the `''` copy stays null. */
export type Expected = { readonly fromJid: string } | { readonly reason: NotWrittenReason };

export interface ArchivedMessage {
  readonly roomJid: string;
  readonly nick: string;
  /** Decimal: MongooseIM's ids exceed 2^53. */
  readonly id: string;
  readonly payload: Buffer;
  readonly expected: Expected;
  /** Written by MongooseIM 3.4 already: `''` copy holds this, nick copy `''` (must stay as it is). */
  readonly alreadyFrom?: string;
}

const ROOMS = ['room1@muc.example.com', 'room2@muc.example.com', 'pokój@muc.example.com', 'кімната@muc.example.com', 'r5@muc.example.com'];
const NICKS = ['Alice', 'Żółw', 'nick with space', '😀', 'BOB', 'σίσυφος'];

const ok = (fromJid: string): Expected => ({ fromJid });
const no = (reason: NotWrittenReason): Expected => ({ reason });

interface Case {
  readonly spec?: MucMessageSpec;
  readonly raw?: Buffer;
  readonly expected: Expected;
}

const HUGE_USER = 'h'.repeat(70_000);

const CASES: Case[] = [
  { spec: { jid: 'Alice@Example.COM/Phone' }, expected: ok('alice@example.com') },
  { spec: { jid: 'bob@example.com' }, expected: ok('bob@example.com') },
  { spec: { jid: 'gżegżółka@brzęczyszczykiewicz.pl/dom' }, expected: ok('gżegżółka@brzęczyszczykiewicz.pl') },
  { spec: { jid: 'ΣΑΣ@Ελλάδα.GR/Σ' }, expected: ok('σασ@ελλάδα.gr') },
  { spec: { jid: 'İstanbul@Example.com' }, expected: ok('i\u0307stanbul@example.com') },
  { spec: { jid: 'Zoë😀@Example.com/x' }, expected: ok('zoë😀@example.com') },
  { spec: { jid: 'carol@Example.com/a/b@c' }, expected: ok('carol@example.com') },
  { spec: { jid: 'x@y@example.com' }, expected: ok('x@y@example.com') },
  // Far beyond SQL's varchar(250), fine for Cassandra's varchar.
  { spec: { jid: `${'u'.repeat(300)}@example.com` }, expected: ok(`${'u'.repeat(300)}@example.com`) },
  { spec: { jid: 'dave@example.com', type: 'chat' }, expected: no('not_groupchat') },
  { spec: { withoutX: true }, expected: no('not_groupchat') },
  { spec: {}, expected: no('malformed') },
  { raw: Buffer.from([131, 1, 2, 3]), expected: no('malformed') },
  { raw: Buffer.alloc(0), expected: no('malformed') },
  { spec: { jid: '' }, expected: no('jid_without_local_part') },
  { spec: { jid: 'example.com/res' }, expected: no('jid_without_local_part') },
  { spec: { jid: '@example.com' }, expected: no('jid_without_local_part') },
  { spec: { jid: 'erin@' }, expected: no('jid_without_domain') },
  // An indexed value is an index partition key: at most 65,535 bytes.
  { spec: { jid: `${HUGE_USER}@example.com/r` }, expected: no('jid_not_storable') },
  // Over the decoder's default 1 MiB payload limit (plain encoding: compression would shrink it).
  { raw: termToBinary(xmlTerm(mucMessage({ jid: 'big@example.com', body: 'z'.repeat(1_100_000) }))), expected: no('payload_too_large') },
];

/** A message id as MongooseIM makes them (microseconds << 8 | node). */
const FIRST_MESSAGE_ID = 399582233150625537n;

/**
 * `rowsPerCase` messages of each case (the large ones once), over the rooms and nicks, plain and
 * compressed payloads alternating; plus `alreadyMigrated` messages that MongooseIM 3.4 wrote.
 */
export function buildEdgeCaseMessages(rowsPerCase: number, rand: Rand): ArchivedMessage[] {
  const specs = CASES.filter((c) => c.spec !== undefined);
  const encoded = erlangEncode(specs.map((c) => xmlTerm(mucMessage(c.spec!))));
  const payloadOf = new Map<Case, { plain: Buffer; compressed: Buffer }>();
  specs.forEach((c, i) => payloadOf.set(c, encoded[i]));
  const messages: ArchivedMessage[] = [];
  let n = 0;
  for (let r = 0; r < rowsPerCase; r++) {
    for (const c of CASES) {
      const erl = payloadOf.get(c);
      const large = (c.raw?.length ?? 0) > 60_000 || (c.spec?.jid?.length ?? 0) > 60_000;
      if (large && r > 0) continue;
      messages.push({
        roomJid: ROOMS[Math.floor(rand() * ROOMS.length)],
        nick: NICKS[Math.floor(rand() * NICKS.length)],
        id: String(FIRST_MESSAGE_ID + BigInt(n) * 256n),
        payload: c.raw ?? (n % 2 === 0 ? erl!.compressed : erl!.plain),
        expected: c.expected,
      });
      n++;
    }
  }
  return messages;
}

/** Messages MongooseIM 3.4 archived itself: from_jid set on both copies (never decoded nor written again). */
export function buildAlreadyMigrated(count: number, rand: Rand, firstIndex: number): ArchivedMessage[] {
  const encoded = erlangEncode([xmlTerm(mucMessage({ jid: 'Newer@Example.com/r' }))])[0];
  return Array.from({ length: count }, (_, i) => ({
    roomJid: ROOMS[Math.floor(rand() * ROOMS.length)],
    nick: NICKS[Math.floor(rand() * NICKS.length)],
    id: String(FIRST_MESSAGE_ID + BigInt(firstIndex + i) * 256n),
    payload: encoded.compressed,
    expected: { fromJid: 'newer@example.com' },
    alreadyFrom: 'newer@example.com',
  }));
}

/**
 * `count` realistic messages whose payloads and answers come from Erlang (erlang-payloads.escript),
 * plain or compressed eterm at random, over `rooms` rooms and 8 nicks each.
 */
export function buildRandomMessages(count: number, seed: number, rooms: number, rand: Rand): ArchivedMessage[] {
  const records = erlangRandomMessages(count, seed);
  const messages: ArchivedMessage[] = [];
  for (let i = 0; i < count; i++) {
    const plain = records[3 * i];
    const compressed = records[3 * i + 1];
    const record = rand() < 0.5 ? plain : compressed;
    let expected: Expected;
    if ('jid' in record.expected) {
      const at = record.expected.jid.indexOf('@');
      // The generator makes user@domain senders only; anything else would need the JID rules here.
      if (at <= 0 || at === record.expected.jid.length - 1) throw new Error(`unexpected generated JID '${record.expected.jid}'`);
      expected = ok(record.expected.jid);
    } else {
      expected = no(record.expected.code === '-2' ? 'not_groupchat' : 'malformed');
    }
    const room = Math.floor(rand() * rooms);
    messages.push({
      roomJid: `room${room}@muc.example.com`,
      nick: `nick${room}-${Math.floor(rand() * 8)}`,
      id: String(FIRST_MESSAGE_ID + BigInt(i) * 256n + BigInt(Math.floor(rand() * 200))),
      payload: Buffer.from(record.payload),
      expected,
    });
  }
  return messages;
}
