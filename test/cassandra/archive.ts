/**
 * A MongooseIM archive keyspace on the test node: 3.3's `mam_muc_message` (no from_jid, the
 * room_jid index), both copies of each message written as MongooseIM writes them, and a full
 * read of both copies back for the assertions.
 */
import cassandra from 'cassandra-driver';
import { isTransientCassandraError } from '../../clients/backends/cassandra/transient-errors.js';
import type { ArchivedMessage } from './dataset.js';

export async function connectTestClient(contactPoint: string): Promise<cassandra.Client> {
  const client = new cassandra.Client({
    contactPoints: [contactPoint],
    localDataCenter: 'datacenter1',
    encoding: { useBigIntAsLong: true },
    socketOptions: { readTimeout: 60_000 },
  });
  await client.connect();
  return client;
}

/**
 * MongooseIM 3.3.0's priv/cassandra.cql for the MUC archive, with replication factor 1 (one test
 * node; the schema file's SimpleStrategy RF 3 could not reach LOCAL_QUORUM on it).
 */
export async function createMongooseIm33Keyspace(client: cassandra.Client, keyspace: string): Promise<void> {
  await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(
    `CREATE TABLE ${keyspace}.mam_muc_message (id bigint, room_jid varchar, nick_name varchar, with_nick varchar, message blob, ` +
      'PRIMARY KEY ((room_jid, with_nick), id)) WITH CLUSTERING ORDER BY (id DESC)',
  );
  await client.execute(`CREATE INDEX ON ${keyspace}.mam_muc_message (room_jid)`);
}

/** Bytes of one single-partition UNLOGGED batch while loading (the node refuses batches over 50 KiB). */
const LOAD_BATCH_BYTES = 40_000;
const LOAD_IN_FLIGHT = 16;
const LOAD_ATTEMPTS = 5;

/**
 * Writes both copies of every message (3.3 never sets from_jid; 3.4's rows, `alreadyFrom`, get
 * it on both copies as 3.4 writes them). Rows of one partition go in small unlogged batches.
 */
export async function loadMessages(client: cassandra.Client, keyspace: string, messages: readonly ArchivedMessage[]): Promise<void> {
  const plain = `INSERT INTO ${keyspace}.mam_muc_message (id, room_jid, nick_name, with_nick, message) VALUES (?, ?, ?, ?, ?)`;
  const with34 = `INSERT INTO ${keyspace}.mam_muc_message (id, room_jid, nick_name, with_nick, message, from_jid) VALUES (?, ?, ?, ?, ?, ?)`;
  const byPartition = new Map<string, { query: string; params: unknown[]; bytes: number }[]>();
  const add = (m: ArchivedMessage, withNick: string): void => {
    const key = `${m.roomJid}\u0000${withNick}`;
    const fromJid = m.alreadyFrom === undefined ? undefined : withNick === '' ? m.alreadyFrom : '';
    const params = [BigInt(m.id), m.roomJid, m.nick, withNick, m.payload, ...(fromJid === undefined ? [] : [fromJid])];
    const list = byPartition.get(key) ?? [];
    list.push({ query: fromJid === undefined ? plain : with34, params, bytes: m.payload.length + 100 });
    byPartition.set(key, list);
  };
  for (const m of messages) {
    add(m, '');
    add(m, m.nick);
  }
  const batches: { query: string; params: unknown[] }[][] = [];
  for (const rows of byPartition.values()) {
    let batch: { query: string; params: unknown[] }[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (batch.length > 0 && bytes + row.bytes > LOAD_BATCH_BYTES) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(row);
      bytes += row.bytes;
    }
    if (batch.length > 0) batches.push(batch);
  }
  let next = 0;
  const write = (batch: { query: string; params: unknown[] }[]) =>
    batch.length === 1 ? client.execute(batch[0].query, batch[0].params, { prepare: true }) : client.batch(batch, { prepare: true, logged: false });
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++];
      // Inserts are idempotent: a write timeout on a busy shared machine is tried again (bounded).
      for (let attempt = 1; ; attempt++) {
        try {
          await write(batch);
          break;
        } catch (error) {
          if (attempt >= LOAD_ATTEMPTS || !isTransientCassandraError(error)) throw error;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_IN_FLIGHT }, worker));
}

export interface StoredRow {
  readonly roomJid: string;
  readonly withNick: string;
  readonly id: string;
  readonly nickName: string | null;
  readonly fromJid: string | null;
}

export function rowKey(roomJid: string, withNick: string, id: string): string {
  return `${roomJid}\u0000${withNick}\u0000${id}`;
}

/** Every row of the table (both copies), keyed by `rowKey`. */
export async function readAllRows(client: cassandra.Client, keyspace: string): Promise<Map<string, StoredRow>> {
  const rows = new Map<string, StoredRow>();
  let pageState: string | undefined;
  for (let pages = 0; pages < 100_000; pages++) {
    const result = await client.execute(`SELECT room_jid, with_nick, id, nick_name, from_jid FROM ${keyspace}.mam_muc_message`, [], {
      prepare: true,
      fetchSize: 5000,
      pageState,
    });
    for (const r of result.rows) {
      const row: StoredRow = {
        roomJid: r['room_jid'],
        withNick: r['with_nick'],
        id: String(r['id']),
        nickName: r['nick_name'],
        fromJid: r['from_jid'] ?? null,
      };
      rows.set(rowKey(row.roomJid, row.withNick, row.id), row);
    }
    pageState = result.pageState ?? undefined;
    if (pageState === undefined) return rows;
  }
  throw new Error('readAllRows: more than 100,000 pages');
}

/** What every row must hold after a complete backfill of `messages`. */
export function expectedRows(messages: readonly ArchivedMessage[], fillNickCopies: boolean): Map<string, string | null> {
  const expected = new Map<string, string | null>();
  for (const m of messages) {
    const blank = m.alreadyFrom ?? ('fromJid' in m.expected ? m.expected.fromJid : null);
    const nickCopy = m.alreadyFrom !== undefined || fillNickCopies ? '' : null;
    expected.set(rowKey(m.roomJid, '', m.id), blank);
    if (m.nick !== '') expected.set(rowKey(m.roomJid, m.nick, m.id), nickCopy);
  }
  return expected;
}
