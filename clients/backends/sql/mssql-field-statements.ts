/**
 * The `--field origin_id|is_groupchat` statements for SQL Server, as data with typed, named
 * parameters (as mssql-statements.ts: tested up to the driver's binding, no server runs here):
 * the guides' schema steps (3.7.0: `origin_id nvarchar(250)` and its indexes on both archives;
 * 6.2.1: `mam_message.is_groupchat smallint NOT NULL DEFAULT 0`), keyset pages in the clustered
 * primary key's order cut at the byte bound, and writes joined on `VALUES` constructors chunked
 * under the 2,100-parameter limit, only where the row still holds the default.
 */
import type { PageLimits, ShardSpec } from '../../pipeline/types.js';
import { fieldIndexName, ownerColumn, type ArchiveTable, type FieldDialect, type FieldRowWrite, type WalkTarget } from './field-statements.js';
import { CHECKPOINT_TABLE, MSSQL_CHECKPOINT_TABLE_SQL, MSSQL_MAX_PARAMS, type MssqlParam, type MssqlStatement } from './mssql-statements.js';
import { shardOfSql } from './sql-dialect.js';

/** `nvarchar(250)`: SQL Server counts UTF-16 code units. */
export const MSSQL_MAX_ORIGIN_ID_UNITS = 250;

const nameParam = (value: string): MssqlParam => ({ name: 'shard', type: 'NVarChar', value });

/** Rows holding a default of one of the walk's fields. */
function defaultCondition(target: WalkTarget, alias: string): string {
  const conditions = target.fields.map((field) => (field === 'origin_id' ? `${alias}.origin_id IS NULL` : `${alias}.is_groupchat = 0`));
  return conditions.length === 1 ? conditions[0] : `(${conditions.join(' OR ')})`;
}

function shardFilter(target: WalkTarget, shard: ShardSpec): { sql: string | null; params: MssqlParam[] } {
  if (shard.count === 1) return { sql: null, params: [] };
  return {
    sql: `${shardOfSql(`t.${ownerColumn(target.table)}`, '@shard_count')} = @shard_index`,
    params: [
      { name: 'shard_count', type: 'Int', value: shard.count },
      { name: 'shard_index', type: 'Int', value: shard.index },
    ],
  };
}

/**
 * A page: TOP (@limit) keys with their payload lengths in primary key order (every row with
 * `scan`, else those still holding the default), a running sum keeping the rows up to @bytes (the
 * first always), and only those rows' payloads read back. Every ORDER BY is qualified: the output
 * casts the keys to varchar under other names, and T-SQL resolves an unqualified ORDER BY name to
 * the select list first.
 */
