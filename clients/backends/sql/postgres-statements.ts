/**
 * The PostgreSQL dialect of the backfill, as data (MongooseIM 3.3 schema):
 * - pages: `WHERE sender_id IS NULL AND (room_id, id) > ($1, $2) ORDER BY room_id, id LIMIT n`,
 *   the primary key's order (keyset, never OFFSET), cut at the byte bound by `octet_length`
 *   (which reads a TOASTed value's size without fetching it);
 * - the shard lock: a session advisory lock, `pg_try_advisory_lock` (never waits);
 * - ids: the batch's distinct pairs as `unnest` arrays, `INSERT ... ON CONFLICT DO NOTHING`;
 * - write: `UPDATE ... FROM unnest($1::int[], $2::bigint[], $3::int[])` only where sender_id is
 *   still NULL, plus the checkpoint upsert.
 */
import { shardName, type PageLimits, type ShardSpec } from '../../pipeline/types.js';
import { compareRowKeys, shardLockName, shardOfSql, type RowKey, type SqlDialect, type SqlStatement } from './sql-dialect.js';

export const CHECKPOINT_TABLE = 'mim_sender_jid_checkpoint';
/** `varchar(250)` in `mam_server_user`: PostgreSQL counts characters. */
export const MAX_JID_PART_CHARS = 250;

export const PG_SCHEMA_STATEMENTS = {
  column: 'ALTER TABLE mam_muc_message ADD COLUMN sender_id INT;',
  index: 'CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id);',
} as const;

