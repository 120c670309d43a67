/**
 * MySQL / MariaDB backend for the sender_id backfill (MongooseIM 3.3 schema, `mysql2` driver).
 *
 * - pages: `WHERE sender_id IS NULL AND (room_id > r OR (room_id = r AND id > i))` in primary key
 *   order (keyset, never OFFSET). Keys are inlined as validated integer literals: MySQL compares a
 *   BIGINT column with a string parameter as doubles, which would lose ids beyond 2^53;
 * - ids: one select of the batch's distinct (server, user_name) pairs, one `INSERT IGNORE` for the
 *   missing ones (the unique constraint settles races), one select again; committed on their own;
 * - write: `UPDATE ... JOIN (derived table of (room_id, id, sid)) ... WHERE sender_id IS NULL`
 *   plus the checkpoint upsert, in one transaction.
 */
import mysql from 'mysql2/promise';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { Mutex, SenderIdCache, senderCacheKey, senderIdsOf } from './sender-id-cache.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from '../../pipeline/ordering.js';
import { shardName, type SchemaStatus, type ShardSpec } from '../../pipeline/types.js';
import { UsageError, type BackendDefinition } from '../registry.js';
import { sqlVerifySample, SqlBackend, type RowKey, type SenderWrite, type SourceRow, type SqlVerifySample } from './sql-backend.js';

export const CHECKPOINT_TABLE = 'mim_sender_jid_checkpoint';
/** `varchar(250) CHARACTER SET binary` in `mam_server_user`: MySQL counts bytes there. */
export const MAX_JID_PART_BYTES = 250;
const EXACT_COUNT_BELOW = 2_000_000;
const INSERT_ATTEMPTS = 5;
const LOCK_WAIT_TIMEOUT_S = 10;

export const MYSQL_SCHEMA_STATEMENTS = {
  column: 'ALTER TABLE mam_muc_message ADD COLUMN sender_id INT UNSIGNED;',
  index: 'CREATE INDEX i_mam_muc_message_sender_id USING BTREE ON mam_muc_message(sender_id);',
} as const;

const TRANSIENT_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);
/** Server gone / lost (2006, 2013), shutdown in progress (1053), killed (1927). */
const TRANSIENT_ERRNOS = new Set([1053, 1205, 1213, 1927, 2006, 2013]);

const DIGITS = /^\d{1,20}$/;

/** An unsigned integer literal for SQL text; anything else is a bug, never inlined. */
export function integerLiteral(value: string): string {
  if (!DIGITS.test(value)) throw new Error(`not an unsigned integer: '${value}'`);
  return value;
}

export function mysqlKeysetCondition(after: RowKey | null): string {
  if (after === null) return '';
  const r = integerLiteral(after.roomId);
  const i = integerLiteral(after.id);
  return ` AND (room_id > ${r} OR (room_id = ${r} AND id > ${i}))`;
}

export function mysqlShardCondition(shard: ShardSpec): string {
  return shard.count === 1 ? '' : ` AND room_id % ${shard.count} = ${shard.index}`;
}

export function mysqlPageSql(after: RowKey | null, limit: number, shard: ShardSpec): string {
  return (
    `SELECT room_id, id, message FROM mam_muc_message WHERE sender_id IS NULL` +
    mysqlKeysetCondition(after) +
    mysqlShardCondition(shard) +
    ` ORDER BY room_id, id LIMIT ${Math.floor(limit)}`
  );
}

/** One UPDATE joined on a derived table of (room_id, id, sid) rows. */
export function mysqlUpdateSql(rows: readonly { roomId: string; id: string; senderId: string }[]): string {
  const derived = rows
    .map((r, i) =>
      i === 0
        ? `SELECT ${integerLiteral(r.roomId)} AS room_id, ${integerLiteral(r.id)} AS id, ${integerLiteral(r.senderId)} AS sid`
        : `SELECT ${integerLiteral(r.roomId)}, ${integerLiteral(r.id)}, ${integerLiteral(r.senderId)}`,
    )
    .join(' UNION ALL ');
  // No key-range bound here (unlike PostgreSQL): MySQL turns `(room_id > a OR (room_id = a AND
  // id >= b))` into a scan of whole rooms, and a multi-table UPDATE locks every row it scans, so
  // neighbouring batches (and other shards) would wait on each other. Driving the join from the
  // derived table (eq_ref on the primary key) locks exactly the batch's rows.
  return (
    `UPDATE mam_muc_message m JOIN (${derived}) v ON m.room_id = v.room_id AND m.id = v.id ` +
    `SET m.sender_id = v.sid WHERE m.sender_id IS NULL`
  );
}