export function fieldPageStatement(
  target: WalkTarget,
  after: { owner: string; id: string } | null,
  limits: PageLimits,
  shard: ShardSpec,
  scan: boolean,
): MssqlStatement {
  const owner = ownerColumn(target.table);
  const conditions = scan ? [] : [defaultCondition(target, 't')];
  const params: MssqlParam[] = [{ name: 'limit', type: 'Int', value: limits.records }];
  if (after !== null) {
    conditions.push(`(t.${owner} > @after_owner OR (t.${owner} = @after_owner AND t.id > @after_id))`);
    params.push({ name: 'after_owner', type: 'BigInt', value: after.owner }, { name: 'after_id', type: 'BigInt', value: after.id });
  }
  const sf = shardFilter(target, shard);
  if (sf.sql !== null) conditions.push(sf.sql);
  params.push(...sf.params, { name: 'bytes', type: 'BigInt', value: limits.bytes });
  const where = conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
  return {
    sql:
      `SELECT CAST(m.${owner} AS varchar(20)) AS owner, CAST(m.id AS varchar(20)) AS id, m.message, k.candidates, ${target.fields.map((f) => `m.${f}`).join(', ')} FROM (` +
      `SELECT s.owner, s.id, s.len, SUM(s.len) OVER (ORDER BY s.owner, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running, ` +
      `COUNT(*) OVER () AS candidates FROM (` +
      `SELECT TOP (@limit) t.${owner} AS owner, t.id, DATALENGTH(t.message) AS len FROM dbo.${target.table} t${where} ORDER BY t.${owner}, t.id` +
      `) s) k JOIN dbo.${target.table} m ON m.${owner} = k.owner AND m.id = k.id ` +
      `WHERE k.running <= @bytes OR k.running = k.len ORDER BY m.${owner}, m.id`,
    params,
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * `UPDATE ... FROM ... JOIN (VALUES ...)` statements, chunked under the parameter limit: each
 * field a row's write names, only where the column still holds its default (a field left out comes
 * as NULL, 0, and keeps what the row holds).
 */
export function fieldUpdateStatements(target: WalkTarget, rows: readonly FieldRowWrite[]): MssqlStatement[] {
  const owner = ownerColumn(target.table);
  const withOrigin = target.fields.includes('origin_id');
  const withGroupchat = target.fields.includes('is_groupchat');
  const perRow = 2 + (withOrigin ? 1 : 0);
  const sets: string[] = [];
  const changes: string[] = [];
  if (withOrigin) {
    sets.push('m.origin_id = COALESCE(m.origin_id, v.origin_id)');
    changes.push('(m.origin_id IS NULL AND v.origin_id IS NOT NULL)');
  }
  if (withGroupchat) {
    sets.push('m.is_groupchat = CASE WHEN v.is_groupchat = 1 THEN 1 ELSE m.is_groupchat END');
    changes.push('(m.is_groupchat = 0 AND v.is_groupchat = 1)');
  }
  return chunks(
    rows.map((r, i) => ({ ...r, i })),
    Math.floor(MSSQL_MAX_PARAMS / perRow),
  ).map((chunk) => ({
    sql:
      `UPDATE m SET ${sets.join(', ')} FROM dbo.${target.table} AS m JOIN (VALUES ` +
      chunk
        .map((r) => {
          const values = [`@o${r.i}`, `@i${r.i}`];
          if (withOrigin) values.push(`@v${r.i}`);
          if (withGroupchat) values.push(r.is_groupchat === true ? '1' : '0');
          return `(${values.join(', ')})`;
        })
        .join(', ') +
      `) AS v(owner, id, ${target.fields.join(', ')}) ON m.${owner} = v.owner AND m.id = v.id WHERE ${changes.join(' OR ')}`,
    params: chunk.flatMap((r): MssqlParam[] => [
      { name: `o${r.i}`, type: 'BigInt', value: r.owner },
      { name: `i${r.i}`, type: 'BigInt', value: r.id },
      ...(withOrigin ? [{ name: `v${r.i}`, type: 'NVarChar' as const, value: r.origin_id ?? null }] : []),
    ]),
  }));
}

const objectName = (table: ArchiveTable): string => `dbo.${table}`;

export const MSSQL_FIELD_DIALECT: FieldDialect<MssqlParam> = {
  kind: 'mssql',
  schemaCheck(target) {
    const t = objectName(target.table);
    const index = fieldIndexName(target);
    const hasIndex = index === null ? '1' : `(SELECT COUNT(*) FROM sys.indexes WHERE name = '${index}' AND object_id = OBJECT_ID('${t}'))`;
    return {
      sql:
        `SELECT CASE WHEN OBJECT_ID('${t}', 'U') IS NULL THEN 0 ELSE 1 END AS has_table, ` +
        `CASE WHEN COL_LENGTH('${t}', '${target.field}') IS NULL THEN 0 ELSE 1 END AS has_column, ${hasIndex} AS has_index, ` +
        `CASE WHEN COL_LENGTH('${t}', 'sender_id') IS NULL THEN 0 ELSE 1 END AS has_sender_id`,
      params: [],
    };
  },
  schemaStatements(target) {
    if (target.field === 'is_groupchat') return { column: 'ALTER TABLE mam_message ADD is_groupchat smallint NOT NULL DEFAULT 0;', index: null };
    return target.table === 'mam_message'
      ? {
          column: 'ALTER TABLE mam_message ADD origin_id nvarchar(250) NULL;',
          index: 'CREATE INDEX i_mam_message_username_jid_origin_id ON mam_message (user_id, remote_bare_jid, origin_id);',
        }
      : {
          column: 'ALTER TABLE mam_muc_message ADD origin_id nvarchar(250) NULL;',
          index: 'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id ON mam_muc_message (room_id, sender_id, origin_id);',
        };
  },
  guide: {
    origin_id: 'the MongooseIM 3.6.0 -> 3.7.0 upgrade guide (message retraction)',
    is_groupchat: 'MongooseIM 6.2.1 (priv/migrations/mssql_6.2.0_6.2.1.sql)',
  },
  checkpointTableCheck: { sql: `SELECT CASE WHEN OBJECT_ID('${CHECKPOINT_TABLE}', 'U') IS NULL THEN 0 ELSE 1 END AS present`, params: [] },
  createCheckpointTable: MSSQL_CHECKPOINT_TABLE_SQL,
  readCheckpoint: (name) => ({
    sql:
      `IF OBJECT_ID('${CHECKPOINT_TABLE}', 'U') IS NOT NULL ` +
      `SELECT CAST(last_room_id AS varchar(20)) AS last_room_id, CAST(last_id AS varchar(20)) AS last_id FROM ${CHECKPOINT_TABLE} WHERE shard = @shard`,
    params: [nameParam(name)],
  }),
  deleteCheckpoint: (name) => ({ sql: `DELETE FROM ${CHECKPOINT_TABLE} WHERE shard = @shard`, params: [nameParam(name)] }),
  saveCheckpoint: (name, owner, id) => ({
    sql:
      `UPDATE ${CHECKPOINT_TABLE} SET last_room_id = @owner, last_id = @id, updated_at = SYSUTCDATETIME() WHERE shard = @shard; ` +
      `IF @@ROWCOUNT = 0 INSERT INTO ${CHECKPOINT_TABLE} (shard, last_room_id, last_id) VALUES (@shard, @owner, @id);`,
    params: [nameParam(name), { name: 'owner', type: 'BigInt', value: owner }, { name: 'id', type: 'BigInt', value: id }],
  }),
  rowEstimate: (table) => ({
    sql: `SELECT SUM(p.rows) AS n FROM sys.partitions p WHERE p.object_id = OBJECT_ID('${objectName(table)}') AND p.index_id IN (0, 1)`,
    params: [],
  }),
  exactCount(target, shard) {
    const sf = shardFilter(target, shard);
    return {
      sql: `SELECT COUNT_BIG(*) AS n FROM dbo.${target.table} t WHERE ${defaultCondition(target, 't')}${sf.sql === null ? '' : ` AND ${sf.sql}`}`,
      params: sf.params,
    };
  },
  page: fieldPageStatement,
  pageSettings: [],
  update: fieldUpdateStatements,
  verifySample: (target, size) => ({
    sql:
      `SELECT TOP (@size) CAST(${ownerColumn(target.table)} AS varchar(20)) AS owner, CAST(id AS varchar(20)) AS id, message, ${target.fields.join(', ')} ` +
      `FROM dbo.${target.table} ORDER BY NEWID()`,
    params: [{ name: 'size', type: 'Int', value: size }],
  }),
  lock: (name) => ({
    sql:
      `DECLARE @result int; EXEC @result = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; ` +
      `SELECT CASE WHEN @result >= 0 THEN 1 ELSE 0 END AS acquired`,
    params: [{ name: 'resource', type: 'NVarChar', value: `mim_sender_jid ${name}` }],
  }),
  unlock: (name) => ({
    sql: `EXEC sp_releaseapplock @Resource = @resource, @LockOwner = 'Session'`,
    params: [{ name: 'resource', type: 'NVarChar', value: `mim_sender_jid ${name}` }],
  }),
  checkStorable(originId) {
    // MongooseIM's own insert of a longer id fails ("would be truncated"): no answer to store.
    return originId.length > MSSQL_MAX_ORIGIN_ID_UNITS
      ? `origin-id is ${originId.length} UTF-16 code units, longer than ${MSSQL_MAX_ORIGIN_ID_UNITS} (nvarchar(250))`
      : null;
  },
  // nvarchar holds any Unicode text; the length is checked before writing.
  isRefusedValue: () => false,
  savepoint: {
    set: { sql: 'SAVE TRANSACTION field_row', params: [] },
    rollback: { sql: 'ROLLBACK TRANSACTION field_row', params: [] },
    // T-SQL has no release: a savepoint simply stays until the transaction ends.
    release: { sql: 'SELECT 1 AS released', params: [] },
  },
};
