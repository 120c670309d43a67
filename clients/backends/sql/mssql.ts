/**
 * SQL Server backend for the sender_id backfill (MongooseIM 3.3 `priv/mssql2012.sql` schema,
 * `mssql` driver over tedious). The statements come from mssql-sql.ts; this file runs them.
 * Verified up to the driver only: no SQL Server runs on our machines (see the README).
 */
import sql from 'mssql';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { Mutex, SenderIdCache, senderCacheKey, senderIdsOf } from './sender-id-cache.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from '../../pipeline/ordering.js';
import type { SchemaStatus, ShardSpec } from '../../pipeline/types.js';
import { UsageError, type BackendDefinition } from '../registry.js';
import { sqlVerifySample, SqlBackend, type RowKey, type SenderWrite, type SourceRow, type SqlVerifySample } from './sql-backend.js';
import {
  checkMssqlStorable,
  deleteCheckpointStatement,
  estimateStatement,
  insertSendersStatements,
  MSSQL_CHECKPOINT_TABLE_SQL,
  MSSQL_ROW_ESTIMATE_SQL,
  MSSQL_SCHEMA_CHECK_SQL,
  MSSQL_SCHEMA_STATEMENTS,
  mssqlConfigFromUrl,
  pageStatement,
  readCheckpointStatement,
  saveCheckpointStatement,
  selectSendersStatements,
  updateStatements,
  verifySampleStatement,
  type MssqlParamType,
  type MssqlStatement,
} from './mssql-statements.js';

const EXACT_COUNT_BELOW = 2_000_000;
const MAX_INSERT_ATTEMPTS = 5;
/** Duplicate key (2627, 2601): a concurrent insert of the same sender won; select again. */
const DUPLICATE_KEY_ERRORS = new Set([2627, 2601]);
/** Deadlock victim, lock timeout, Azure SQL's transient errors, server shutting down. */
const TRANSIENT_NUMBERS = new Set([1205, 1222, 4060, 40197, 40501, 40613, 49918, 49919, 49920, 6005, 233]);
const TRANSIENT_CODES = new Set(['ESOCKET', 'ECONNCLOSED', 'ETIMEOUT', 'ECONNRESET', 'ENOTOPEN', 'ECONNREFUSED']);

export function driverType(type: MssqlParamType): sql.ISqlType | (() => sql.ISqlType) {
  switch (type) {
    case 'BigInt':
      return sql.BigInt;
    case 'Int':
      return sql.Int;
    case 'NVarChar':
      return sql.NVarChar(250);
  }
}

/** Binds a statement's parameters on a driver request (the last step that runs without a server). */
export function bindStatement(request: sql.Request, statement: MssqlStatement): sql.Request {
  for (const p of statement.params) request.input(p.name, driverType(p.type), p.value);
  return request;
}

export interface MssqlBackendOptions {
  readonly url: string;
  readonly poolSize?: number;
}

type Row = Record<string, unknown>;

export class MssqlBackend extends SqlBackend {
  readonly name = 'mssql';
  private readonly pool: sql.ConnectionPool;
  private connected: Promise<sql.ConnectionPool> | null = null;
  private readonly cache = new SenderIdCache();
  private readonly resolving = new Mutex();

  constructor(options: MssqlBackendOptions) {
    super();
    const config = mssqlConfigFromUrl(options.url);
    this.pool =
      typeof config === 'string'
        ? new sql.ConnectionPool(config)
        : new sql.ConnectionPool({ ...config, pool: { max: options.poolSize ?? 6 } });
    this.pool.on('error', () => {});
  }

  private async ready(): Promise<sql.ConnectionPool> {
    this.connected ??= this.pool.connect().catch((error: unknown) => {
      this.connected = null;
      throw error;
    });
    return this.connected;
  }

  private async run(statement: MssqlStatement, transaction?: sql.Transaction): Promise<{ rows: Row[]; rowsAffected: number }> {
    const request = transaction === undefined ? (await this.ready()).request() : new sql.Request(transaction);
    const result = await bindStatement(request, statement).query(statement.sql);
    return { rows: (result.recordset ?? []) as Row[], rowsAffected: result.rowsAffected.reduce((a, b) => a + b, 0) };
  }

  async checkSchema(): Promise<SchemaStatus> {
    const [r] = (await this.run({ sql: MSSQL_SCHEMA_CHECK_SQL, params: [] })).rows;
    if (Number(r.has_table) === 0) throw new Error('table dbo.mam_muc_message not found: is this a MongooseIM database?');
    const missing: string[] = [];
    const statements: string[] = [];
    if (Number(r.has_column) === 0) {
      missing.push('column sender_id is missing');
      statements.push(MSSQL_SCHEMA_STATEMENTS.column);
    }
    if (Number(r.has_index) === 0) {
      missing.push('index i_mam_muc_message_sender_id is missing');
      statements.push(MSSQL_SCHEMA_STATEMENTS.index);
    }
    return { ready: missing.length === 0, missing, statements };
  }