export const MYSQL_CHECKPOINT_SQL =
  `INSERT INTO ${CHECKPOINT_TABLE} (shard, last_room_id, last_id) VALUES (?, ?, ?) ` +
  `ON DUPLICATE KEY UPDATE last_room_id = VALUES(last_room_id), last_id = VALUES(last_id), updated_at = CURRENT_TIMESTAMP`;

export interface MysqlBackendOptions {
  readonly url: string;
  readonly poolSize?: number;
}

type Row = Record<string, unknown>;

export class MysqlBackend extends SqlBackend {
  readonly name = 'mysql';
  private readonly pool: mysql.Pool;
  private readonly cache = new SenderIdCache();
  private readonly resolving = new Mutex();

  constructor(options: MysqlBackendOptions) {
    super();
    this.pool = mysql.createPool({
      uri: options.url,
      connectionLimit: options.poolSize ?? 6,
      supportBigNumbers: true,
      bigNumberStrings: true,
      charset: 'utf8mb4',
    });
    this.pool.on('connection', (connection) => {
      connection.on('error', () => {});
      // No gap locks, and locks on rows that do not match are released: concurrent batch
      // transactions touch disjoint key ranges and must not block each other.
      connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      // A batch waits (in this process) for the one before it to commit while holding its row
      // locks; should that ever meet a lock the earlier batch needs, fail fast and retry instead
      // of InnoDB's default 50 s.
      connection.query(`SET SESSION innodb_lock_wait_timeout = ${LOCK_WAIT_TIMEOUT_S}`);
    });
  }

  private async rows(sql: string, params: unknown[] = []): Promise<Row[]> {
    const [rows] = await this.pool.query(sql, params);
    return rows as Row[];
  }

