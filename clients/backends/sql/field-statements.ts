/**
 * The statements of the `--field origin_id|is_groupchat` walks, as data, for PostgreSQL and
 * MySQL/MariaDB: the upgrade guides' schema steps (3.6.0 -> 3.7.0 for origin_id, 6.2.0 -> 6.2.1
 * for is_groupchat), keyset pages over `mam_muc_message` (key `(room_id, id)`) and the one-to-one
 * archive `mam_message` (key `(user_id, id)`), cut at the byte bound inside the query, and writes
 * that change a row only while it still holds the column's default (NULL, false): what MongooseIM
 * (or an earlier run) wrote is never rewritten.
 *
 * Checkpoints share the sender walk's table, each under a name of its own (`mam_message.origin_id
 * 0/1`), so the sender's checkpoints (named `K/N`) and each field's are kept apart.
 */
import { shardName, type PageLimits, type ShardSpec } from '../../pipeline/types.js';
import { CHECKPOINT_TABLE, MYSQL_CHECKPOINT_SQL, MYSQL_LOCK_NAME_SQL, integerLiteral } from './mysql-statements.js';
import { pgIntegerLiteral, POSTGRES_CHECKPOINT_SQL } from './postgres-statements.js';
import { compareDecimal, shardOfSql, type PageColumn, type SqlStatement } from './sql-dialect.js';

/** The columns a `--field` walk fills. */
export type FieldName = 'origin_id' | 'is_groupchat';
export const FIELD_NAMES: readonly FieldName[] = ['origin_id', 'is_groupchat'];

/** The two archives: the rooms' and the users' (one-to-one). */
export type ArchiveTable = 'mam_muc_message' | 'mam_message';

/** One table a field is walked in. */
export interface FieldTarget {
  readonly table: ArchiveTable;
  readonly field: FieldName;
}

/**
 * One table a walk reads, and the fields it fills there (in `FIELD_NAMES` order): one field, or
 * on `mam_message` both (`--field origin_id,is_groupchat`: one read, one decode, one write).
 */
export interface WalkTarget {
  readonly table: ArchiveTable;
  readonly fields: readonly FieldName[];
}

/** Which tables MongooseIM gave the column: origin_id both (3.7.0), is_groupchat the users' archive only (6.2.1). */
export function fieldTargets(field: FieldName): FieldTarget[] {
  return field === 'origin_id'
    ? [
        { table: 'mam_muc_message', field },
        { table: 'mam_message', field },
      ]
    : [{ table: 'mam_message', field }];
}

/** The tables a walk of `fields` reads, each with the fields it fills there (`fields` in any order). */
export function walkTargets(fields: readonly FieldName[]): WalkTarget[] {
  const targets: WalkTarget[] = [];
  for (const table of ['mam_muc_message', 'mam_message'] as const) {
    const here = FIELD_NAMES.filter((f) => fields.includes(f) && fieldTargets(f).some((t) => t.table === table));
    if (here.length > 0) targets.push({ table, fields: here });
  }
  return targets;
}

/** The first key column: the room (`room_id`) or the archive's owner (`user_id`). */
export function ownerColumn(table: ArchiveTable): 'room_id' | 'user_id' {
  return table === 'mam_muc_message' ? 'room_id' : 'user_id';
}

/** Primary key of either archive, as decimal strings (64-bit ids). */
export interface FieldRowKey {
  readonly table: ArchiveTable;
  /** `room_id` or `user_id`. */
  readonly owner: string;
  readonly id: string;
}

/** A write of one row: what changes (an origin_id to store, `true` for is_groupchat); a field absent keeps its default. */
export interface FieldRowWrite {
  readonly owner: string;
  readonly id: string;
  readonly origin_id?: string;
  readonly is_groupchat?: true;
}

/** The guide's index for origin_id (none for is_groupchat). */
export function fieldIndexName(target: FieldTarget): string | null {
  if (target.field !== 'origin_id') return null;
  return target.table === 'mam_message' ? 'i_mam_message_username_jid_origin_id' : 'i_mam_muc_message_room_id_sender_id_origin_id';
}

