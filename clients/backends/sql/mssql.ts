/**
 * SQL Server backend for the sender_id backfill (MongooseIM 3.3 `priv/mssql2012.sql` schema,
 * `mssql` driver over tedious) under the shared SQL base; the statements come from
 * mssql-statements.ts. Verified up to the driver only: no SQL Server runs on our machines (see
 * the README).
 */
import { SqlFieldBackend } from './field-backend.js';
import { MSSQL_FIELD_DIALECT } from './mssql-field-statements.js';
import sql from 'mssql';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { SqlBackend, sqlBackendDefinition } from './sql-backend.js';
import type { SqlDriver, SqlResult, SqlSession, SqlTransaction } from './sql-dialect.js';
import { MSSQL_DIALECT, mssqlConfigFromUrl, type MssqlParam, type MssqlParamType, type MssqlStatement } from './mssql-statements.js';

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

async function run(request: sql.Request, statement: MssqlStatement): Promise<SqlResult> {
  const result = await bindStatement(request, statement).query(statement.sql);
  return { rows: (result.recordset ?? []) as Record<string, unknown>[], rowCount: result.rowsAffected.reduce((a, b) => a + b, 0) };
}

function poolConfig(url: string, pool: sql.PoolOpts<sql.Connection>): sql.config {
  const config = mssqlConfigFromUrl(url);
  return { ...(typeof config === 'string' ? sql.ConnectionPool.parseConnectionString(config) : config), pool };
}

export interface MssqlBackendOptions {
  readonly url: string;
  /** `--single-writer`: proceed without mam_server_user's unique index (this process is its only writer). */
  readonly singleWriter?: boolean;
  readonly poolSize?: number;
}

export class MssqlDriver implements SqlDriver<MssqlParam> {
  private readonly pool: sql.ConnectionPool;
  private connected: Promise<sql.ConnectionPool> | null = null;

  constructor(private readonly options: MssqlBackendOptions) {
    this.pool = new sql.ConnectionPool(poolConfig(options.url, { max: options.poolSize ?? 6 }));
    this.pool.on('error', () => {});
  }

  /** Connects on first use (and again after a failed attempt). */
  private async ready(): Promise<sql.ConnectionPool> {
    this.connected ??= this.pool.connect().catch((error: unknown) => {
      this.connected = null;
      throw error;
    });
    return this.connected;
  }

  async query(statement: MssqlStatement): Promise<SqlResult> {
    return run((await this.ready()).request(), statement);
  }

  async begin(): Promise<SqlTransaction<MssqlParam>> {
    const transaction = new sql.Transaction(await this.ready());
    await transaction.begin();
    return {
      query: (statement) => run(new sql.Request(transaction), statement),
      commit: () => transaction.commit(),
      rollback: () => transaction.rollback(),
      // The driver gives the connection back on commit or rollback, and drops a broken one itself.
      release: () => {},
    };
  }

  /** A pool of exactly one connection, never reaped while idle: the session the lock belongs to. */
  async openSession(): Promise<SqlSession<MssqlParam>> {
    const pool = new sql.ConnectionPool(poolConfig(this.options.url, { max: 1, min: 1, idleTimeoutMillis: 2 ** 31 - 1 }));
    pool.on('error', () => {});
    await pool.connect();
    return { query: (statement) => run(pool.request(), statement), close: () => pool.close() };
  }

  isTransient(error: unknown): boolean {
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

export class MssqlBackend extends SqlBackend<MssqlParam> {
  constructor(options: MssqlBackendOptions) {
    super('mssql', MSSQL_DIALECT, new MssqlDriver(options), options.singleWriter ?? false);
  }
}

export default sqlBackendDefinition(
  'mssql',
  'Microsoft SQL Server (verified up to the driver only): sets mam_muc_message.sender_id (--field: origin_id, is_groupchat)',
  (options) => new MssqlBackend(options),
  (options) => new SqlFieldBackend('mssql', options.field, MSSQL_FIELD_DIALECT, new MssqlDriver(options)),
);
