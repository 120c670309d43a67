/**
 * What a SQL dialect hands the shared base (sql-backend.ts): its statements, as data (text plus
 * the driver's parameters, so they are testable without a server), and a thin driver adapter
 * (run a statement, a transaction, a session of its own, which errors are worth a retry).
 * Everything else (the write skeleton, id resolution, checkpoints, the schema step, the
 * exact-count threshold, the shard lock) is written once in the base.
 *
 * Every statement answers with the column names given here, whatever the dialect.
 */
import { CheckpointTableError } from './sql-errors.js';
import type { PageLimits, ShardSpec } from '../../pipeline/types.js';
import type { ColumnType } from './pg-binary-copy.js';

/** Primary key of the SQL `mam_muc_message`, as decimal strings: ids are 64-bit and must not lose precision (Cassandra's is `CassandraRowKey`). */
export interface RowKey {
  readonly roomId: string;
  readonly id: string;
}

/** One output column of a page read by a driver's faster path: its name in the row, and how to read it. */
export interface PageColumn {
  readonly name: string;
  readonly type: ColumnType;
}

/** `P` is the driver's parameter: a plain value (pg, mysql2) or a typed, named one (mssql). */
export interface SqlStatement<P = unknown> {
  readonly sql: string;
  readonly params: readonly P[];
}

export type SqlRow = Record<string, unknown>;

export interface SqlResult {
  readonly rows: SqlRow[];
  /** Rows changed by a write statement. */
  readonly rowCount: number;
}

export interface SqlRunner<P> {
  query(statement: SqlStatement<P>): Promise<SqlResult>;
}

export interface SqlTransaction<P> extends SqlRunner<P> {
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Gives the connection back; a `broken` one is discarded, never reused. */
  release(broken: boolean): void;
}

/** One connection outside the pool, held for the whole run: session-scoped locks live on it. */
export interface SqlSession<P> extends SqlRunner<P> {
  close(): Promise<void>;
}

export interface SqlDriver<P> extends SqlRunner<P> {
  /** A faster way to read a page's rows (`room_id`, `id`, `message`, `candidates`), where the driver has one. */
  readPageRows?(statement: SqlStatement<P>): Promise<SqlRow[]>;
  /**
   * The same for a page of other columns: `columns` names the statement's output columns in order,
   * with their types (PostgreSQL: binary COPY on the page readers' sessions).
   */
  readRows?(statement: SqlStatement<P>, columns: readonly PageColumn[]): Promise<SqlRow[]>;
  begin(): Promise<SqlTransaction<P>>;
  openSession(): Promise<SqlSession<P>>;
  /** Connection lost, server restarting, deadlock victim, lock wait timeout, ... */
  isTransient(error: unknown): boolean;
  close(): Promise<void>;
}

/**
 * Runs `body` in a transaction, committed when it returns, rolled back when it throws. A connection
 * that failed mid-transaction (or whose rollback failed) is discarded, never given back to the pool.
 */
export async function inTransaction<P, T>(driver: SqlDriver<P>, body: (transaction: SqlTransaction<P>) => Promise<T>): Promise<T> {
  const transaction = await driver.begin();
  let broken = false;
  try {
    const result = await body(transaction);
    await transaction.commit();
    return result;
  } catch (error) {
    await transaction.rollback().catch(() => {
      broken = true;
    });
    if (driver.isTransient(error)) broken = true;
    throw error;
  } finally {
    transaction.release(broken);
  }
}

export function nullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : text(value);
}

/** Where a page leaves the walk: after its last row, and whether the partition ends there. */
export function pagePlace<K>(rows: readonly SqlRow[], records: readonly { key: K }[], after: K | null, limits: PageLimits): { cursor: K | null; end: boolean } {
  const candidates = rows.length === 0 ? 0 : Number(rows[0].candidates);
  // The last page: the keyset found fewer rows than asked, and the byte bound cut none of them.
  const end = candidates < limits.records && records.length === candidates;
  return { cursor: records.length > 0 ? records[records.length - 1].key : after, end };
}

/** The checkpoint table's statements, as each walk's dialect carries them. */
export interface CheckpointTableStatements<P> {
  readonly checkpointTableCheck: SqlStatement<P>;
  readonly createCheckpointTable: string;
}