/**
 * Name of a partition's checkpoint and lock: the table, the fields it fills and the shard
 * (`mam_message.origin_id 0/1`, `mam_message.origin_id+is_groupchat 0/1`). A walk of other fields
 * is another walk (its pages are other rows), so it never reads this checkpoint; a combined walk's
 * `mam_muc_message` partition fills origin_id only, the very walk of `--field origin_id` there,
 * and shares its name.
 */
export function fieldPartitionName(target: WalkTarget, shard: ShardSpec): string {
  return `${target.table}.${target.fields.join('+')} ${shardName(shard)}`;
}

/** `P`: the driver's parameter (a plain value for pg and mysql2, a typed, named one for mssql). */
export interface FieldDialect<P = unknown> {
  readonly kind: 'postgres' | 'mysql' | 'mssql';
  /** One row: `has_table`, `has_column`, `has_index`, `has_sender_id` (counts or booleans). */
  schemaCheck(target: FieldTarget): SqlStatement<P>;
  /** The upgrade guide's statements, verbatim: the column, then its index (origin_id only). */
  schemaStatements(target: FieldTarget): { readonly column: string; readonly index: string | null };
  /** What the guide's migration is called, for the "schema not ready" message. */
  readonly guide: Record<FieldName, string>;
  readonly checkpointTableCheck: SqlStatement<P>;
  readonly createCheckpointTable: string;
  /** Zero or one row: `last_room_id` (the owner), `last_id`. */
  readCheckpoint(name: string): SqlStatement<P>;
  deleteCheckpoint(name: string): SqlStatement<P>;
  saveCheckpoint(name: string, owner: string, id: string): SqlStatement<P>;
  /** One row: `n`, the statistics' row count of the table. */
  rowEstimate(table: ArchiveTable): SqlStatement<P>;
  /** One row: `n`, rows of the shard still holding a default of one of the fields. */
  exactCount(target: WalkTarget, shard: ShardSpec): SqlStatement<P>;
  /**
   * Up to `limits.records` rows after `after` (only those still holding the default of one of the
   * fields, unless `scan`), cut at `limits.bytes` (the first row always comes): `owner`, `id`,
   * `message`, `candidates`, and each field under its own name (the column as stored).
   */
  page(target: WalkTarget, after: { owner: string; id: string } | null, limits: PageLimits, shard: ShardSpec, scan: boolean): SqlStatement<P>;
  /** Run first, in the same transaction as `page` (planner settings local to it). */
  readonly pageSettings: readonly SqlStatement<P>[];
  /**
   * `page`'s output columns and their types, where the driver reads pages by a faster path of
   * its own (`SqlDriver.readRows`: PostgreSQL's binary COPY, whose sessions hold the same planner
   * settings as `pageSettings`); absent, pages are plain queries.
   */
  readonly pageColumns?: (target: WalkTarget) => readonly PageColumn[];
  /**
   * Sets each field a row's write names, each only where the column still holds its default (a
   * field the write leaves out is kept); `rows` are one contiguous stretch of the key. The row
   * count is of rows that changed at all.
   */
  update(target: WalkTarget, rows: readonly FieldRowWrite[]): SqlStatement<P>[];
  /** Random rows of the table: `owner`, `id`, `message`, and each field under its own name. */
  verifySample(target: WalkTarget, size: number): SqlStatement<P>;
  lock(name: string): SqlStatement<P>;
  unlock(name: string): SqlStatement<P>;
  /** Null when `originId` fits the column, else why not. */
  checkStorable(originId: string): string | null;
  /**
   * The database refused a value itself (a character the database's encoding cannot hold): the
   * batch is then written row by row, each under a savepoint, and the refused rows reported.
   */
  isRefusedValue(error: unknown): boolean;
  /** One row's write under a savepoint: set it, undo to it, release it. */
  readonly savepoint: { readonly set: SqlStatement<P>; readonly rollback: SqlStatement<P>; readonly release: SqlStatement<P> };
}

const statement = (sql: string, params: readonly unknown[] = []): SqlStatement => ({ sql, params });

const POSTGRES_FIELD_REFUSED_CODES = new Set(['22P05', '22021']);

