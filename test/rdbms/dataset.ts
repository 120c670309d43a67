/**
 * The rows every backend suite migrates: MongooseIM 3.3-shaped messages whose payloads a real
 * Erlang VM encoded (plain and compressed), Unicode senders, rows of every failure kind, and
 * `mam_server_user` rows that exist beforehand (rooms, and a user; rooms and users share it).
 */
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { erlangEncode } from '../support/term-encoder-erlang.js';
import { mucMessage, termToBinary, xmlTerm, type MucMessageSpec } from '../../cli/demo/term-encoder.js';

export interface Pair {
  readonly server: string;
  readonly user: string;
}

export type Expected = { readonly sender: Pair } | { readonly reason: NotWrittenReason };

export interface DatasetRow {
  readonly roomIndex: number;
  readonly id: string;
  readonly payload: Buffer;
  readonly expected: Expected;
}

export const ROOMS: Pair[] = [1, 2, 3, 4, 5].map((n) => ({ server: 'muc.example.com', user: `room${n}` }));
/** Exists before the migration: its id must be reused, never duplicated. */
export const PREEXISTING_USERS: Pair[] = [{ server: 'example.com', user: 'alice' }];

interface Case {
  readonly spec?: MucMessageSpec;
  readonly raw?: Buffer;
  readonly expected: Expected;
}

const ok = (user: string, server: string): Expected => ({ sender: { user, server } });
const no = (reason: NotWrittenReason): Expected => ({ reason });

const CASES: Case[] = [
  { spec: { jid: 'Alice@Example.COM/Phone' }, expected: ok('alice', 'example.com') },
  { spec: { jid: 'bob@example.com' }, expected: ok('bob', 'example.com') },
  { spec: { jid: 'gżegżółka@brzęczyszczykiewicz.pl/dom' }, expected: ok('gżegżółka', 'brzęczyszczykiewicz.pl') },
  { spec: { jid: 'ΣΑΣ@Ελλάδα.GR/Σ' }, expected: ok('σασ', 'ελλάδα.gr') },
  { spec: { jid: 'İstanbul@Example.com' }, expected: ok('i\u0307stanbul', 'example.com') },
  { spec: { jid: 'Zoë😀@Example.com/x' }, expected: ok('zoë😀', 'example.com') },
  // A sender whose bare JID is also a room's: the room's row is the sender's row.
  { spec: { jid: 'Room1@MUC.example.com/x' }, expected: ok('room1', 'muc.example.com') },
  { spec: { jid: 'carol@Example.com/a/b@c' }, expected: ok('carol', 'example.com') },
  { spec: { jid: 'x@y@example.com' }, expected: ok('x', 'y@example.com') },
  { spec: { jid: 'dave@example.com', type: 'chat' }, expected: no('not_groupchat') },
  { spec: { withoutX: true }, expected: no('not_groupchat') },
  { spec: {}, expected: no('malformed') },
  { raw: Buffer.from([131, 1, 2, 3]), expected: no('malformed') },
  { raw: Buffer.alloc(0), expected: no('malformed') },
  { spec: { jid: '' }, expected: no('jid_without_local_part') },
  { spec: { jid: 'example.com/res' }, expected: no('jid_without_local_part') },
  { spec: { jid: '@example.com' }, expected: no('jid_without_local_part') },
  { spec: { jid: 'erin@' }, expected: no('jid_without_domain') },
  { spec: { jid: `${'u'.repeat(300)}@example.com` }, expected: no('jid_not_storable') },
  // Over the decoder's default 1 MiB payload limit (plain encoding: compression would shrink it).
  { raw: termToBinary(xmlTerm(mucMessage({ jid: 'big@example.com', body: 'z'.repeat(1_100_000) }))), expected: no('payload_too_large') },
];

/** A message id as MongooseIM makes them (microseconds << 8 | node), beyond 2^53 on purpose. */
const FIRST_MESSAGE_ID = 399582233150625537n;

/** `rowsPerCase` rows of each case, spread over the rooms, plain and compressed payloads alternating. */
export function buildDataset(rowsPerCase = 12): DatasetRow[] {
  const specs = CASES.filter((c) => c.spec !== undefined);
  const encoded = erlangEncode(specs.map((c) => xmlTerm(mucMessage(c.spec!))));
  const payloadOf = new Map<Case, { plain: Buffer; compressed: Buffer }>();
  specs.forEach((c, i) => payloadOf.set(c, encoded[i]));
  const rows: DatasetRow[] = [];
  let n = 0;
  for (let r = 0; r < rowsPerCase; r++) {
    for (const c of CASES) {
      // The 1 MiB payload once is enough.
      if (c.raw !== undefined && c.raw.length > 1_000_000 && r > 0) continue;
      const erl = payloadOf.get(c);
      const payload = c.raw ?? (n % 2 === 0 ? erl!.compressed : erl!.plain);
      rows.push({
        roomIndex: (n * 7) % ROOMS.length,
        id: String(FIRST_MESSAGE_ID + BigInt(n) * 256n),
        payload,
        expected: c.expected,
      });
      n++;
    }
  }
  return rows;
}
