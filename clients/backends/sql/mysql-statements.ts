/**
 * The MySQL / MariaDB dialect of the backfill, as data (MongooseIM 3.3 schema):
 * - pages: `WHERE sender_id IS NULL AND (room_id > r OR (room_id = r AND id > i))` in primary key
 *   order (keyset, never OFFSET). Keys are inlined as validated integer literals: MySQL compares a
 *   BIGINT column with a string parameter as doubles, which would lose ids beyond 2^53; cut at
 *   the byte bound by `LENGTH(message)`;
 * - the shard lock: `GET_LOCK(name, 0)` (never waits), named after the database too, since
 *   MySQL's user locks are server-wide;
 * - ids: `(server, user_name) IN (...)`, `INSERT IGNORE` for the missing ones (the unique
 *   constraint settles races; a deadlock victim tries again);
 * - write: `UPDATE ... JOIN (derived table of (room_id, id, sid)) ... WHERE sender_id IS NULL`
 *   plus the checkpoint upsert.
 */
import { shardName, type ShardSpec } from '../../pipeline/types.js';
import { byteBoundedPageSql, shardLockName, shardOfSql, type RowKey, type SqlDialect, type SqlStatement } from './sql-dialect.js';

export const CHECKPOINT_TABLE = 'mim_sender_jid_checkpoint';
/** `varchar(250) CHARACTER SET binary` in `mam_server_user`: MySQL counts bytes there. */
export const MAX_JID_PART_BYTES = 250;

export const MYSQL_SCHEMA_STATEMENTS = {
  column: 'ALTER TABLE mam_muc_message ADD COLUMN sender_id INT UNSIGNED;',
  index: 'CREATE INDEX i_mam_muc_message_sender_id USING BTREE ON mam_muc_message(sender_id);',
} as const;

export const MYSQL_CHECKPOINT_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
  shard VARCHAR(64) NOT NULL PRIMARY KEY,
  last_room_id BIGINT UNSIGNED NOT NULL,
  last_id BIGINT UNSIGNED NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) CHARACTER SET utf8mb4;`;

export const MYSQL_CHECKPOINT_SQL =
  `INSERT INTO ${CHECKPOINT_TABLE} (shard, last_room_id, last_id) VALUES (?, ?, ?) ` +
  `ON DUPLICATE KEY UPDATE last_room_id = VALUES(last_room_id), last_id = VALUES(last_id), updated_at = CURRENT_TIMESTAMP`;

/** Deadlock victim (1213), lock wait timeout (1205). */
const INSERT_RACE_ERRNOS = new Set([1213, 1205]);
/** Incorrect string value, data too long, illegal mix of collations (a column's character set against the connection's), invalid character string. */
const REFUSED_VALUE_ERRNOS = new Set([1366, 1406, 1267, 1271, 1300]);

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
  return shard.count === 1 ? '' : ` AND ${shardOfSql('room_id', String(shard.count))} = ${shard.index}`;
}

/** Keyset page in primary key order (`columns`: what each row answers with; the ORDER BY names the table's columns, never an output alias). */
export function mysqlPageSql(after: RowKey | null, limit: number, shard: ShardSpec, columns = 'room_id, id, message', onlyUnwritten = true): string {
  return (
    `SELECT ${columns} FROM mam_muc_message t WHERE ${onlyUnwritten ? 'sender_id IS NULL' : 'TRUE'}` +
    mysqlKeysetCondition(after) +
    mysqlShardCondition(shard) +
    ` ORDER BY t.room_id, t.id LIMIT ${Math.floor(limit)}`
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
  return `UPDATE mam_muc_message m JOIN (${derived}) v ON m.room_id = v.room_id AND m.id = v.id ` + `SET m.sender_id = v.sid WHERE m.sender_id IS NULL`;
}

export function checkMysqlStorable(user: string, server: string): string | null {
  for (const [name, value] of [
    ['user_name', user],
    ['server', server],
  ] as const) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_JID_PART_BYTES) return `${name} is ${bytes} bytes, longer than ${MAX_JID_PART_BYTES} (varchar(250) CHARACTER SET binary)`;
  }
  return null;
}

/** At most 64 characters (15 + 40), one per database and shard. */
export const MYSQL_LOCK_NAME_SQL = `CONCAT('mim_sender_jid:', SHA1(CONCAT(DATABASE(), ' ', ?)))`;

const statement = (sql: string, params: readonly unknown[] = []): SqlStatement => ({ sql, params });
const tableIn = (name: string): string => `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${name}'`;

