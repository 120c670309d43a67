/**
 * A larger archive than dataset.ts, for the tests that run whole processes against each other:
 * realistic MUC messages a real Erlang VM encoded (plain and compressed), each row's expected
 * sender from Erlang's own answer.
 */
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import { ROOMS } from './dataset.js';
import { pairKey, rowKey, type TestDatabase } from './fixture.js';

const FIRST_MESSAGE_ID = 399582233150625537n;

/** `room_id:id` -> `server\0user` of the sender it must end with, or null (a row that stays NULL). */
export type ExpectedSenders = Map<string, string | null>;

/** The bare JID Erlang answered, split like the backfill splits it; null when it names no user. */
export function expectedPair(jid: string): string | null {
  const at = jid.indexOf('@');
  if (at <= 0 || at === jid.length - 1) return null;
  return pairKey({ user: jid.slice(0, at), server: jid.slice(at + 1) });
}

/**
 * Fills `db` with `messages` x 2 x `copies` rows: the plain and compressed eterm of each message,
 * each stored `copies` times under its own id (many rows without minutes of Erlang).
 */
export async function seedRandomArchive(db: TestDatabase, messages: number, seed: number, copies = 1): Promise<ExpectedSenders> {
  const ids = await db.insertUsers(ROOMS);
  const roomIds = ROOMS.map((r) => ids.get(pairKey(r))!);
  const records = erlangRandomMessages(messages, seed).filter((r) => r.format === 'eterm');
  const expected: ExpectedSenders = new Map();
  const rows = Array.from({ length: records.length * copies }, (_, n) => {
    const r = records[n % records.length];
    const roomId = roomIds[n % roomIds.length];
    const id = String(FIRST_MESSAGE_ID + BigInt(n) * 256n);
    expected.set(rowKey(roomId, id), 'jid' in r.expected ? expectedPair(r.expected.jid) : null);
    return { roomId, id, payload: Buffer.from(r.payload) };
  });
  await db.insertMessages(rows);
  return expected;
}

/** Rows whose sender is not what Erlang says, in words (empty when every row is right). */
export async function wrongRows(db: TestDatabase, expected: ExpectedSenders): Promise<string[]> {
  const users = new Map((await db.users()).map((u) => [u.id, pairKey(u)]));
  const wrong: string[] = [];
  const actual = await db.senderIds();
  for (const [key, pair] of expected) {
    const senderId = actual.get(key);
    const got = senderId === null || senderId === undefined ? null : (users.get(senderId) ?? `dangling ${senderId}`);
    if (got !== pair) wrong.push(`${key}: ${JSON.stringify(got)} instead of ${JSON.stringify(pair)}`);
  }
  if (actual.size !== expected.size) wrong.push(`${actual.size} rows instead of ${expected.size}`);
  return wrong;
}
