/**
 * PostgreSQL backend for the sender_id backfill (MongooseIM 3.3 schema, `pg` driver).
 *
 * - pages: `WHERE sender_id IS NULL AND (room_id, id) > ($1, $2) ORDER BY room_id, id LIMIT n`,
 *   the primary key's order (keyset, never OFFSET);
 * - ids: one select of the batch's distinct (server, user_name) pairs, one
 *   `INSERT ... ON CONFLICT DO NOTHING` for the missing ones, one select again; committed on their
 *   own before the batch's transaction, like MongooseIM's own lazy inserts, so that the unique
 *   constraint settles races with MongooseIM or another shard and the cache only holds real ids;
 * - write: `UPDATE ... FROM unnest($1::int[], $2::bigint[], $3::int[])` only where sender_id is
 *   still NULL, plus the checkpoint upsert, in one transaction.
 */
import pg from 'pg';
import { Mutex, SenderIdCache, senderCacheKey, senderIdsOf } from './sender-id-cache.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from '../../pipeline/ordering.js';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { shardName, type SchemaStatus, type ShardSpec } from '../../pipeline/types.js';
import { UsageError, type BackendDefinition } from '../registry.js';
import { sqlVerifySample, SqlBackend, type RowKey, type SenderWrite, type SourceRow, type SqlVerifySample } from './sql-backend.js';

export const CHECKPOINT_TABLE = 'mim_sender_jid_checkpoint';
/** `varchar(250)` in `mam_server_user`: PostgreSQL counts characters. */
export const MAX_JID_PART_CHARS = 250;
/** Below this many estimated rows, count exactly (statistics of small or fresh tables are poor). */
const EXACT_COUNT_BELOW = 2_000_000;

export const PG_SCHEMA_STATEMENTS = {
  column: 'ALTER TABLE mam_muc_message ADD COLUMN sender_id INT;',
  index: 'CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id);',
} as const;

// SQLSTATE classes/codes worth a retry: connection exceptions (08), admin shutdown and
// cannot-connect-now (57P01..57P03), serialization failure and deadlock (40001, 40P01).
const TRANSIENT_SQLSTATES = /^(08...|57P0[123]|40001|40P01|53300)$/;

export interface PostgresBackendOptions {
  readonly url: string;
  /** Connections: the reader, plus one per batch in flight. */
  readonly poolSize?: number;
}

export class PostgresBackend extends SqlBackend {
  readonly name = 'postgres';
  private readonly pool: pg.Pool;
  private readonly cache = new SenderIdCache();
  private readonly resolving = new Mutex();

