/**
 * Archives whose keys a test chooses (ids of every digit count, rooms anywhere in `int`), with
 * payloads from the JavaScript term encoder (checked against Erlang by term-encoder.test.ts) and
 * each row's expected sender known from how it was made, not from a decoder.
 */
import { mucMessage, termToBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import type { ReportedRecord } from '../../clients/pipeline/report.js';
import { pairKey, rowKey, type TestDatabase } from './fixture.js';

export interface GeneratedRow {
  readonly roomId: string;
  readonly id: string;
  /** The sender's user part (server `example.com`), or null for a row that cannot be migrated (a `chat` message). */
  readonly user: string | null;
}

export const SENDER_SERVER = 'example.com';

export function generatedPayload(row: GeneratedRow): Buffer {
  if (row.user === null) return termToBinary(xmlTerm(mucMessage({ jid: 'nobody@example.com/r', type: 'chat' })));
  return termToBinary(xmlTerm(mucMessage({ jid: `${row.user}@${SENDER_SERVER}/res` })));
}

/** Inserts the rows in the order given (callers shuffle it: insertion order must not matter). */
export async function insertGenerated(db: TestDatabase, rows: readonly GeneratedRow[]): Promise<void> {
  await db.insertMessages(rows.map((r) => ({ roomId: r.roomId, id: r.id, payload: generatedPayload(r) })));
}

/**
 * Rows that end neither with their right sender nor in the report, and rows that end with a wrong
 * sender, in words (empty when every row is accounted for).
 */
export async function unaccountedRows(db: TestDatabase, rows: readonly GeneratedRow[], reported: readonly ReportedRecord[]): Promise<string[]> {
  const users = new Map((await db.users()).map((u) => [u.id, pairKey(u)]));
  const actual = await db.senderIds();
  const inReport = new Set(reported.map((r) => rowKey(r.fields.room_id, r.fields.id)));
  const problems: string[] = [];
  for (const row of rows) {
    const key = rowKey(row.roomId, row.id);
    const senderId = actual.get(key);
    const got = senderId === null || senderId === undefined ? null : (users.get(senderId) ?? `dangling ${senderId}`);
    const want = row.user === null ? null : pairKey({ user: row.user, server: SENDER_SERVER });
    if (want === null) {
      if (got !== null) problems.push(`${key}: written ${got}, must stay NULL`);
      else if (!inReport.has(key)) problems.push(`${key}: NULL and not reported`);
    } else if (got === null) {
      if (!inReport.has(key)) problems.push(`${key}: NULL and not reported (want ${want})`);
    } else if (got !== want) problems.push(`${key}: ${got} instead of ${want}`);
  }
  if (actual.size !== rows.length) problems.push(`${actual.size} rows in the table instead of ${rows.length}`);
  return problems;
}

/** A Fisher-Yates shuffle driven by `random` (a seeded generator: the order is reproducible). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A small seeded generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
