/**
 * MongooseIM 3.3-shaped archive rows for the demo and the benchmark: rooms and senders in
 * mam_server_user (rooms exist, as MongooseIM creates them with the first message; senders do not,
 * 3.3 never stored them), messages with compressed eterm payloads from the JS term encoder, and a
 * few rows no migration can write (not groupchat, truncated, JID without local part).
 */
import type pg from 'pg';
import { mucMessage, termToBinary, termToCompressedBinary, xmlTerm } from './term-encoder.js';
import { seededRandom } from './seeded-random.js';

const WORDS = ['hello', 'meeting', 'at', 'noon', 'zażółć', 'gęślą', 'jaźń', 'ok', 'see', 'you', 'thanks', 'Ελλάδα', '🙂', 'lunch', 'deploy', 'done'];
const DOMAINS = ['example.com', 'Example.org', 'chat.example.net', 'brzęczyszczykiewicz.pl'];
const FIRST_MESSAGE_ID = 399582233150625537n;
const INSERT_CHUNK = 5000;

export interface FilledArchive {
  readonly rooms: number;
  readonly senders: number;
  /** Rows whose sender cannot be written (they stay NULL and go to the report). */
  readonly undecodable: number;
}

export function demoPayload(n: number, random: () => number, senders: number): { payload: Buffer; undecodable: boolean } {
  const sender = Math.floor(random() * senders);
  const jid = `${sender % 7 === 0 ? 'Ünïcødé' : 'User'}${sender}@${DOMAINS[sender % DOMAINS.length]}/res${n % 3}`;
  const body = Array.from({ length: 3 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
  const roll = random();
  if (roll < 0.002) return { payload: termToCompressedBinary(xmlTerm(mucMessage({ jid, body, type: 'chat' }))), undecodable: true };
  if (roll < 0.003) return { payload: termToBinary(xmlTerm(mucMessage({ jid, body }))).subarray(0, 40), undecodable: true };
  if (roll < 0.004) return { payload: termToCompressedBinary(xmlTerm(mucMessage({ jid: `host${n}.example.com/r`, body }))), undecodable: true };
  return { payload: termToCompressedBinary(xmlTerm(mucMessage({ jid, body, id: `m${n}` }))), undecodable: false };
}

export async function fillDemoArchive(client: pg.Client, rows: number, seed = 42): Promise<FilledArchive> {
  const random = seededRandom(seed);
  const rooms = Math.max(1, Math.min(1000, Math.ceil(rows / 500)));
  const senders = Math.max(1, Math.min(50_000, Math.ceil(rows / 20)));
  const roomIds: number[] = [];
  const { rows: inserted } = await client.query<{ id: number }>(
    `INSERT INTO mam_server_user (server, user_name) SELECT 'muc.example.com', 'room' || g FROM generate_series(1, $1) g RETURNING id`,
    [rooms],
  );
  for (const r of inserted) roomIds.push(r.id);
  let undecodable = 0;
  for (let start = 0; start < rows; start += INSERT_CHUNK) {
    const count = Math.min(INSERT_CHUNK, rows - start);
    const room: number[] = [];
    const id: string[] = [];
    const message: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const n = start + i;
      const made = demoPayload(n, random, senders);
      if (made.undecodable) undecodable++;
      room.push(roomIds[Math.floor(random() * roomIds.length)]);
      id.push(String(FIRST_MESSAGE_ID + BigInt(n) * 256n));
      message.push(made.payload);
    }
    await client.query(
      `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
         SELECT r, i, 'nick', m, '' FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS v(r, i, m)`,
      [room, id, message],
    );
  }
  await client.query('ANALYZE mam_muc_message');
  return { rooms, senders, undecodable };
}