/** The rows a walk still has to look at: those holding a default of one of its fields. */
function defaultCondition(target: WalkTarget, kind: 'postgres' | 'mysql'): string {
  const conditions = target.fields.map((field) =>
    field === 'origin_id' ? 'origin_id IS NULL' : kind === 'postgres' ? 'NOT is_groupchat' : 'is_groupchat = 0',
  );
  return conditions.length === 1 ? conditions[0] : `(${conditions.join(' OR ')})`;
}

/**
 * A keyset page cut by payload bytes inside the database: the inner query picks up to N keys with
 * their payload lengths, a running sum keeps the rows up to the byte bound (and always the first),
 * and only those rows' payloads are read back. Every ORDER BY names its source (`s.`, `m.`): the
 * output columns carry other types (text ids) under the same names.
 */
function fieldPageSql(target: WalkTarget, options: { keyset: string; shard: ShardSpec; records: number; bytes: number; scan: boolean; pg: boolean }): string {
  const owner = ownerColumn(target.table);
  const where = [options.scan ? 'TRUE' : defaultCondition(target, options.pg ? 'postgres' : 'mysql')];
  if (options.keyset !== '') where.push(options.keyset);
  if (options.shard.count > 1) where.push(`${shardOfSql(owner, String(options.shard.count))} = ${options.shard.index}`);
  const len = options.pg ? 'octet_length(message)' : 'LENGTH(message)';
  const id = options.pg ? 'm.id::text' : 'm.id';
  return (
    `SELECT m.${owner} AS owner, ${id} AS id, m.message, k.candidates, ${target.fields.map((f) => `m.${f}`).join(', ')} FROM (` +
    `SELECT s.owner, s.id, s.len, SUM(s.len) OVER (ORDER BY s.owner, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running, ` +
    `COUNT(*) OVER () AS candidates FROM (` +
    `SELECT ${owner} AS owner, id, ${len} AS len FROM ${target.table} WHERE ${where.join(' AND ')} ORDER BY ${owner}, id LIMIT ${Math.floor(options.records)}` +
    `) s) k JOIN ${target.table} m ON m.${owner} = k.owner AND m.id = k.id ` +
    `WHERE k.running <= ${integerLiteral(String(Math.floor(options.bytes)))} OR k.running = k.len ORDER BY m.${owner}, m.id`
  );
}

/** The smallest and the largest key of `rows` (not empty), as integers. */
function keyRange(rows: readonly { owner: string; id: string }[]): [{ owner: string; id: string }, { owner: string; id: string }] {
  const cmp = (a: { owner: string; id: string }, b: { owner: string; id: string }): number => compareDecimal(a.owner, b.owner) || compareDecimal(a.id, b.id);
  let low = rows[0];
  let high = rows[0];
  for (const r of rows) {
    if (cmp(r, low) < 0) low = r;
    if (cmp(r, high) > 0) high = r;
  }
  return [low, high];
}