export const PG_CHECKPOINT_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
  shard text PRIMARY KEY,
  last_room_id bigint NOT NULL,
  last_id bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());`;

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
  return { sql: ` AND ${shardOfSql('room_id', `$${firstParam}`)} = $${firstParam + 1}`, params: [shard.count, shard.index] };
}

const statement = (sql: string, params: readonly unknown[] = []): SqlStatement => ({ sql, params });

/** The smallest and the largest key of `rows` (not empty), compared as integers. */
export function keyRange(rows: readonly RowKey[]): [RowKey, RowKey] {
  let low = rows[0];
  let high = rows[0];
  for (const r of rows) {
    if (compareRowKeys(r, low) < 0) low = r;
    if (compareRowKeys(r, high) > 0) high = r;
  }
  return [low, high];
}

const INTEGER_TEXT = /^-?\d{1,20}$/;

/**
 * One column of the batch as a PostgreSQL array literal, `{1,2,3}`. Handed an array of strings,
 * the driver quotes and escapes every element (two regular expressions each), and the server
 * parses the quotes back: the values are integers, so they are joined as they are, each checked
 * (a value with a comma would shift every row after it onto another row's sender).
 */
export function integerArrayLiteral<K extends string>(rows: readonly Readonly<Record<K, string>>[], column: K): string {
  let literal = '{';
  for (let i = 0; i < rows.length; i++) {
    const value = rows[i][column];
    if (!INTEGER_TEXT.test(value)) throw new Error(`${column} ${JSON.stringify(value)} is not an integer`);
    literal += i === 0 ? value : ',' + value;
  }
  return literal + '}';
}

/**
 * A key as PostgreSQL SQL text, typed `bigint` (comparable with `int` and `bigint` columns through
 * their indexes). Keys may be negative: the value goes in parentheses, since the cast binds before
 * the sign (`-9223372036854775808::bigint` overflows).
 */
export function pgIntegerLiteral(value: string): string {
  if (!INTEGER_TEXT.test(value)) throw new Error(`not an integer: '${value}'`);
  return `(${value})::bigint`;
}

/** untranslatable_character, character_not_in_repertoire, string_data_right_truncation, invalid_byte_sequence_for_encoding... */
const POSTGRES_REFUSED_VALUE_CODES = new Set(['22P05', '22021', '22001']);

export function checkPostgresStorable(user: string, server: string): string | null {
  return partNotStorable('user_name', user) ?? partNotStorable('server', server);
}

function partNotStorable(name: string, value: string): string | null {
  // Code points never outnumber UTF-16 units: only a long value needs counting (which copies it).
  if (value.length > MAX_JID_PART_CHARS && [...value].length > MAX_JID_PART_CHARS) return `${name} longer than ${MAX_JID_PART_CHARS} characters (varchar(250))`;
  if (value.includes('\u0000')) return `${name} contains a NUL character, which PostgreSQL text cannot store`;
  return null;
}

/**
 * A page of the keyset walk: the rows still NULL (`scan` false), or every row with its sender's
 * `mam_server_user` row (`scan` true, for `verify --complete`).
 */
function postgresPage(after: RowKey | null, limits: PageLimits, shard: ShardSpec, scan: boolean): SqlStatement {
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  let candidates: string;
  if (shard.count === 1) {
    let where = scan ? 'true' : 'sender_id IS NULL';
    if (after !== null) where += ` AND (room_id, id) > (${param(after.roomId)}::int, ${param(after.id)}::bigint)`;
    candidates = `SELECT room_id, id, message, sender_id FROM mam_muc_message WHERE ${where} ORDER BY room_id, id LIMIT ${param(limits.records)}`;
  } else {
    // A shard is the rooms with room_id mod N = K (shardOfSql). Filtering one keyset walk by that expression
    // makes every shard read the whole table, and PostgreSQL, estimating the filter at 0.5%,
    // picks a sequential scan and a sort for every page (measured: 40 ms against 2 ms per page
    // at 100,000 rows, growing with the table). So the page visits the shard's rooms instead:
    // the table's distinct room_ids in order, one index probe each (a recursive CTE, evaluated
    // only as far as the LIMIT pulls it), and for each room of the shard its rows in id order
    // from the primary key. A LATERAL subquery runs as a nested loop over the rooms in the
    // order they are found, so the first LIMIT rows are the keyset's next ones.
    const fromRoom = after === null ? '' : ` WHERE room_id >= ${param(after.roomId)}::int`;
    const keyset = after === null ? '' : ` AND (room_id, id) > (${param(after.roomId)}::int, ${param(after.id)}::bigint)`;
    const count = param(shard.count);
    const index = param(shard.index);
    const rows = param(limits.records);
    candidates = `WITH RECURSIVE rooms(room_id) AS (
           SELECT min(room_id) FROM mam_muc_message${fromRoom}
           UNION ALL
           SELECT (SELECT min(m.room_id) FROM mam_muc_message m WHERE m.room_id > rooms.room_id) FROM rooms WHERE rooms.room_id IS NOT NULL
         )
         SELECT m.room_id, m.id, m.message, m.sender_id FROM rooms r
           CROSS JOIN LATERAL (SELECT room_id, id, message, sender_id FROM mam_muc_message
                                WHERE room_id = r.room_id${scan ? '' : ' AND sender_id IS NULL'}${keyset}
                                ORDER BY id LIMIT ${rows}) m
          WHERE r.room_id IS NOT NULL AND ${shardOfSql('r.room_id', count)} = ${index}
          LIMIT ${rows}`;
  }
  const maxBytes = param(limits.bytes);
  // One pass: the window runs over the keyset's rows, and a TOASTed payload stays a pointer
  // until it is output, so payloads past the byte bound are never fetched (no join back to the
  // table, which costs a second index lookup per row).
  // Every ORDER BY names its source's columns (`s.`, `k.`): an unqualified `id` in the outer
  // ORDER BY is the output column `id::text`, which sorts "10000000" before "9999999"; the last
  // row, the next cursor, then jumps back, and the batch's UPDATE range comes out wrong.
  const columns = scan
    ? `k.room_id, k.id::text AS id, k.message, k.candidates::int AS candidates, k.sender_id::text AS sender_id, u.server, u.user_name`
    : `k.room_id, k.id::text AS id, k.message, k.candidates::int AS candidates`;
  return statement(
    `SELECT ${columns} FROM (
       SELECT s.room_id, s.id, s.message, s.sender_id, octet_length(s.message) AS len,
              SUM(octet_length(s.message)) OVER (ORDER BY s.room_id, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running,
              COUNT(*) OVER () AS candidates
         FROM (${candidates}) s
     ) k${scan ? ' LEFT JOIN mam_server_user u ON u.id = k.sender_id' : ''}
      WHERE k.running <= ${maxBytes}::bigint OR k.running = k.len ORDER BY k.room_id, k.id`,
    params,
  );
}

export const POSTGRES_DIALECT: SqlDialect<unknown> = {
  archiveTableNotFound: 'in the current schema',
  schemaCheck: statement(
    `SELECT to_regclass('mam_muc_message') IS NOT NULL AS has_table,
            EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = 'mam_muc_message' AND column_name = 'sender_id') AS has_column,
            EXISTS (SELECT 1 FROM pg_indexes
                     WHERE schemaname = current_schema() AND tablename = 'mam_muc_message' AND indexname = 'i_mam_muc_message_sender_id') AS has_index`,
  ),
  senderUniqueCheck: statement(
    `SELECT EXISTS (
       SELECT 1 FROM pg_index i
        WHERE i.indrelid = to_regclass('mam_server_user') AND i.indisunique AND i.indnkeyatts = 2 AND i.indpred IS NULL
          AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])) = ARRAY['server', 'user_name']) AS has_unique`,
  ),
  senderUniqueStatement: 'CREATE UNIQUE INDEX i_mam_server_user_name ON mam_server_user USING btree (server, user_name);',
  schemaStatements: PG_SCHEMA_STATEMENTS,
  checkpointTable: CHECKPOINT_TABLE,
  checkpointTableCheck: statement(`SELECT to_regclass($1) IS NOT NULL AS present`, [CHECKPOINT_TABLE]),
  createCheckpointTable: PG_CHECKPOINT_TABLE_SQL,
  readCheckpoint: (shard) =>
    statement(`SELECT last_room_id::text AS last_room_id, last_id::text AS last_id FROM ${CHECKPOINT_TABLE} WHERE shard = $1`, [shardName(shard)]),
  deleteCheckpoint: (shard) => statement(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = $1`, [shardName(shard)]),
  saveCheckpoint: (shard, key) => statement(POSTGRES_CHECKPOINT_SQL, [shardName(shard), key.roomId, key.id]),
  rowEstimate: statement(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass('mam_muc_message')`),
  exactCount(shard) {
    const sf = shardFilter(shard, 1);
    return statement(`SELECT count(*)::text AS n FROM mam_muc_message WHERE sender_id IS NULL${sf.sql}`, sf.params);
  },
  page: (after, limits, shard) => postgresPage(after, limits, shard, false),
  scanPage: (after, limits, shard) => postgresPage(after, limits, shard, true),
  // Right after a backfill the statistics may still count every row as NULL, which makes a
  // sequential scan look cheaper than the index on sender_id: sequential scans are off for this
  // one statement, and it is ordered by the index's own key so that the index scan streams and
  // stops at the LIMIT (the base sorts the keys).
  unwrittenKeysSettings: [statement('SET LOCAL enable_seqscan = off')],
  unwrittenKeys(shard, limit) {
    const sf = shardFilter(shard, 2);
    return statement(`SELECT room_id, id::text AS id FROM mam_muc_message WHERE sender_id IS NULL${sf.sql} ORDER BY sender_id LIMIT $1`, [limit, ...sf.params]);
  },
  selectSenders: (pairs) => [
    statement(
      `SELECT u.id::text AS id, u.server, u.user_name FROM mam_server_user u
         JOIN unnest($1::text[], $2::text[]) AS p(server, user_name)
           ON u.server = p.server AND u.user_name = p.user_name`,
      [pairs.map((p) => p.server), pairs.map((p) => p.user)],
    ),
  ],
  insertSenders: (pairs) => [
    statement(
      `INSERT INTO mam_server_user (server, user_name)
         SELECT p.server, p.user_name FROM unnest($1::text[], $2::text[]) AS p(server, user_name)
         ON CONFLICT DO NOTHING`,
      [pairs.map((p) => p.server), pairs.map((p) => p.user)],
    ),
  ],
  // ON CONFLICT DO NOTHING settles duplicates; the sorted pairs make deadlocks unlikely, not impossible.
  isInsertRace: (error) => (error as { code?: unknown } | null)?.code === '40P01',
  isRefusedValue: (error) => POSTGRES_REFUSED_VALUE_CODES.has((error as { code?: unknown } | null)?.code as string),
  update(rows) {
    // The range is the rows' own smallest and largest key, whatever order they come in: a bound
    // taken from the first and last row would leave out every row outside it.
    const [first, last] = keyRange(rows);
    return [
      statement(POSTGRES_UPDATE_SQL, [
        integerArrayLiteral(rows, 'roomId'),
        integerArrayLiteral(rows, 'id'),
        integerArrayLiteral(rows, 'senderId'),
        first.roomId,
        first.id,
        last.roomId,
        last.id,
      ]),
    ];
  },
  verifySample: (size) =>
    statement(
      `SELECT m.room_id, m.id::text AS id, m.message, m.sender_id::text AS sender_id, u.server, u.user_name
         FROM mam_muc_message m LEFT JOIN mam_server_user u ON u.id = m.sender_id
        WHERE m.sender_id IS NOT NULL
        ORDER BY random() LIMIT $1`,
      [size],
    ),
  lockShard: (shard) => statement(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS acquired`, [shardLockName(shard)]),
  unlockShard: (shard) => statement(`SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS released`, [shardLockName(shard)]),
  checkStorable: checkPostgresStorable,
};
