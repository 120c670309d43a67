/**
 * The SQL Server dialect of the backfill, as plain data: each statement is its text plus typed,
 * named parameters, so the statements and parameter shapes are tested without a server (none can
 * run on our machines; see the README for what is and is not verified for MSSQL).
 *
 * Bulk statements join on a `VALUES` table constructor with parameters, split into chunks that
 * stay under SQL Server's 2,100 parameters per request.
 */
import { shardName, type PageLimits, type ShardSpec } from '../../pipeline/types.js';
import { byteBoundedPageSql, shardLockName, shardOfSql, type RowKey, type SqlDialect, type SqlStatement } from './sql-dialect.js';

export type MssqlParamType = 'BigInt' | 'NVarChar' | 'Int';

export interface MssqlParam {
  readonly name: string;
  readonly type: MssqlParamType;
  readonly value: string | number | null;
}

export type MssqlStatement = SqlStatement<MssqlParam>;

/** SQL Server refuses requests with more than 2,100 parameters; keep a margin. */
export const MSSQL_MAX_PARAMS = 2000;
export const CHECKPOINT_TABLE = 'dbo.mim_sender_jid_checkpoint';
/** `nvarchar(250)`: SQL Server counts UTF-16 code units. */
export const MAX_JID_PART_UNITS = 250;

export const MSSQL_SCHEMA_STATEMENTS = {
  column: 'ALTER TABLE [dbo].[mam_muc_message] ADD sender_id bigint;',
  index: 'CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message(sender_id);',
} as const;

export const MSSQL_SCHEMA_CHECK_SQL =
  `SELECT CASE WHEN OBJECT_ID('dbo.mam_muc_message', 'U') IS NULL THEN 0 ELSE 1 END AS has_table, ` +
  `CASE WHEN COL_LENGTH('dbo.mam_muc_message', 'sender_id') IS NULL THEN 0 ELSE 1 END AS has_column, ` +
  `(SELECT COUNT(*) FROM sys.indexes WHERE name = 'i_mam_muc_message_sender_id' AND object_id = OBJECT_ID('dbo.mam_muc_message')) AS has_index`;

export const MSSQL_CHECKPOINT_TABLE_SQL =
  `IF OBJECT_ID('${CHECKPOINT_TABLE}', 'U') IS NULL ` +
  `CREATE TABLE ${CHECKPOINT_TABLE} (shard nvarchar(64) NOT NULL PRIMARY KEY, last_room_id bigint NOT NULL, ` +
  `last_id bigint NOT NULL, updated_at datetime2 NOT NULL DEFAULT SYSUTCDATETIME())`;

export function readCheckpointStatement(shard: ShardSpec): MssqlStatement {
  return {
    sql:
      `IF OBJECT_ID('${CHECKPOINT_TABLE}', 'U') IS NOT NULL ` +
      `SELECT CAST(last_room_id AS varchar(20)) AS last_room_id, CAST(last_id AS varchar(20)) AS last_id FROM ${CHECKPOINT_TABLE} WHERE shard = @shard`,
    params: [{ name: 'shard', type: 'NVarChar', value: shardName(shard) }],
  };
}

export function deleteCheckpointStatement(shard: ShardSpec): MssqlStatement {
  return { sql: `DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = @shard`, params: [{ name: 'shard', type: 'NVarChar', value: shardName(shard) }] };
}

export function saveCheckpointStatement(shard: ShardSpec, key: RowKey): MssqlStatement {
  return {
    sql:
      `UPDATE ${CHECKPOINT_TABLE} SET last_room_id = @room_id, last_id = @id, updated_at = SYSUTCDATETIME() WHERE shard = @shard; ` +
      `IF @@ROWCOUNT = 0 INSERT INTO ${CHECKPOINT_TABLE} (shard, last_room_id, last_id) VALUES (@shard, @room_id, @id);`,
    params: [
      { name: 'shard', type: 'NVarChar', value: shardName(shard) },
      { name: 'room_id', type: 'BigInt', value: key.roomId },
      { name: 'id', type: 'BigInt', value: key.id },
    ],
  };
}

function shardFilter(shard: ShardSpec): { sql: string; params: MssqlParam[] } {
  if (shard.count === 1) return { sql: '', params: [] };
  return {
    sql: ` AND ${shardOfSql('room_id', '@shard_count')} = @shard_index`,
    params: [
      { name: 'shard_count', type: 'Int', value: shard.count },
      { name: 'shard_index', type: 'Int', value: shard.index },
    ],
  };
}