export async function checkpointTableExists<P>(driver: SqlDriver<P>, statements: CheckpointTableStatements<P>): Promise<boolean> {
  const [r] = (await driver.query(statements.checkpointTableCheck)).rows;
  return truthy(r?.present);
}

/**
 * Checks before creating: `CREATE TABLE IF NOT EXISTS` needs CREATE even when a DBA made the table
 * beforehand. A refused create is one error showing the statement a DBA should run.
 */
export async function prepareCheckpointTable<P>(driver: SqlDriver<P>, statements: CheckpointTableStatements<P>, table: string): Promise<void> {
  if (await checkpointTableExists(driver, statements)) return;
  try {
    await driver.query({ sql: statements.createCheckpointTable, params: [] });
  } catch (error) {
    if (driver.isTransient(error)) throw error;
    // Another shard's process may have created it meanwhile.
    if (await checkpointTableExists(driver, statements)) return;
    throw new CheckpointTableError(table, statements.createCheckpointTable, error);
  }
}

export interface SenderPair {
  readonly server: string;
  readonly user: string;
}

export interface SenderIdRow {
  readonly roomId: string;
  readonly id: string;
  readonly senderId: string;
}

export interface SqlDialect<P> {
  /** Where `mam_muc_message` was looked for, for the "not a MongooseIM database" error. */
  readonly archiveTableNotFound: string;
  /** One row: `has_table`, `has_column`, `has_index` (counts or booleans). */
  readonly schemaCheck: SqlStatement<P>;
  /**
   * One row: `has_unique` (count or boolean), whether `mam_server_user` has a unique index on
   * exactly `(server, user_name)`, the one that makes concurrent inserts of a sender settle on one row.
   */
  readonly senderUniqueCheck: SqlStatement<P>;
  /** The schema's own statement for that index, shown when it is missing. */
  readonly senderUniqueStatement: string;
  /** The upgrade guide's statements, verbatim. */
  readonly schemaStatements: { readonly column: string; readonly index: string };

  readonly checkpointTable: string;
  /** One row: `present` (count or boolean). */
  readonly checkpointTableCheck: SqlStatement<P>;
  /** Also what a DBA is asked to run when we may not create it ourselves. */
  readonly createCheckpointTable: string;
  /** Zero or one row: `last_room_id`, `last_id`. */
  readCheckpoint(shard: ShardSpec): SqlStatement<P>;
  deleteCheckpoint(shard: ShardSpec): SqlStatement<P>;
  /** Upsert, run inside the batch's transaction. */
  saveCheckpoint(shard: ShardSpec, key: RowKey): SqlStatement<P>;

  /** One row: `n`, the statistics' row count of the whole table (negative or null: unknown). */
  readonly rowEstimate: SqlStatement<P>;
  /** One row: `n`, the shard's rows still without `sender_id`. */
  exactCount(shard: ShardSpec): SqlStatement<P>;
  /**
   * Up to `limits.records` rows with `sender_id IS NULL` after `after` in `(room_id, id)` order, cut
   * inside the query once their payloads pass `limits.bytes` (the first row always comes, so a
   * page is at most `limits.bytes` or one payload), so rows past the cut never reach us:
   * `room_id`, `id`, `message`, and `candidates`, how many rows the keyset found before the cut.
   */
  page(after: RowKey | null, limits: PageLimits, shard: ShardSpec): SqlStatement<P>;
  /**
   * `verify --complete`: the same walk as `page` over every row, written or not, each with
   * `sender_id` and its `mam_server_user` row (`server`, `user_name`, null when absent or when
   * `sender_id` is NULL): `room_id`, `id`, `message`, `candidates`, `sender_id`, `server`,
   * `user_name`.
   */
  scanPage(after: RowKey | null, limits: PageLimits, shard: ShardSpec): SqlStatement<P>;
  /**
   * `room_id`, `id` of up to `limit` rows of the shard with `sender_id IS NULL`, in any order,
   * read through the index on `sender_id` (the guide's `i_mam_muc_message_sender_id`).
   */
  unwrittenKeys(shard: ShardSpec, limit: number): SqlStatement<P>;
  /** Run first, in the same transaction as `unwrittenKeys` (planner settings local to it). */
  readonly unwrittenKeysSettings: readonly SqlStatement<P>[];

