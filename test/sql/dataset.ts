/**
 * The rows every backend suite migrates: MongooseIM 3.3-shaped messages whose payloads a real
 * Erlang VM encoded (plain and compressed), Unicode senders, rows of every failure kind, and
 * `mam_server_user` rows that exist beforehand (rooms, and a user; rooms and users share it).
 */
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { erlangOracle, type ExpectedAnswer } from '../support/erlang-payloads.js';
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

/**
 * A payload and, when the backfill must leave its row NULL, why. The sender of every other row is
 * what Erlang reads from the payload (`erlangOracle`), never written here by hand.
 */
interface Case {
  readonly spec?: MucMessageSpec;
  readonly raw?: Buffer;
  /** A decoding failure: Erlang must answer -1 or -2 for it too. */
  readonly fails?: NotWrittenReason;
  /** Erlang reads a sender, but the store or the decoder's limits refuse it. */
  readonly refused?: NotWrittenReason;
}

const CASES: Case[] = [
  { spec: { jid: 'Alice@Example.COM/Phone' } },
  { spec: { jid: 'bob@example.com' } },
  { spec: { jid: 'gżegżółka@brzęczyszczykiewicz.pl/dom' } },
  { spec: { jid: 'ΣΑΣ@Ελλάδα.GR/Σ' } },
  { spec: { jid: 'İstanbul@Example.com' } },
  { spec: { jid: 'Zoë😀@Example.com/x' } },
  // A sender whose bare JID is also a room's: the room's row is the sender's row.
  { spec: { jid: 'Room1@MUC.example.com/x' } },
  { spec: { jid: 'carol@Example.com/a/b@c' } },
  { spec: { jid: 'x@y@example.com' } },
  { spec: { jid: 'dave@example.com', type: 'chat' }, fails: 'not_groupchat' },
  { spec: { withoutX: true }, fails: 'not_groupchat' },
  { spec: {}, fails: 'malformed' },
  { raw: Buffer.from([131, 1, 2, 3]), fails: 'malformed' },
  { raw: Buffer.alloc(0), fails: 'malformed' },
  { spec: { jid: '' }, fails: 'jid_without_local_part' },
  { spec: { jid: 'example.com/res' }, fails: 'jid_without_local_part' },
  { spec: { jid: '@example.com' }, fails: 'jid_without_local_part' },
  { spec: { jid: 'erin@' }, fails: 'jid_without_domain' },
  { spec: { jid: `${'u'.repeat(300)}@example.com` }, refused: 'jid_not_storable' },
  // Over the decoder's default 1 MiB payload limit (plain encoding: compression would shrink it).
  { raw: termToBinary(xmlTerm(mucMessage({ jid: 'big@example.com', body: 'z'.repeat(1_100_000) }))), refused: 'payload_too_large' },
];

/** What a row must end with, from Erlang's answer for its payload and what the case says. */
function expectationOf(c: Case, answer: ExpectedAnswer, what: string): Expected {
  if (c.fails !== undefined) {
    if ('jid' in answer && answer.jid.indexOf('@') > 0 && !answer.jid.endsWith('@')) {
      throw new Error(`dataset: Erlang reads sender ${answer.jid} from ${what}, which the case says fails with ${c.fails}`);
    }
    return { reason: c.fails };
  }
  if (!('jid' in answer)) throw new Error(`dataset: Erlang answers ${answer.code} for ${what}, which the case says has a sender`);
  if (c.refused !== undefined) return { reason: c.refused };
  const at = answer.jid.indexOf('@');
  return { sender: { user: answer.jid.slice(0, at), server: answer.jid.slice(at + 1) } };
}

/** A message id as MongooseIM makes them (microseconds << 8 | node), beyond 2^53 on purpose. */
const FIRST_MESSAGE_ID = 399582233150625537n;

/** `rowsPerCase` rows of each case, spread over the rooms, plain and compressed payloads alternating. */
export function buildDataset(rowsPerCase = 12): DatasetRow[] {
  const specs = CASES.filter((c) => c.spec !== undefined);
  const encoded = erlangEncode(specs.map((c) => xmlTerm(mucMessage(c.spec!))));
  const payloadOf = new Map<Case, { plain: Buffer; compressed: Buffer }>();
  specs.forEach((c, i) => payloadOf.set(c, encoded[i]));
  const payloads: { c: Case; payload: Buffer; roomIndex: number; id: string }[] = [];
  let n = 0;
  for (let r = 0; r < rowsPerCase; r++) {
    for (const c of CASES) {
      // The 1 MiB payload once is enough.
      if (c.raw !== undefined && c.raw.length > 1_000_000 && r > 0) continue;
      const erl = payloadOf.get(c);
      const payload = c.raw ?? (n % 2 === 0 ? erl!.compressed : erl!.plain);
      payloads.push({ c, payload, roomIndex: (n * 7) % ROOMS.length, id: String(FIRST_MESSAGE_ID + BigInt(n) * 256n) });
      n++;
    }
  }
  const answers = erlangOracle(payloads.map((p) => p.payload));
  return payloads.map((p, i) => ({
    roomIndex: p.roomIndex,
    id: p.id,
    payload: p.payload,
    expected: expectationOf(p.c, answers[i], `payload ${i} (${p.c.spec === undefined ? 'raw bytes' : JSON.stringify(p.c.spec)})`),
  }));
}