  constructor(options: PostgresBackendOptions) {
    super();
    this.pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 6 });
    // An idle client losing its server must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
    // Nor one that loses it while checked out between two queries (the server's "terminating
    // connection" notice arrives as an event): the next query on it fails, which is what counts.
    this.pool.on('connect', (client) => {
      client.on('error', () => {});
    });
  }

  async checkSchema(): Promise<SchemaStatus> {
    const { rows } = await this.pool.query<{ column: boolean; index: boolean; table: boolean }>(
      `SELECT to_regclass('mam_muc_message') IS NOT NULL AS table,
              EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = current_schema() AND table_name = 'mam_muc_message' AND column_name = 'sender_id') AS column,
              EXISTS (SELECT 1 FROM pg_indexes
                       WHERE schemaname = current_schema() AND tablename = 'mam_muc_message' AND indexname = 'i_mam_muc_message_sender_id') AS index`,
    );
    const r = rows[0];
    if (!r.table) throw new Error('table mam_muc_message not found in the current schema: is this a MongooseIM database?');
    const missing: string[] = [];
    const statements: string[] = [];
    if (!r.column) {
      missing.push('column sender_id is missing');
      statements.push(PG_SCHEMA_STATEMENTS.column);
    }
    if (!r.index) {
      missing.push('index i_mam_muc_message_sender_id is missing');
      statements.push(PG_SCHEMA_STATEMENTS.index);
    }
    return { ready: missing.length === 0, missing, statements };
  }

  async applySchema(): Promise<string[]> {
    const { statements } = await this.checkSchema();
    for (const statement of statements) await this.pool.query(statement);
    return statements;
  }

  async prepareCheckpoints(): Promise<void> {
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
         shard text PRIMARY KEY,
         last_room_id bigint NOT NULL,
         last_id bigint NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now())`,
    );
  }

  protected async readShardCheckpoint(shard: ShardSpec): Promise<RowKey | null> {
    const { rows } = await this.pool.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [CHECKPOINT_TABLE]);
    if (!rows[0].exists) return null;
    const result = await this.pool.query<{ last_room_id: string; last_id: string }>(
      `SELECT last_room_id::text, last_id::text FROM ${CHECKPOINT_TABLE} WHERE shard = $1`,
      [shardName(shard)],
    );
    const row = result.rows[0];
    return row === undefined ? null : { roomId: row.last_room_id, id: row.last_id };
  }

  protected async deleteShardCheckpoint(shard: ShardSpec): Promise<void> {
    await this.pool.query(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = $1`, [shardName(shard)]);
  }

  protected async estimateRows(shard: ShardSpec): Promise<number> {
    const { rows } = await this.pool.query<{ reltuples: number }>(
      `SELECT reltuples::float8 AS reltuples FROM pg_class WHERE oid = to_regclass('mam_muc_message')`,
    );
    const total = rows[0]?.reltuples ?? -1;
    if (total >= 0 && total >= EXACT_COUNT_BELOW) return Math.round(total / shard.count);
    const exact = await this.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM mam_muc_message WHERE sender_id IS NULL${shardFilter(shard, 1).sql}`,
      shardFilter(shard, 1).params,
    );
    return Number(exact.rows[0].n);
  }

  protected async readRows(after: RowKey | null, limit: number, shard: ShardSpec): Promise<SourceRow[]> {
    const params: unknown[] = [];
    let where = 'sender_id IS NULL';
    if (after !== null) {
      params.push(after.roomId, after.id);
      where += ' AND (room_id, id) > ($1::int, $2::bigint)';
    }
    const sf = shardFilter(shard, params.length + 1);
    where += sf.sql;
    params.push(...sf.params, limit);
    const { rows } = await this.pool.query<{ room_id: number; id: string; message: Buffer }>({
      text: `SELECT room_id, id, message FROM mam_muc_message WHERE ${where} ORDER BY room_id, id LIMIT $${params.length}`,
      values: params,
    });
    return rows.map((r) => ({ key: { roomId: String(r.room_id), id: r.id }, payload: r.message }));
  }

  checkStorable(user: string, server: string): string | null {
    return checkPostgresStorable(user, server);
  }

  /** Ids of every pair, creating the missing `mam_server_user` rows (committed, race-safe). */
  async resolveSenderIds(writes: readonly SenderWrite[]): Promise<Map<string, string>> {
    const { ids, missing } = this.cache.lookup(writes);
    if (missing.length === 0) return ids;
    const servers = missing.map((p) => p.server);
    const users = missing.map((p) => p.user);
    const select = async (): Promise<number> => {
      const { rows } = await this.pool.query<{ id: string; server: string; user_name: string }>(
        `SELECT u.id::text AS id, u.server, u.user_name FROM mam_server_user u
           JOIN unnest($1::text[], $2::text[]) AS p(server, user_name)
             ON u.server = p.server AND u.user_name = p.user_name`,
        [servers, users],
      );
      for (const r of rows) {
        this.cache.set(r.server, r.user_name, r.id);
        ids.set(senderCacheKey(r.server, r.user_name), r.id);
      }
      return rows.length;
    };
    if ((await select()) === missing.length) return ids;
    await this.pool.query(
      `INSERT INTO mam_server_user (server, user_name)
         SELECT p.server, p.user_name FROM unnest($1::text[], $2::text[]) AS p(server, user_name)
         ON CONFLICT DO NOTHING`,
      [servers, users],
    );
    const found = await select();
    if (found !== missing.length) {
      throw new Error(`mam_server_user: ${missing.length - found} of ${missing.length} senders still missing after insert`);
    }
    return ids;
  }

  protected async writeRows(writes: readonly SenderWrite[], checkpoint: RowKey, shard: ShardSpec, beforeCommit: Promise<void>): Promise<{ written: number }> {
    const senderIds = senderIdsOf(writes, await this.resolving.run(() => this.resolveSenderIds(writes)));
    const roomIds = writes.map((w) => w.key.roomId);
    const ids = writes.map((w) => w.key.id);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // While checked out (e.g. waiting for the batch before to commit) a lost connection is
    // emitted as an event; without a listener it would crash the process.
    const onError = (error: Error): void => {
      broken = error;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      let written = 0;
      if (writes.length > 0) {
        const first = writes[0].key;
        const last = writes[writes.length - 1].key;
        const result = await client.query(POSTGRES_UPDATE_SQL, [roomIds, ids, senderIds, first.roomId, first.id, last.roomId, last.id]);
        written = result.rowCount ?? 0;
      }
      await awaitEarlierBatches(beforeCommit);
      await client.query(POSTGRES_CHECKPOINT_SQL, [shardName(shard), checkpoint.roomId, checkpoint.id]);
      await client.query('COMMIT');
      return { written };
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e;
      });
      if (!(error instanceof EarlierBatchFailedError) && this.isTransient(error)) broken ??= error as Error;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async sampleForVerify(size: number): Promise<SqlVerifySample[]> {
    const { rows } = await this.pool.query<{ room_id: number; id: string; message: Buffer; sender_id: string; server: string | null; user_name: string | null }>(
      `SELECT m.room_id, m.id, m.message, m.sender_id::text AS sender_id, u.server, u.user_name
         FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id
        WHERE m.sender_id IS NOT NULL
        ORDER BY random() LIMIT $1`,
      [size],
    );
    return rows.map((r) => sqlVerifySample({ roomId: String(r.room_id), id: r.id }, r.message, r.sender_id, r.user_name, r.server));
  }

  isTransient(error: unknown): boolean {
    if (error instanceof EarlierBatchFailedError) return this.isTransient(error.causeError);
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && TRANSIENT_SQLSTATES.test(code)) return true;
    return isTransientNetworkError(error);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * The batch's keys are one contiguous stretch of the primary key: bounding `m` by the first and
 * last key keeps the join to that index range. Without it the planner may hash-join against a
 * sequential scan of the whole table for every batch (seen on a 100,000-row table), which makes
 * the backfill quadratic.
 */
export const POSTGRES_UPDATE_SQL = `UPDATE mam_muc_message m SET sender_id = v.sid
  FROM unnest($1::int[], $2::bigint[], $3::int[]) AS v(room_id, id, sid)
 WHERE m.room_id = v.room_id AND m.id = v.id AND m.sender_id IS NULL
   AND (m.room_id, m.id) >= ($4::int, $5::bigint) AND (m.room_id, m.id) <= ($6::int, $7::bigint)`;

export const POSTGRES_CHECKPOINT_SQL = `INSERT INTO ${CHECKPOINT_TABLE} (shard, last_room_id, last_id, updated_at)
  VALUES ($1, $2, $3, now())
  ON CONFLICT (shard) DO UPDATE SET last_room_id = EXCLUDED.last_room_id, last_id = EXCLUDED.last_id, updated_at = now()`;

function shardFilter(shard: ShardSpec, firstParam: number): { sql: string; params: number[] } {
  if (shard.count === 1) return { sql: '', params: [] };
  return { sql: ` AND room_id % $${firstParam} = $${firstParam + 1}`, params: [shard.count, shard.index] };
}

export function checkPostgresStorable(user: string, server: string): string | null {
  for (const [name, value] of [['user_name', user], ['server', server]] as const) {
    if ([...value].length > MAX_JID_PART_CHARS) return `${name} longer than ${MAX_JID_PART_CHARS} characters (varchar(250))`;
    if (value.includes('\u0000')) return `${name} contains a NUL character, which PostgreSQL text cannot store`;
  }
  return null;
}

const definition: BackendDefinition = {
  kind: 'postgres',
  summary: 'PostgreSQL: sets mam_muc_message.sender_id',
  flags: {},
  usage: '',
  async open(values, context) {
    if (typeof values.url !== 'string') throw new UsageError(`--url is required (or set MIM_SENDER_JID_DB_URL)`);
    return new PostgresBackend({ url: values.url as string, poolSize: context.concurrency + 2 });
  },
};
export default definition;