  async applySchema(): Promise<string[]> {
    const { statements } = await this.checkSchema();
    for (const statement of statements) await this.run({ sql: statement, params: [] });
    return statements;
  }

  async prepareCheckpoints(): Promise<void> {
    await this.run({ sql: MSSQL_CHECKPOINT_TABLE_SQL, params: [] });
  }

  protected async readShardCheckpoint(shard: ShardSpec): Promise<RowKey | null> {
    const [row] = (await this.run(readCheckpointStatement(shard))).rows;
    return row === undefined ? null : { roomId: String(row.last_room_id), id: String(row.last_id) };
  }

  protected async deleteShardCheckpoint(shard: ShardSpec): Promise<void> {
    await this.run(deleteCheckpointStatement(shard));
  }

  protected async estimateRows(shard: ShardSpec): Promise<number> {
    const [total] = (await this.run({ sql: MSSQL_ROW_ESTIMATE_SQL, params: [] })).rows;
    const n = Number(total?.n ?? -1);
    if (n >= EXACT_COUNT_BELOW) return Math.round(n / shard.count);
    const [exact] = (await this.run(estimateStatement(shard))).rows;
    return Number(exact.n);
  }

  protected async readRows(after: RowKey | null, limit: number, shard: ShardSpec): Promise<SourceRow[]> {
    const { rows } = await this.run(pageStatement(after, limit, shard));
    return rows.map((r) => ({ key: { roomId: String(r.room_id), id: String(r.id) }, payload: r.message as Buffer }));
  }

  checkStorable(user: string, server: string): string | null {
    return checkMssqlStorable(user, server);
  }

  async resolveSenderIds(writes: readonly SenderWrite[]): Promise<Map<string, string>> {
    const { ids, missing } = this.cache.lookup(writes);
    if (missing.length === 0) return ids;
    const select = async (): Promise<number> => {
      let found = 0;
      for (const statement of selectSendersStatements(missing)) {
        for (const r of (await this.run(statement)).rows) {
          const pair = missing[Number(r.pair)];
          this.cache.set(pair.server, pair.user, String(r.id));
          ids.set(senderCacheKey(pair.server, pair.user), String(r.id));
          found++;
        }
      }
      return found;
    };
    for (let attempt = 1; ; attempt++) {
      if ((await select()) >= missing.length) return ids;
      try {
        for (const statement of insertSendersStatements(missing)) await this.run(statement);
      } catch (error) {
        const number = (error as { number?: unknown }).number;
        if (typeof number !== 'number' || !DUPLICATE_KEY_ERRORS.has(number) || attempt >= MAX_INSERT_ATTEMPTS) throw error;
      }
      if (attempt >= MAX_INSERT_ATTEMPTS && (await select()) < missing.length) {
        throw new Error(`mam_server_user: senders still missing after ${MAX_INSERT_ATTEMPTS} attempts`);
      }
    }
  }

  protected async writeRows(writes: readonly SenderWrite[], checkpoint: RowKey, shard: ShardSpec, beforeCommit: Promise<void>): Promise<{ written: number }> {
    const senderIds = senderIdsOf(writes, await this.resolving.run(() => this.resolveSenderIds(writes)));
    const pool = await this.ready();
    const transaction = new sql.Transaction(pool);
    await transaction.begin();
    try {
      let written = 0;
      const rows = writes.map((w, i) => ({ roomId: w.key.roomId, id: w.key.id, senderId: senderIds[i] }));
      for (const statement of updateStatements(rows)) written += (await this.run(statement, transaction)).rowsAffected;
      await awaitEarlierBatches(beforeCommit);
      await this.run(saveCheckpointStatement(shard, checkpoint), transaction);
      await transaction.commit();
      return { written };
    } catch (error) {
      await transaction.rollback().catch(() => {});
      throw error;
    }
  }

  async sampleForVerify(size: number): Promise<SqlVerifySample[]> {
    const { rows } = await this.run(verifySampleStatement(size));
    return rows.map((r) => sqlVerifySample({ roomId: String(r.room_id), id: String(r.id) }, r.message as Buffer, String(r.sender_id), r.user_name === null ? null : String(r.user_name), r.server === null ? null : String(r.server)));
  }

  isTransient(error: unknown): boolean {
    if (error instanceof EarlierBatchFailedError) return this.isTransient(error.causeError);
    const e = error as { code?: unknown; number?: unknown; originalError?: unknown } | null;
    if (typeof e?.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
    if (typeof e?.number === 'number' && TRANSIENT_NUMBERS.has(e.number)) return true;
    if (e?.originalError !== undefined && e.originalError !== error && this.isTransient(e.originalError)) return true;
    return isTransientNetworkError(error);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

const definition: BackendDefinition = {
  kind: 'mssql',
  summary: 'Microsoft SQL Server (verified up to the driver only): sets mam_muc_message.sender_id',
  flags: {},
  usage: '',
  async open(values, context) {
    if (typeof values.url !== 'string') throw new UsageError(`--url is required (or set MIM_SENDER_JID_DB_URL)`);
    return new MssqlBackend({ url: values.url as string, poolSize: context.concurrency + 2 });
  },
};
export default definition;