  async checkSchema(): Promise<SchemaStatus> {
    const [t] = await this.rows(
      `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message'`,
    );
    if (Number(t.n) === 0) throw new Error('table mam_muc_message not found in the current database: is this a MongooseIM database?');
    const [c] = await this.rows(
      `SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message' AND COLUMN_NAME = 'sender_id'`,
    );
    const [i] = await this.rows(
      `SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message' AND INDEX_NAME = 'i_mam_muc_message_sender_id'`,
    );
    const missing: string[] = [];
    const statements: string[] = [];
    if (Number(c.n) === 0) {
      missing.push('column sender_id is missing');
      statements.push(MYSQL_SCHEMA_STATEMENTS.column);
    }
    if (Number(i.n) === 0) {
      missing.push('index i_mam_muc_message_sender_id is missing');
      statements.push(MYSQL_SCHEMA_STATEMENTS.index);
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
         shard VARCHAR(64) NOT NULL PRIMARY KEY,
         last_room_id BIGINT UNSIGNED NOT NULL,
         last_id BIGINT UNSIGNED NOT NULL,
         updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) CHARACTER SET utf8mb4`,
    );
  }

  protected async readShardCheckpoint(shard: ShardSpec): Promise<RowKey | null> {
    const [t] = await this.rows(
      `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [CHECKPOINT_TABLE],
    );
    if (Number(t.n) === 0) return null;
    const [row] = await this.rows(`SELECT last_room_id, last_id FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [shardName(shard)]);
    return row === undefined ? null : { roomId: String(row.last_room_id), id: String(row.last_id) };
  }

  protected async deleteShardCheckpoint(shard: ShardSpec): Promise<void> {
    await this.pool.query(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [shardName(shard)]);
  }

  protected async estimateRows(shard: ShardSpec): Promise<number> {
    const [t] = await this.rows(
      `SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message'`,
    );
    const total = Number(t?.n ?? -1);
    if (total >= EXACT_COUNT_BELOW) return Math.round(total / shard.count);
    const [c] = await this.rows(`SELECT COUNT(*) AS n FROM mam_muc_message WHERE sender_id IS NULL${mysqlShardCondition(shard)}`);
    return Number(c.n);
  }

  protected async readRows(after: RowKey | null, limit: number, shard: ShardSpec): Promise<SourceRow[]> {
    const rows = await this.rows(mysqlPageSql(after, limit, shard));
    return rows.map((r) => ({ key: { roomId: String(r.room_id), id: String(r.id) }, payload: r.message as Buffer }));
  }

  checkStorable(user: string, server: string): string | null {
    return checkMysqlStorable(user, server);
  }

  async resolveSenderIds(writes: readonly SenderWrite[]): Promise<Map<string, string>> {
    const { ids, missing } = this.cache.lookup(writes);
    if (missing.length === 0) return ids;
    const params = missing.flatMap((p) => [p.server, p.user]);
    const tuples = missing.map(() => '(?, ?)').join(', ');
    const select = async (): Promise<number> => {
      const rows = await this.rows(`SELECT id, server, user_name FROM mam_server_user WHERE (server, user_name) IN (${tuples})`, params);
      for (const r of rows) {
        this.cache.set(text(r.server), text(r.user_name), String(r.id));
        ids.set(senderCacheKey(text(r.server), text(r.user_name)), String(r.id));
      }
      return rows.length;
    };
    if ((await select()) === missing.length) return ids;
    // Another shard (or MongooseIM) inserting an overlapping set can still make InnoDB pick us as
    // a deadlock victim: the insert is idempotent, so try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.pool.query(`INSERT IGNORE INTO mam_server_user (server, user_name) VALUES ${tuples}`, params);
        break;
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if ((errno !== 1213 && errno !== 1205) || attempt >= INSERT_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
    const found = await select();
    if (found !== missing.length) {
      throw new Error(`mam_server_user: ${missing.length - found} of ${missing.length} senders still missing after insert`);
    }
    return ids;
  }

  protected async writeRows(writes: readonly SenderWrite[], checkpoint: RowKey, shard: ShardSpec, beforeCommit: Promise<void>): Promise<{ written: number }> {
    const senderIds = senderIdsOf(writes, await this.resolving.run(() => this.resolveSenderIds(writes)));
    const connection = await this.pool.getConnection();
    let broken = false;
    try {
      await connection.beginTransaction();
      let written = 0;
      if (writes.length > 0) {
        const rows = writes.map((w, i) => ({ roomId: w.key.roomId, id: w.key.id, senderId: senderIds[i] }));
        const [result] = await connection.query(mysqlUpdateSql(rows));
        written = (result as mysql.ResultSetHeader).affectedRows;
      }
      await awaitEarlierBatches(beforeCommit);
      await connection.query(MYSQL_CHECKPOINT_SQL, [shardName(shard), checkpoint.roomId, checkpoint.id]);
      await connection.commit();
      return { written };
    } catch (error) {
      await connection.rollback().catch(() => {
        broken = true;
      });
      if (!(error instanceof EarlierBatchFailedError) && this.isTransient(error)) broken = true;
      throw error;
    } finally {
      if (broken) connection.destroy();
      else connection.release();
    }
  }

  async sampleForVerify(size: number): Promise<SqlVerifySample[]> {
    const rows = await this.rows(
      `SELECT m.room_id, m.id, m.message, m.sender_id, u.server, u.user_name
         FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id
        WHERE m.sender_id IS NOT NULL ORDER BY RAND() LIMIT ${Math.floor(size)}`,
    );
    return rows.map((r) => sqlVerifySample({ roomId: String(r.room_id), id: String(r.id) }, r.message as Buffer, String(r.sender_id), r.user_name === null ? null : text(r.user_name), r.server === null ? null : text(r.server)));
  }

  isTransient(error: unknown): boolean {
    if (error instanceof EarlierBatchFailedError) return this.isTransient(error.causeError);
    const e = error as { code?: unknown; errno?: unknown; fatal?: unknown } | null;
    if (typeof e?.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
    if (typeof e?.errno === 'number' && TRANSIENT_ERRNOS.has(e.errno)) return true;
    if (e?.fatal === true) return true;
    const message = error instanceof Error ? error.message : '';
    if (/closed state|Pool is closed|connection is in closed/i.test(message)) return !/Pool is closed/i.test(message);
    return isTransientNetworkError(error);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Binary columns come back as bytes. */
function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

export function checkMysqlStorable(user: string, server: string): string | null {
  for (const [name, value] of [['user_name', user], ['server', server]] as const) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_JID_PART_BYTES) return `${name} is ${bytes} bytes, longer than ${MAX_JID_PART_BYTES} (varchar(250) CHARACTER SET binary)`;
  }
  return null;
}

const definition: BackendDefinition = {
  kind: 'mysql',
  summary: 'MySQL / MariaDB: sets mam_muc_message.sender_id',
  flags: {},
  usage: '',
  async open(values, context) {
    if (typeof values.url !== 'string') throw new UsageError(`--url is required (or set MIM_SENDER_JID_DB_URL)`);
    return new MysqlBackend({ url: values.url as string, poolSize: context.concurrency + 2 });
  },
};
export default definition;
