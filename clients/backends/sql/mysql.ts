/**
 * MySQL / MariaDB backend for the sender_id backfill: the `mysql2` driver under the shared SQL
 * base, with the statements of mysql-statements.ts.
 */
import { SqlFieldBackend } from './field-backend.js';
import { MYSQL_FIELD_DIALECT } from './field-statements.js';
import mysql from 'mysql2/promise';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { SqlBackend, sqlBackendDefinition } from './sql-backend.js';
import type { SqlDriver, SqlResult, SqlSession, SqlStatement, SqlTransaction } from './sql-dialect.js';
import { MYSQL_DIALECT } from './mysql-statements.js';

export {
  checkMysqlStorable,
  CHECKPOINT_TABLE,
  integerLiteral,
  MAX_JID_PART_BYTES,
  MYSQL_CHECKPOINT_SQL,
  MYSQL_SCHEMA_STATEMENTS,
  mysqlKeysetCondition,
  mysqlPageSql,
  mysqlShardCondition,
  mysqlUpdateSql,
} from './mysql-statements.js';

const LOCK_WAIT_TIMEOUT_S = 10;

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
/** Server gone / lost (2006, 2013), shutdown in progress (1053), lock wait timeout (1205), deadlock (1213), killed (1927). */
const TRANSIENT_ERRNOS = new Set([1053, 1205, 1213, 1927, 2006, 2013]);

/** Ids beyond 2^53 come back as strings; senders in any script. */
const CONNECTION_OPTIONS = { supportBigNumbers: true, bigNumberStrings: true, charset: 'utf8mb4' } as const;

export interface MysqlBackendOptions {
  readonly url: string;
  /** `--single-writer`: proceed without mam_server_user's unique index (this process is its only writer). */
  readonly singleWriter?: boolean;
  readonly poolSize?: number;
}

type Queryable = Pick<mysql.Pool, 'query'> | Pick<mysql.Connection, 'query'>;

async function run(on: Queryable, statement: SqlStatement): Promise<SqlResult> {
  const [result] = await on.query(statement.sql, statement.params as unknown[]);
  if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], rowCount: 0 };
  return { rows: [], rowCount: (result as mysql.ResultSetHeader).affectedRows };
}

export class MysqlDriver implements SqlDriver<unknown> {
  private readonly pool: mysql.Pool;

  constructor(private readonly options: MysqlBackendOptions) {
    this.pool = mysql.createPool({ uri: options.url, connectionLimit: options.poolSize ?? 6, ...CONNECTION_OPTIONS });
    this.pool.on('connection', (connection) => {
      connection.on('error', () => {});
      // No gap locks, and locks on rows that do not match are released: concurrent batch
      // transactions touch disjoint key ranges and must not block each other.
      connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      // Should a batch ever meet a lock someone else holds for long, fail fast and retry instead
      // of InnoDB's default 50 s.
      connection.query(`SET SESSION innodb_lock_wait_timeout = ${LOCK_WAIT_TIMEOUT_S}`);
    });
  }

  query(statement: SqlStatement): Promise<SqlResult> {
    return run(this.pool, statement);
  }

  async begin(): Promise<SqlTransaction<unknown>> {
    const connection = await this.pool.getConnection();
    try {
      await connection.beginTransaction();
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return {
      query: (statement) => run(connection, statement),
      commit: () => connection.commit(),
      rollback: () => connection.rollback(),
      release: (broken) => (broken ? connection.destroy() : connection.release()),
    };
  }

  async openSession(): Promise<SqlSession<unknown>> {
    const connection = await mysql.createConnection({ uri: this.options.url, ...CONNECTION_OPTIONS });
    // Losing the session loses only its lock; the run's own queries notice a lost server.
    connection.on('error', () => {});
    return { query: (statement) => run(connection, statement), close: () => connection.end() };
  }

  isTransient(error: unknown): boolean {
    const e = error as { code?: unknown; errno?: unknown; fatal?: unknown } | null;
    if (typeof e?.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
    if (typeof e?.errno === 'number' && TRANSIENT_ERRNOS.has(e.errno)) return true;
    if (e?.fatal === true) return true;
    const message = error instanceof Error ? error.message : '';
    // A connection closed under us is worth a retry; our own pool closed is not.
    if (/closed state|Pool is closed|connection is in closed/i.test(message)) return !/Pool is closed/i.test(message);
    return isTransientNetworkError(error);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export class MysqlBackend extends SqlBackend<unknown> {
  constructor(options: MysqlBackendOptions) {
    super('mysql', MYSQL_DIALECT, new MysqlDriver(options), options.singleWriter ?? false);
  }
}

export default sqlBackendDefinition(
  'mysql',
  'MySQL / MariaDB: sets mam_muc_message.sender_id (--field: origin_id, is_groupchat)',
  (options) => new MysqlBackend(options),
  (options) => new SqlFieldBackend('mysql', options.field, MYSQL_FIELD_DIALECT, new MysqlDriver(options)),
);