export const MYSQL_DIALECT: SqlDialect<unknown> = {
  archiveTableNotFound: 'in the current database',
  schemaCheck: statement(
    `SELECT (${tableIn('mam_muc_message')}) AS has_table, ` +
      `(SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message' AND COLUMN_NAME = 'sender_id') AS has_column, ` +
      `(SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message' AND INDEX_NAME = 'i_mam_muc_message_sender_id') AS has_index`,
  ),
  senderUniqueCheck: statement(
    `SELECT COUNT(*) AS has_unique FROM (SELECT INDEX_NAME FROM information_schema.STATISTICS ` +
      `WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_server_user' AND NON_UNIQUE = 0 GROUP BY INDEX_NAME ` +
      `HAVING COUNT(*) = 2 AND SUM(COLUMN_NAME IN ('server', 'user_name')) = 2) u`,
  ),
  senderUniqueStatement: 'ALTER TABLE mam_server_user ADD CONSTRAINT uc_mam_server_user_name UNIQUE USING HASH (server, user_name);',
  schemaStatements: MYSQL_SCHEMA_STATEMENTS,
  checkpointTable: CHECKPOINT_TABLE,
  checkpointTableCheck: statement(`SELECT (${tableIn(CHECKPOINT_TABLE)}) AS present`),
  createCheckpointTable: MYSQL_CHECKPOINT_TABLE_SQL,
  readCheckpoint: (shard) => statement(`SELECT last_room_id, last_id FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [shardName(shard)]),
  deleteCheckpoint: (shard) => statement(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [shardName(shard)]),
  saveCheckpoint: (shard, key) => statement(MYSQL_CHECKPOINT_SQL, [shardName(shard), key.roomId, key.id]),
  rowEstimate: statement(`SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mam_muc_message'`),
  exactCount: (shard) => statement(`SELECT COUNT(*) AS n FROM mam_muc_message WHERE sender_id IS NULL${mysqlShardCondition(shard)}`),
  page: (after, limits, shard) =>
    statement(
      byteBoundedPageSql({
        keyset: mysqlPageSql(after, limits.records, shard, 'room_id, id, LENGTH(message) AS len'),
        bytes: integerLiteral(String(Math.floor(limits.bytes))),
        table: 'mam_muc_message',
        columns: 'm.room_id, m.id, m.message, k.candidates',
      }),
    ),
  scanPage: (after, limits, shard) =>
    statement(
      byteBoundedPageSql({
        keyset: mysqlPageSql(after, limits.records, shard, 'room_id, id, LENGTH(message) AS len', false),
        bytes: integerLiteral(String(Math.floor(limits.bytes))),
        table: 'mam_muc_message',
        columns: 'm.room_id, m.id, m.message, k.candidates, m.sender_id, u.server, u.user_name',
        join: 'LEFT JOIN mam_server_user u ON u.id = m.sender_id',
      }),
    ),
  // FORCE INDEX: right after a backfill the statistics may still count every row as NULL, and a
  // scan of the table "stopping early" at the LIMIT would read all of it.
  unwrittenKeysSettings: [],
  unwrittenKeys: (shard, limit) =>
    statement(
      `SELECT room_id, id FROM mam_muc_message FORCE INDEX (i_mam_muc_message_sender_id) ` +
        `WHERE sender_id IS NULL${mysqlShardCondition(shard)} LIMIT ${Math.floor(limit)}`,
    ),
  selectSenders: (pairs) => [
    statement(
      `SELECT id, server, user_name FROM mam_server_user WHERE (server, user_name) IN (${pairs.map(() => '(?, ?)').join(', ')})`,
      pairs.flatMap((p) => [p.server, p.user]),
    ),
  ],
  insertSenders: (pairs) => [
    statement(
      `INSERT IGNORE INTO mam_server_user (server, user_name) VALUES ${pairs.map(() => '(?, ?)').join(', ')}`,
      pairs.flatMap((p) => [p.server, p.user]),
    ),
  ],
  isInsertRace: (error) => INSERT_RACE_ERRNOS.has((error as { errno?: unknown } | null)?.errno as number),
  isRefusedValue: (error) => REFUSED_VALUE_ERRNOS.has((error as { errno?: unknown } | null)?.errno as number),
  update: (rows) => [statement(mysqlUpdateSql(rows))],
  verifySample: (size) =>
    statement(
      `SELECT m.room_id, m.id, m.message, m.sender_id, u.server, u.user_name
         FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id
        WHERE m.sender_id IS NOT NULL ORDER BY RAND() LIMIT ${Math.floor(size)}`,
    ),
  lockShard: (shard) => statement(`SELECT GET_LOCK(${MYSQL_LOCK_NAME_SQL}, 0) AS acquired`, [shardLockName(shard)]),
  unlockShard: (shard) => statement(`SELECT RELEASE_LOCK(${MYSQL_LOCK_NAME_SQL}) AS released`, [shardLockName(shard)]),
  checkStorable: checkMysqlStorable,
};