export function estimateStatement(shard: ShardSpec): MssqlStatement {
  const sf = shardFilter(shard);
  return { sql: `SELECT COUNT_BIG(*) AS n FROM dbo.mam_muc_message WHERE sender_id IS NULL${sf.sql}`, params: sf.params };
}

export const MSSQL_ROW_ESTIMATE_SQL = `SELECT SUM(p.rows) AS n FROM sys.partitions p WHERE p.object_id = OBJECT_ID('dbo.mam_muc_message') AND p.index_id IN (0, 1)`;

const PAGE_COLUMNS = 'CAST(room_id AS varchar(20)) AS room_id, CAST(id AS varchar(20)) AS id, message';

/**
 * Keyset page in the clustered primary key's order (`columns`: what each row answers with). The
 * ORDER BY names the table's columns (`t.`): T-SQL resolves an unqualified ORDER BY name to a
 * select-list alias first, and `columns` casts the keys to varchar under their own names, so
 * `ORDER BY room_id, id` would make TOP pick the first rows in string order.
 */
export function pageStatement(after: RowKey | null, limit: number, shard: ShardSpec, columns = PAGE_COLUMNS, onlyUnwritten = true): MssqlStatement {
  const params: MssqlParam[] = [{ name: 'limit', type: 'Int', value: limit }];
  const conditions = onlyUnwritten ? ['sender_id IS NULL'] : [];
  if (after !== null) {
    conditions.push('(room_id > @after_room_id OR (room_id = @after_room_id AND id > @after_id))');
    params.push({ name: 'after_room_id', type: 'BigInt', value: after.roomId }, { name: 'after_id', type: 'BigInt', value: after.id });
  }
  const sf = shardFilter(shard);
  if (sf.sql !== '') conditions.push(sf.sql.replace(/^ AND /, ''));
  return {
    sql:
      `SELECT TOP (@limit) ${columns} ` +
      `FROM dbo.mam_muc_message t${conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`} ORDER BY t.room_id, t.id`,
    params: [...params, ...sf.params],
  };
}

/**
 * The keyset of `pageStatement` (keys and `DATALENGTH`), cut at `limits.bytes` in the query; with
 * `scan`, every row (not only those still NULL) with its sender's `mam_server_user` row.
 */
export function boundedPageStatement(after: RowKey | null, limits: PageLimits, shard: ShardSpec, scan = false): MssqlStatement {
  const keyset = pageStatement(after, limits.records, shard, 'room_id, id, DATALENGTH(message) AS len', !scan);
  const columns = 'CAST(m.room_id AS varchar(20)) AS room_id, CAST(m.id AS varchar(20)) AS id, m.message, k.candidates';
  return {
    sql: byteBoundedPageSql({
      keyset: keyset.sql,
      bytes: '@bytes',
      table: 'dbo.mam_muc_message',
      columns: scan ? `${columns}, CAST(m.sender_id AS varchar(20)) AS sender_id, u.server, u.user_name` : columns,
      ...(scan ? { join: 'LEFT JOIN dbo.mam_server_user u ON u.id = m.sender_id' } : {}),
    }),
    params: [...keyset.params, { name: 'bytes', type: 'BigInt', value: limits.bytes }],
  };
}

/** Keys of rows still NULL, through the index on `sender_id` (named: stale statistics must not turn it into a scan). */
export function unwrittenKeysStatement(shard: ShardSpec, limit: number): MssqlStatement {
  const sf = shardFilter(shard);
  return {
    sql:
      `SELECT TOP (@limit) CAST(room_id AS varchar(20)) AS room_id, CAST(id AS varchar(20)) AS id ` +
      `FROM dbo.mam_muc_message WITH (INDEX(i_mam_muc_message_sender_id)) WHERE sender_id IS NULL${sf.sql}`,
    params: [{ name: 'limit', type: 'Int', value: limit }, ...sf.params],
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Selects of `(server, user_name)` pairs, each VALUES row tagged with its index in `pairs`, so the
 * answer maps back to the pair asked for even when the column's collation matches another case.
 */
export function selectSendersStatements(pairs: readonly { server: string; user: string }[]): MssqlStatement[] {
  return chunks(
    pairs.map((p, i) => ({ ...p, i })),
    Math.floor(MSSQL_MAX_PARAMS / 3),
  ).map((chunk) => ({
    sql:
      `SELECT p.pair AS pair, CAST(u.id AS varchar(20)) AS id FROM dbo.mam_server_user u JOIN (VALUES ` +
      chunk.map((p) => `(@p${p.i}, @s${p.i}, @u${p.i})`).join(', ') +
      `) AS p(pair, server, user_name) ON u.server = p.server AND u.user_name = p.user_name`,
    params: chunk.flatMap((p): MssqlParam[] => [
      { name: `p${p.i}`, type: 'Int', value: p.i },
      { name: `s${p.i}`, type: 'NVarChar', value: p.server },
      { name: `u${p.i}`, type: 'NVarChar', value: p.user },
    ]),
  }));
}

/** Inserts of the pairs not there yet; a concurrent insert of the same pair fails on the unique constraint (2627/2601) and is selected again. */
export function insertSendersStatements(pairs: readonly { server: string; user: string }[]): MssqlStatement[] {
  return chunks(
    pairs.map((p, i) => ({ ...p, i })),
    Math.floor(MSSQL_MAX_PARAMS / 2),
  ).map((chunk) => ({
    sql:
      `INSERT INTO dbo.mam_server_user (server, user_name) SELECT p.server, p.user_name FROM (VALUES ` +
      chunk.map((p) => `(@s${p.i}, @u${p.i})`).join(', ') +
      `) AS p(server, user_name) WHERE NOT EXISTS (SELECT 1 FROM dbo.mam_server_user u WITH (UPDLOCK, HOLDLOCK) ` +
      `WHERE u.server = p.server AND u.user_name = p.user_name)`,
    params: chunk.flatMap((p): MssqlParam[] => [
      { name: `s${p.i}`, type: 'NVarChar', value: p.server },
      { name: `u${p.i}`, type: 'NVarChar', value: p.user },
    ]),
  }));
}

/** `UPDATE ... FROM ... JOIN (VALUES ...)` statements of the batch, only where sender_id is still NULL. */
export function updateStatements(rows: readonly { roomId: string; id: string; senderId: string }[]): MssqlStatement[] {
  return chunks(
    rows.map((r, i) => ({ ...r, i })),
    Math.floor(MSSQL_MAX_PARAMS / 3),
  ).map((chunk) => ({
    sql:
      `UPDATE m SET m.sender_id = v.sid FROM dbo.mam_muc_message AS m JOIN (VALUES ` +
      chunk.map((r) => `(@r${r.i}, @i${r.i}, @s${r.i})`).join(', ') +
      `) AS v(room_id, id, sid) ON m.room_id = v.room_id AND m.id = v.id WHERE m.sender_id IS NULL`,
    params: chunk.flatMap((r): MssqlParam[] => [
      { name: `r${r.i}`, type: 'BigInt', value: r.roomId },
      { name: `i${r.i}`, type: 'BigInt', value: r.id },
      { name: `s${r.i}`, type: 'BigInt', value: r.senderId },
    ]),
  }));
}

export function verifySampleStatement(size: number): MssqlStatement {
  return {
    sql:
      `SELECT TOP (@size) CAST(m.room_id AS varchar(20)) AS room_id, CAST(m.id AS varchar(20)) AS id, m.message, ` +
      `CAST(m.sender_id AS varchar(20)) AS sender_id, u.server, u.user_name ` +
      `FROM dbo.mam_muc_message m LEFT JOIN dbo.mam_server_user u ON u.id = m.sender_id ` +
      `WHERE m.sender_id IS NOT NULL ORDER BY NEWID()`,
    params: [{ name: 'size', type: 'Int', value: size }],
  };
}

/** Duplicate key (2627, 2601): a concurrent insert of the same sender won; select again. */
const DUPLICATE_KEY_ERRORS = new Set([2627, 2601]);
/** String or binary data would be truncated (8152, and 2628 since SQL Server 2019). */
const REFUSED_VALUE_ERRORS = new Set([8152, 2628]);

export const MSSQL_DIALECT: SqlDialect<MssqlParam> = {
  archiveTableNotFound: '(dbo.mam_muc_message)',
  schemaCheck: { sql: MSSQL_SCHEMA_CHECK_SQL, params: [] },
  senderUniqueCheck: {
    sql:
      `SELECT COUNT(*) AS has_unique FROM sys.indexes i WHERE i.object_id = OBJECT_ID('dbo.mam_server_user') AND i.is_unique = 1 AND i.has_filter = 0 ` +
      `AND (SELECT COUNT(*) FROM sys.index_columns c WHERE c.object_id = i.object_id AND c.index_id = i.index_id AND c.is_included_column = 0) = 2 ` +
      `AND (SELECT COUNT(*) FROM sys.index_columns c JOIN sys.columns col ON col.object_id = c.object_id AND col.column_id = c.column_id ` +
      `WHERE c.object_id = i.object_id AND c.index_id = i.index_id AND c.is_included_column = 0 AND col.name IN ('server', 'user_name')) = 2`,
    params: [],
  },
  senderUniqueStatement:
    'ALTER TABLE [dbo].[mam_server_user] ADD CONSTRAINT [mam_server_user$uc_mam_server_user_name] UNIQUE NONCLUSTERED ([server] ASC, [user_name] ASC);',
  schemaStatements: MSSQL_SCHEMA_STATEMENTS,
  checkpointTable: CHECKPOINT_TABLE,
  checkpointTableCheck: { sql: `SELECT CASE WHEN OBJECT_ID('${CHECKPOINT_TABLE}', 'U') IS NULL THEN 0 ELSE 1 END AS present`, params: [] },
  createCheckpointTable: MSSQL_CHECKPOINT_TABLE_SQL,
  readCheckpoint: readCheckpointStatement,
  deleteCheckpoint: deleteCheckpointStatement,
  saveCheckpoint: saveCheckpointStatement,
  rowEstimate: { sql: MSSQL_ROW_ESTIMATE_SQL, params: [] },
  exactCount: estimateStatement,
  page: (after, limits, shard) => boundedPageStatement(after, limits, shard),
  scanPage: (after, limits, shard) => boundedPageStatement(after, limits, shard, true),
  unwrittenKeys: unwrittenKeysStatement,
  unwrittenKeysSettings: [],
  selectSenders: selectSendersStatements,
  insertSenders: insertSendersStatements,
  isInsertRace: (error) => DUPLICATE_KEY_ERRORS.has((error as { number?: unknown } | null)?.number as number),
  isRefusedValue: (error) => REFUSED_VALUE_ERRORS.has((error as { number?: unknown } | null)?.number as number),
  update: updateStatements,
  verifySample: verifySampleStatement,
  lockShard: (shard) => ({
    sql:
      `DECLARE @result int; EXEC @result = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; ` +
      `SELECT CASE WHEN @result >= 0 THEN 1 ELSE 0 END AS acquired`,
    params: [{ name: 'resource', type: 'NVarChar', value: shardLockName(shard) }],
  }),
  unlockShard: (shard) => ({
    sql: `EXEC sp_releaseapplock @Resource = @resource, @LockOwner = 'Session'`,
    params: [{ name: 'resource', type: 'NVarChar', value: shardLockName(shard) }],
  }),
  checkStorable: checkMssqlStorable,
};

export function checkMssqlStorable(user: string, server: string): string | null {
  for (const [name, value] of [
    ['user_name', user],
    ['server', server],
  ] as const) {
    if (value.length > MAX_JID_PART_UNITS) return `${name} is ${value.length} UTF-16 units, longer than ${MAX_JID_PART_UNITS} (nvarchar(250))`;
  }
  return null;
}

/**
 * `mssql://user:password@host:port/database?encrypt=true&trustServerCertificate=true` to the
 * driver's config; an ADO-style string (`Server=...;Database=...`) is passed through as is.
 */
export function mssqlConfigFromUrl(url: string): string | MssqlConnectionConfig {
  if (!/^(mssql|sqlserver):\/\//i.test(url)) return url;
  const u = new URL(url);
  const flag = (name: string, fallback: boolean): boolean => {
    const v = u.searchParams.get(name);
    return v === null ? fallback : v === 'true' || v === '1';
  };
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    server: u.hostname,
    port: u.port === '' ? 1433 : Number(u.port),
    ...(database === '' ? {} : { database }),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    options: { encrypt: flag('encrypt', true), trustServerCertificate: flag('trustServerCertificate', false) },
  };
}

export interface MssqlConnectionConfig {
  server: string;
  port: number;
  database?: string;
  user: string;
  password: string;
  options: { encrypt: boolean; trustServerCertificate: boolean };
}
