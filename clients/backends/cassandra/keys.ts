/** What names one row of `mam_muc_message`, and where a walk through a token range stands. */

/** Primary key `((room_jid, with_nick), id)`; `id` as a decimal string (it exceeds 2^53). */
export interface CassandraRowKey {
  readonly roomJid: string;
  readonly withNick: string;
  readonly id: string;
}

/**
 * The last row done in a token range: its partition's token and its full key. The walk goes on
 * with the rest of that partition (`id` below it: rows are stored `id DESC`), then with the
 * partitions of larger tokens. Plain strings so that it is stored and compared as it is.
 */
export interface RangeCursor extends CassandraRowKey {
  readonly token: string;
}

export function sameCursor(a: RangeCursor | null, b: RangeCursor | null): boolean {
  if (a === null || b === null) return a === b;
  return a.token === b.token && a.roomJid === b.roomJid && a.withNick === b.withNick && a.id === b.id;
}

export function describeRowKey(key: CassandraRowKey): Record<string, string> {
  return { room_jid: key.roomJid, with_nick: key.withNick, id: key.id };
}

export function describeRangeCursor(cursor: RangeCursor): string {
  return `token ${cursor.token} (room_jid '${cursor.roomJid}', with_nick '${cursor.withNick}', id ${cursor.id})`;
}