export const POSTGRES_FIELD_DIALECT: FieldDialect = {
  kind: 'postgres',
  schemaCheck: (target) =>
    statement(
      `SELECT to_regclass($1) IS NOT NULL AS has_table,
              EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2) AS has_column,
              ($3::text IS NULL OR EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $3)) AS has_index,
              EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'sender_id') AS has_sender_id`,
      [target.table, target.field, fieldIndexName(target)],
    ),
  schemaStatements(target) {
    if (target.field === 'is_groupchat') return { column: 'ALTER TABLE mam_message ADD COLUMN is_groupchat boolean NOT NULL DEFAULT false;', index: null };
    return target.table === 'mam_message'
      ? {
          column: 'ALTER TABLE mam_message ADD COLUMN origin_id varchar;',
          index: 'CREATE INDEX i_mam_message_username_jid_origin_id ON mam_message USING BTREE (user_id, remote_bare_jid, origin_id);',
        }
      : {
          column: 'ALTER TABLE mam_muc_message ADD COLUMN origin_id varchar;',
          index: 'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id ON mam_muc_message USING BTREE (room_id, sender_id, origin_id);',
        };
  },
  guide: {
    origin_id: 'the MongooseIM 3.6.0 -> 3.7.0 upgrade guide (message retraction)',
    is_groupchat: 'MongooseIM 6.2.1 (priv/migrations/pgsql_6.2.0_6.2.1.sql)',
  },
  checkpointTableCheck: statement(`SELECT to_regclass($1) IS NOT NULL AS present`, [CHECKPOINT_TABLE]),
  createCheckpointTable: `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
  shard text PRIMARY KEY,
  last_room_id bigint NOT NULL,
  last_id bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());`,
  readCheckpoint: (name) => statement(`SELECT last_room_id::text AS last_room_id, last_id::text AS last_id FROM ${CHECKPOINT_TABLE} WHERE shard = $1`, [name]),
  deleteCheckpoint: (name) => statement(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = $1`, [name]),
  saveCheckpoint: (name, owner, id) => statement(POSTGRES_CHECKPOINT_SQL, [name, owner, id]),
  rowEstimate: (table) => statement(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)`, [table]),
  exactCount(target, shard) {
    const owner = ownerColumn(target.table);
    const sf = shard.count === 1 ? '' : ` AND ${shardOfSql(owner, String(shard.count))} = ${shard.index}`;
    return statement(`SELECT count(*)::text AS n FROM ${target.table} WHERE ${defaultCondition(target, 'postgres')}${sf}`);
  },
  page(target, after, limits, shard, scan) {
    const owner = ownerColumn(target.table);
    const keyset = after === null ? '' : `(${owner}, id) > (${pgIntegerLiteral(after.owner)}, ${pgIntegerLiteral(after.id)})`;
    return statement(fieldPageSql(target, { keyset, shard, records: limits.records, bytes: limits.bytes, scan, pg: true }));
  },
  // A page must reach the archive through its primary key, in key order, stopping at the page's
  // end (see PAGE_READER_SETTINGS): left alone, the planner may sort a whole room or scan the
  // table for a shard's page.
  pageSettings: [statement('SET LOCAL enable_seqscan = off'), statement('SET LOCAL enable_bitmapscan = off')],
  // Read by binary COPY: the payload as raw bytes instead of hex text twice its size.
  pageColumns: (target) => [
    { name: 'owner', type: 'integer' },
    { name: 'id', type: 'text' },
    { name: 'message', type: 'bytea' },
    { name: 'candidates', type: 'integer' },
    ...target.fields.map((name): PageColumn => ({ name, type: name === 'origin_id' ? 'text' : 'boolean' })),
  ],
  update(target, rows) {
    const owner = ownerColumn(target.table);
    const [low, high] = keyRange(rows);
    // Bounded by the batch's first and last key so that the join stays on that stretch of the
    // primary key (see POSTGRES_UPDATE_SQL).
    const range = `AND (m.${owner}, m.id) >= (${pgIntegerLiteral(low.owner)}, ${pgIntegerLiteral(low.id)}) AND (m.${owner}, m.id) <= (${pgIntegerLiteral(high.owner)}, ${pgIntegerLiteral(high.id)})`;
    // One statement for one field or two: a field a row's write leaves out comes as NULL (false)
    // and keeps what the row holds; each column changes only from its default.
    const sets: string[] = [];
    const changes: string[] = [];
    const columns: string[] = [];
    const params: unknown[] = [rows.map((r) => r.owner), rows.map((r) => r.id)];
    if (target.fields.includes('origin_id')) {
      params.push(rows.map((r) => r.origin_id ?? null));
      columns.push(`$${params.length}::text[]`);
      sets.push('origin_id = COALESCE(m.origin_id, v.origin_id)');
      changes.push('(m.origin_id IS NULL AND v.origin_id IS NOT NULL)');
    }
    if (target.fields.includes('is_groupchat')) {
      params.push(rows.map((r) => r.is_groupchat === true));
      columns.push(`$${params.length}::bool[]`);
      sets.push('is_groupchat = m.is_groupchat OR v.is_groupchat');
      changes.push('(NOT m.is_groupchat AND v.is_groupchat)');
    }
    return [
      statement(
        `UPDATE ${target.table} m SET ${sets.join(', ')} FROM unnest($1::int[], $2::bigint[], ${columns.join(', ')}) AS v(owner, id, ${target.fields.join(', ')})
        WHERE m.${owner} = v.owner AND m.id = v.id AND (${changes.join(' OR ')}) ${range}`,
        params,
      ),
    ];
  },
  verifySample: (target, size) =>
    statement(
      `SELECT ${ownerColumn(target.table)} AS owner, id::text AS id, message, ${target.fields.join(', ')} FROM ${target.table} ORDER BY random() LIMIT $1`,
      [Math.floor(size)],
    ),
  lock: (name) => statement(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS acquired`, [`mim_sender_jid ${name}`]),
  unlock: (name) => statement(`SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS released`, [`mim_sender_jid ${name}`]),
  // varchar without a length: only what PostgreSQL text cannot hold at all.
  checkStorable: (originId) => (originId.includes('\u0000') ? 'contains a NUL character, which PostgreSQL text cannot store' : null),
  // untranslatable_character, character_not_in_repertoire (a LATIN1 or SQL_ASCII database).
  isRefusedValue: (error) => POSTGRES_FIELD_REFUSED_CODES.has((error as { code?: unknown } | null)?.code as string),
  savepoint: {
    set: statement('SAVEPOINT field_row'),
    rollback: statement('ROLLBACK TO SAVEPOINT field_row'),
    release: statement('RELEASE SAVEPOINT field_row'),
  },
};

/** `varchar(250) CHARACTER SET binary`: MySQL counts bytes. */
export const MYSQL_MAX_ORIGIN_ID_BYTES = 250;

const mysqlTableIn = (table: string): string => `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${table}'`;
const mysqlColumnIn = (table: string, column: string): string =>
  `SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${table}' AND COLUMN_NAME = '${column}'`;

export const MYSQL_FIELD_DIALECT: FieldDialect = {
  kind: 'mysql',
  schemaCheck(target) {
    const index = fieldIndexName(target);
    const hasIndex =
      index === null
        ? '1'
        : `(SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${target.table}' AND INDEX_NAME = '${index}')`;
    return statement(
      `SELECT (${mysqlTableIn(target.table)}) AS has_table, (${mysqlColumnIn(target.table, target.field)}) AS has_column, ${hasIndex} AS has_index, ` +
        `(${mysqlColumnIn(target.table, 'sender_id')}) AS has_sender_id`,
    );
  },
  schemaStatements(target) {
    if (target.field === 'is_groupchat') return { column: 'ALTER TABLE mam_message ADD COLUMN is_groupchat boolean NOT NULL DEFAULT false;', index: null };
    return target.table === 'mam_message'
      ? {
          column: 'ALTER TABLE mam_message ADD COLUMN origin_id varchar(250) CHARACTER SET binary;',
          index: 'CREATE INDEX i_mam_message_username_jid_origin_id USING BTREE ON mam_message (user_id, remote_bare_jid, origin_id);',
        }
      : {
          column: 'ALTER TABLE mam_muc_message ADD COLUMN origin_id varchar(250) CHARACTER SET binary;',
          index: 'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id USING BTREE ON mam_muc_message (room_id, sender_id, origin_id);',
        };
  },
  guide: {
    origin_id: 'the MongooseIM 3.6.0 -> 3.7.0 upgrade guide (message retraction)',
    is_groupchat: 'MongooseIM 6.2.1 (priv/migrations/mysql_6.2.0_6.2.1.sql)',
  },
  checkpointTableCheck: statement(`SELECT (${mysqlTableIn(CHECKPOINT_TABLE)}) AS present`),
  createCheckpointTable: `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
  shard VARCHAR(64) NOT NULL PRIMARY KEY,
  last_room_id BIGINT UNSIGNED NOT NULL,
  last_id BIGINT UNSIGNED NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) CHARACTER SET utf8mb4;`,
  readCheckpoint: (name) => statement(`SELECT last_room_id, last_id FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [name]),
  deleteCheckpoint: (name) => statement(`DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = ?`, [name]),
  saveCheckpoint: (name, owner, id) => statement(MYSQL_CHECKPOINT_SQL, [name, owner, id]),
  rowEstimate: (table) => statement(`SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, [table]),
  exactCount(target, shard) {
    const owner = ownerColumn(target.table);
    const sf = shard.count === 1 ? '' : ` AND ${shardOfSql(owner, String(shard.count))} = ${shard.index}`;
    return statement(`SELECT COUNT(*) AS n FROM ${target.table} WHERE ${defaultCondition(target, 'mysql')}${sf}`);
  },
  page(target, after, limits, shard, scan) {
    const owner = ownerColumn(target.table);
    let keyset = '';
    if (after !== null) {
      const o = integerLiteral(after.owner);
      keyset = `(${owner} > ${o} OR (${owner} = ${o} AND id > ${integerLiteral(after.id)}))`;
    }
    return statement(fieldPageSql(target, { keyset, shard, records: limits.records, bytes: limits.bytes, scan, pg: false }));
  },
  pageSettings: [],
  update(target, rows) {
    const owner = ownerColumn(target.table);
    // Driven from the derived table (eq_ref on the primary key), so that exactly the batch's rows
    // are locked (see mysqlUpdateSql). A field a row's write leaves out comes as NULL (0) and
    // keeps what the row holds; each column changes only from its default.
    const withOrigin = target.fields.includes('origin_id');
    const withGroupchat = target.fields.includes('is_groupchat');
    const derived = rows
      .map((r, i) => {
        const values = [`${integerLiteral(r.owner)}${i === 0 ? ' AS owner' : ''}`, `${integerLiteral(r.id)}${i === 0 ? ' AS id' : ''}`];
        if (withOrigin) values.push(`?${i === 0 ? ' AS origin_id' : ''}`);
        if (withGroupchat) values.push(`${r.is_groupchat === true ? 1 : 0}${i === 0 ? ' AS is_groupchat' : ''}`);
        return `SELECT ${values.join(', ')}`;
      })
      .join(' UNION ALL ');
    const sets: string[] = [];
    const changes: string[] = [];
    if (withOrigin) {
      sets.push('m.origin_id = COALESCE(m.origin_id, v.origin_id)');
      changes.push('(m.origin_id IS NULL AND v.origin_id IS NOT NULL)');
    }
    if (withGroupchat) {
      sets.push('m.is_groupchat = GREATEST(m.is_groupchat, v.is_groupchat)');
      changes.push('(m.is_groupchat = 0 AND v.is_groupchat = 1)');
    }
    return [
      statement(
        `UPDATE ${target.table} m JOIN (${derived}) v ON m.${owner} = v.owner AND m.id = v.id SET ${sets.join(', ')} WHERE ${changes.join(' OR ')}`,
        // The id's UTF-8 bytes, as MongooseIM stores them in the binary column.
        withOrigin ? rows.map((r) => (r.origin_id === undefined ? null : Buffer.from(r.origin_id, 'utf8'))) : [],
      ),
    ];
  },
  verifySample: (target, size) =>
    statement(
      `SELECT ${ownerColumn(target.table)} AS owner, id, message, ${target.fields.join(', ')} FROM ${target.table} ORDER BY RAND() LIMIT ${Math.floor(size)}`,
    ),
  lock: (name) => statement(`SELECT GET_LOCK(${MYSQL_LOCK_NAME_SQL}, 0) AS acquired`, [`mim_sender_jid ${name}`]),
  unlock: (name) => statement(`SELECT RELEASE_LOCK(${MYSQL_LOCK_NAME_SQL}) AS released`, [`mim_sender_jid ${name}`]),
  checkStorable(originId) {
    const bytes = Buffer.byteLength(originId, 'utf8');
    return bytes > MYSQL_MAX_ORIGIN_ID_BYTES
      ? `origin-id is ${bytes} bytes, longer than ${MYSQL_MAX_ORIGIN_ID_BYTES} (varchar(250) CHARACTER SET binary)`
      : null;
  },
  // A binary column takes any bytes; the length is checked before writing.
  isRefusedValue: () => false,
  savepoint: {
    set: statement('SAVEPOINT field_row'),
    rollback: statement('ROLLBACK TO SAVEPOINT field_row'),
    release: statement('RELEASE SAVEPOINT field_row'),
  },
};