  /** Rows of `id` with either `pair` (the index in `pairs`) or `server` and `user_name`. */
  selectSenders(pairs: readonly SenderPair[]): SqlStatement<P>[];
  /** Inserts that skip (or fail on the unique key for) pairs that exist meanwhile. */
  insertSenders(pairs: readonly SenderPair[]): SqlStatement<P>[];
  /** A concurrent insert's failure that another select and insert settle (deadlock victim, duplicate key). */
  isInsertRace(error: unknown): boolean;
  /**
   * The database refused a sender's value itself: a character its encoding or the column's
   * character set cannot hold, or a value longer than the column as the database counts it
   * (bytes under PostgreSQL's SQL_ASCII). That sender is reported, never retried.
   */
  isRefusedValue(error: unknown): boolean;
  /** Sets `sender_id` only where it is still NULL. */
  update(rows: readonly SenderIdRow[]): SqlStatement<P>[];
  /** `room_id`, `id`, `message`, `sender_id`, `server`, `user_name` of random rows with a sender. */
  verifySample(size: number): SqlStatement<P>;

  /** One row: `acquired` (1/true when this session now holds the shard's lock; never waits). */
  lockShard(shard: ShardSpec): SqlStatement<P>;
  unlockShard(shard: ShardSpec): SqlStatement<P>;

  /** Null when `(user, server)` fits `mam_server_user`, else why not. */
  checkStorable(user: string, server: string): string | null;
}

/** Counts, booleans and decimal strings as drivers return them. */
export function truthy(value: unknown): boolean {
  return value === true || (value !== null && value !== undefined && value !== false && Number(value) > 0);
}

/** Binary columns (MySQL's `varbinary`) come back as bytes. */
export function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/**
 * A page cut by payload bytes inside the database: `keyset` picks up to N keys with the length of
 * their payloads (`room_id`, `id`, `len`, in key order); a running sum over them keeps the rows
 * up to `bytes` (and always the first), and only those rows' payloads are read and sent.
 * `join` adds a join to the page's rows `m` (the scan's `mam_server_user`).
 * Every ORDER BY is qualified with its source (`s.`, `m.`): `columns` may cast the keys to text
 * under their own names, and an unqualified name in an ORDER BY means the output column first
 * (T-SQL, MySQL and PostgreSQL alike), which would sort the page as text.
 */
export function byteBoundedPageSql(options: { keyset: string; bytes: string; table: string; columns: string; join?: string }): string {
  return (
    `SELECT ${options.columns} FROM (` +
    `SELECT s.room_id, s.id, s.len, SUM(s.len) OVER (ORDER BY s.room_id, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running, ` +
    `COUNT(*) OVER () AS candidates FROM (${options.keyset}) s) k ` +
    `JOIN ${options.table} m ON m.room_id = k.room_id AND m.id = k.id ` +
    (options.join === undefined ? '' : `${options.join} `) +
    `WHERE k.running <= ${options.bytes} OR k.running = k.len ORDER BY m.room_id, m.id`
  );
}

/** Name of the shard's lock, the same in every process and version. */
export function shardLockName(shard: ShardSpec): string {
  return `mim_sender_jid shard ${shard.index}/${shard.count}`;
}

/**
 * The shard of `column` among `count` shards, as SQL: its remainder, never negative. `%` keeps the
 * sign of the dividend in PostgreSQL, MySQL and SQL Server, and `int`/`bigint` keys may be negative
 * (MongooseIM never writes one, the columns allow it): with `room_id % N = K` such a row would
 * belong to no shard, and every shard would end "done" without it.
 */
export function shardOfSql(column: string, count: string): string {
  return `((${column} % ${count}) + ${count}) % ${count}`;
}

/** `(room_id, id)` order, as integers. */
export function compareRowKeys(a: RowKey, b: RowKey): number {
  return compareDecimal(a.roomId, b.roomId) || compareDecimal(a.id, b.id);
}

const PLAIN_DIGITS = /^(0|[1-9]\d*)$/;

/**
 * Two decimal integers compared as numbers. Keys come from the database as plain digits, which
 * compare by length then character by character with no BigInt made (this runs several times
 * per row of every batch); anything else (a sign, a leading zero) goes through BigInt.
 */
export function compareDecimal(a: string, b: string): number {
  if (a === b) return 0;
  if (PLAIN_DIGITS.test(a) && PLAIN_DIGITS.test(b)) {
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : 1;
  }
  const d = BigInt(a) - BigInt(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
