/**
 * PostgreSQL backend for the sender_id backfill: the `pg` driver under the shared SQL base, with
 * the statements of postgres-statements.ts.
 */
import pg from 'pg';
import { isTransientNetworkError } from '../../pipeline/retry.js';
import { SqlBackend, sqlBackendDefinition } from './sql-backend.js';
import { copyRowsBinary, type ColumnType } from './pg-binary-copy.js';
import type { PageColumn, SqlDriver, SqlResult, SqlRow, SqlSession, SqlStatement, SqlTransaction } from './sql-dialect.js';
import { POSTGRES_DIALECT } from './postgres-statements.js';
import { SqlFieldBackend } from './field-backend.js';
import { POSTGRES_FIELD_DIALECT } from './field-statements.js';

export {
  checkPostgresStorable,
  CHECKPOINT_TABLE,
  MAX_JID_PART_CHARS,
  PG_SCHEMA_STATEMENTS,
  POSTGRES_CHECKPOINT_SQL,
  POSTGRES_UPDATE_SQL,
} from './postgres-statements.js';

// SQLSTATE classes/codes worth a retry: connection exceptions (08), admin shutdown and
// cannot-connect-now (57P01..57P03), serialization failure and deadlock (40001, 40P01), too many
// connections (53300).
const TRANSIENT_SQLSTATES = /^(08...|57P0[123]|40001|40P01|53300)$/;

export interface PostgresBackendOptions {
  readonly url: string;
  /** `--single-writer`: proceed without mam_server_user's unique index (this process is its only writer). */
  readonly singleWriter?: boolean;
  /** Connections: the reader, plus one per batch in flight. */
  readonly poolSize?: number;
}

async function run(client: pg.Pool | pg.PoolClient | pg.Client, statement: SqlStatement): Promise<SqlResult> {
  const result = await client.query({ text: statement.sql, values: statement.params as unknown[] });
  return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount ?? 0 };
}

function quietPool(pool: pg.Pool): pg.Pool {
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // Nor one that loses it while checked out between two queries (the server's "terminating
  // connection" notice arrives as an event): the next query on it fails, which is what counts.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/** The page query's columns (postgres-statements.ts: `k.room_id, k.id::text, k.message, k.candidates::int`). */
const PAGE_COLUMNS = ['room_id', 'id', 'message', 'candidates'] as const;
const PAGE_COLUMN_TYPES = ['integer', 'text', 'bytea', 'integer'] as const;

/**
 * Sessions that read pages: a page must reach the archive through its primary key, in key order,
 * stopping at the page's end. Left to itself the planner may read a whole room (a bitmap scan and
 * a sort) when it believes rooms are small, which for one huge room means reading the rest of it
 * for every page; a sequential scan would read the table. Sent as the session's first statements,
 * not as connection options, which would replace any `options` of the operator's URL (such as a
 * search_path) or PGOPTIONS.
 */
export const PAGE_READER_SETTINGS = 'SET enable_seqscan = off; SET enable_bitmapscan = off';

export class PgDriver implements SqlDriver<unknown> {
  private readonly pool: pg.Pool;
  private readonly pageReaders: pg.Pool;

  constructor(private readonly options: PostgresBackendOptions) {
    this.pool = quietPool(new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 6 }));
    // A shard's pages are read one after another (the next one at most prefetched).
    this.pageReaders = quietPool(new pg.Pool({ connectionString: options.url, max: 2 }));
    // Queued before any page query of the new session; should it fail, so does the page (retried).
    this.pageReaders.on('connect', (client) => void client.query(PAGE_READER_SETTINGS).catch(() => {}));
  }

  query(statement: SqlStatement): Promise<SqlResult> {
    return run(this.pool, statement);
  }

  /** Pages by binary COPY: payloads arrive as raw bytes, not as hex text (see pg-binary-copy.ts). */
  readPageRows(statement: SqlStatement): Promise<SqlRow[]> {
    return this.copyRows(statement, PAGE_COLUMNS, PAGE_COLUMN_TYPES);
  }

  /** The field walks' pages, by binary COPY on the same sessions (PAGE_READER_SETTINGS). */
  readRows(statement: SqlStatement, columns: readonly PageColumn[]): Promise<SqlRow[]> {
    return this.copyRows(
      statement,
      columns.map((c) => c.name),
      columns.map((c) => c.type),
    );
  }

  private async copyRows(statement: SqlStatement, names: readonly string[], types: readonly ColumnType[]): Promise<SqlRow[]> {
    const client = await this.pageReaders.connect();
    let broken: Error | undefined;
    try {
      return await copyRowsBinary(client, statement, names, types);
    } catch (error) {
      broken = error as Error;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async begin(): Promise<SqlTransaction<unknown>> {
    const client = await this.pool.connect();
    let lost: Error | undefined;
    // A connection lost while the transaction is open is never given back to the pool.
    const onError = (error: Error): void => {
      lost = error;
    };
    client.on('error', onError);
    const release = (broken: boolean): void => {
      client.off('error', onError);
      client.release(lost ?? (broken ? new Error('connection broken during a transaction') : undefined));
    };
    try {
      await client.query('BEGIN');
    } catch (error) {
      release(true);
      throw error;
    }
    return {
      query: (statement) => run(client, statement),
      commit: async () => void (await client.query('COMMIT')),
      rollback: async () => void (await client.query('ROLLBACK')),
      release,
    };
  }

  async openSession(): Promise<SqlSession<unknown>> {
    const client = new pg.Client({ connectionString: this.options.url });
    // Losing the session loses only its lock; the run's own queries notice a lost server.
    client.on('error', () => {});
    await client.connect();
    return { query: (statement) => run(client, statement), close: () => client.end() };
  }

  isTransient(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && TRANSIENT_SQLSTATES.test(code)) return true;
    return isTransientNetworkError(error);
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.pageReaders.end()]);
  }
}

export class PostgresBackend extends SqlBackend<unknown> {
  constructor(options: PostgresBackendOptions) {
    super('postgres', POSTGRES_DIALECT, new PgDriver(options), options.singleWriter ?? false);
  }
}

export default sqlBackendDefinition(
  'postgres',
  'PostgreSQL: sets mam_muc_message.sender_id (--field: origin_id, is_groupchat)',
  (options) => new PostgresBackend(options),
  (options) => new SqlFieldBackend('postgres', options.field, POSTGRES_FIELD_DIALECT, new PgDriver(options)),
);
