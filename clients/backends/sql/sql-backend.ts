/**
 * What the three SQL backends (PostgreSQL, MySQL/MariaDB, MSSQL) share on the generic seam, written
 * once: the key is the primary key `(room_id, id)`, the cursor is the last key committed, one
 * partition per `--shard K/N` (`room_id % N = K`) walked as one keyset, the checkpoint committed
 * in the batch's own transaction, a sender written as the id of its `mam_server_user` row, and a
 * session lock per shard held for the run.
 * A dialect supplies its statements as data and a thin driver adapter (sql-dialect.ts).
 */
import { senderOf, type Sender } from '../../pipeline/decisions.js';
import { awaitEarlierBatches, EarlierBatchFailedError } from '../../pipeline/ordering.js';
import {
  shardName,
  type AnyBackend,
  type Backend,
  type Decision,
  type ExtractResult,
  type Mismatch,
  type Page,
  type PageLimits,
  type Partition,
  type PlannedWrite,
  type SchemaStatus,
  type ShardSpec,
  type SourceRecord,
  type VerifySample,
  type WriteOutcome,
} from '../../pipeline/types.js';
import { UsageError, type BackendDefinition } from '../registry.js';
import { checkUrl, type UrlRules } from '../url-check.js';
import { senderIdsOf } from './sender-id-cache.js';
import { SenderIdResolver } from './sender-id-resolver.js';
import { CheckpointTableError, ShardBusyError } from './sql-errors.js';
import { shardLockName, text, truthy, type RowKey, type SqlDialect, type SqlDriver, type SqlRow, type SqlSession, type SqlStatement } from './sql-dialect.js';

export type { RowKey } from './sql-dialect.js';

/** Below this many rows in the statistics, count exactly (statistics of small or fresh tables are poor). */
export const EXACT_COUNT_BELOW = 2_000_000;

export type SourceRow = SourceRecord<RowKey>;

/** A decoded, split sender for one row: the row will get the id of `(server, user)`. */
export interface SenderWrite {
  readonly key: RowKey;
  readonly user: string;
  readonly server: string;
}

/** A row with `sender_id` set, joined with its `mam_server_user` row (null when that id is absent). */
export interface SqlVerifySample extends VerifySample<RowKey> {
  readonly senderId: string;
  readonly user: string | null;
  readonly server: string | null;
}

export interface SqlPartition extends Partition {
  readonly shard: ShardSpec;
}

export class SqlBackend<P = unknown> implements Backend<RowKey, RowKey, Sender> {
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'in-write' as const;
  private readonly senderIds: SenderIdResolver<P>;
  /** The connection holding this run's shard lock. */
  private lock: { readonly session: SqlSession<P>; readonly shard: ShardSpec } | null = null;

  constructor(
    readonly name: string,
    protected readonly dialect: SqlDialect<P>,
    protected readonly driver: SqlDriver<P>,
  ) {
    this.senderIds = new SenderIdResolver(dialect, driver);
  }

  private async rows(statement: SqlStatement<P>): Promise<SqlRow[]> {
    return (await this.driver.query(statement)).rows;
  }

  private statement(sql: string): SqlStatement<P> {
    return { sql, params: [] };
  }

  describeKey(key: RowKey): Record<string, string> {
    return { room_id: key.roomId, id: key.id };
  }

  describeCursor(key: RowKey): string {
    return `(room_id ${key.roomId}, id ${key.id})`;
  }

  async checkSchema(): Promise<SchemaStatus> {
    const [r] = await this.rows(this.dialect.schemaCheck);
    if (!truthy(r?.has_table)) throw new Error(`table mam_muc_message not found ${this.dialect.archiveTableNotFound}: is this a MongooseIM database?`);
    const missing: string[] = [];
    const statements: string[] = [];
    if (!truthy(r.has_column)) {
      missing.push('column sender_id is missing');
      statements.push(this.dialect.schemaStatements.column);
    }
    if (!truthy(r.has_index)) {
      missing.push('index i_mam_muc_message_sender_id is missing');
      statements.push(this.dialect.schemaStatements.index);
    }
    return { ready: missing.length === 0, missing, statements };
  }

  async applySchema(): Promise<string[]> {
    const { statements } = await this.checkSchema();
    for (const statement of statements) await this.driver.query(this.statement(statement));
    return statements;
  }

  async partitions(shard: ShardSpec): Promise<SqlPartition[]> {
    return [{ name: shardName(shard), shard }];
  }

  /**
   * A second process on the same shard would update the same rows: it is refused at once rather
   * than left to wait on (or deadlock with) the first. The lock lives on a session of its own, so
   * it ends with this process whatever happens to it.
   */
  async acquireShard(shard: ShardSpec): Promise<void> {
    const session = await this.driver.openSession();
    let acquired = false;
    try {
      const [r] = (await session.query(this.dialect.lockShard(shard))).rows;
      acquired = truthy(r?.acquired);
    } finally {
      if (!acquired) await session.close().catch(() => {});
    }
    if (!acquired) throw new ShardBusyError(shard, shardLockName(shard));
    this.lock = { session, shard };
  }

  private async checkpointTableExists(): Promise<boolean> {
    const [r] = await this.rows(this.dialect.checkpointTableCheck);
    return truthy(r?.present);
  }

  /** Checks before creating: `CREATE TABLE IF NOT EXISTS` needs CREATE even when a DBA made the table beforehand. */
  async prepareCheckpoints(): Promise<void> {
    if (await this.checkpointTableExists()) return;
    try {
      await this.driver.query(this.statement(this.dialect.createCheckpointTable));
    } catch (error) {
      if (this.driver.isTransient(error)) throw error;
      // Another shard's process may have created it meanwhile.
      if (await this.checkpointTableExists()) return;
      throw new CheckpointTableError(this.dialect.checkpointTable, this.dialect.createCheckpointTable, error);
    }
  }

  /** The last key committed for this shard, or null (also when the checkpoint table does not exist). */
  async readCheckpoint(partition: SqlPartition): Promise<RowKey | null> {
    if (!(await this.checkpointTableExists())) return null;
    const [row] = await this.rows(this.dialect.readCheckpoint(partition.shard));
    return row === undefined ? null : { roomId: String(row.last_room_id), id: String(row.last_id) };
  }

  async deleteCheckpoint(partition: SqlPartition): Promise<void> {
    await this.driver.query(this.dialect.deleteCheckpoint(partition.shard));
  }

  async estimate(partitions: readonly SqlPartition[]): Promise<number> {
    let total = 0;
    for (const p of partitions) total += await this.estimateRows(p.shard);
    return total;
  }

  private async estimateRows(shard: ShardSpec): Promise<number> {
    const [statistics] = await this.rows(this.dialect.rowEstimate);
    const n = Number(statistics?.n ?? -1);
    if (n >= EXACT_COUNT_BELOW) return Math.round(n / shard.count);
    const [exact] = await this.rows(this.dialect.exactCount(shard));
    return Number(exact.n);
  }

  async readPage(partition: SqlPartition, after: RowKey | null, limits: PageLimits): Promise<Page<RowKey, RowKey>> {
    const statement = this.dialect.page(after, limits, partition.shard);
    const rows = this.driver.readPageRows === undefined ? await this.rows(statement) : await this.driver.readPageRows(statement);
    const records: SourceRow[] = rows.map((r) => ({ key: { roomId: String(r.room_id), id: String(r.id) }, payload: r.message as Buffer }));
    const candidates = rows.length === 0 ? 0 : Number(rows[0].candidates);
    // The last page: the keyset found fewer rows than asked, and the byte bound cut none of them.
    const end = candidates < limits.rows && records.length === candidates;
    return { records, cursor: records.length > 0 ? records[records.length - 1].key : after, end };
  }

  /** Null when `(user, server)` fits `mam_server_user`, else why not (checked before writing, so one bad JID cannot fail a batch forever). */
  checkStorable(user: string, server: string): string | null {
    return this.dialect.checkStorable(user, server);
  }

  decide(_record: SourceRow, answer: ExtractResult): Decision<Sender> {
    const decision = senderOf(answer);
    if (!('write' in decision)) return decision;
    const { user, server, bareJid } = decision.write;
    const unstorable = this.checkStorable(user, server);
    return unstorable === null ? decision : { reason: 'jid_not_storable', detail: `JID '${bareJid}': ${unstorable}` };
  }

  /** Ids of every sender, creating the missing `mam_server_user` rows (committed, race-safe). */
  resolveSenderIds(writes: readonly SenderWrite[]): Promise<Map<string, string>> {
    return this.senderIds.resolve(writes);
  }

  /**
   * Resolves every sender to its `mam_server_user` id, then sets `sender_id` where still NULL and
   * stores the checkpoint, both in one transaction committed only after every earlier batch.
   */
  async writeBatch(
    partition: SqlPartition,
    writes: readonly PlannedWrite<RowKey, Sender>[],
    cursor: RowKey,
    earlierCommitted: Promise<void>,
  ): Promise<WriteOutcome<RowKey>> {
    const senders = writes.map((w) => ({ key: w.key, user: w.write.user, server: w.write.server }));
    const senderIds = senderIdsOf(senders, await this.resolveSenderIds(senders));
    const rows = senders.map((w, i) => ({ roomId: w.key.roomId, id: w.key.id, senderId: senderIds[i] }));
    // Wait for the batch before *before* taking any row lock: a transaction that waited here
    // holding its locks could be waited on by one that it waits for (through another process on
    // the same rows), a cycle inside clients that no server's deadlock detector sees.
    await awaitEarlierBatches(earlierCommitted);
    const transaction = await this.driver.begin();
    let broken = false;
    try {
      let written = 0;
      for (const statement of rows.length === 0 ? [] : this.dialect.update(rows)) written += (await transaction.query(statement)).rowCount;
      await transaction.query(this.dialect.saveCheckpoint(partition.shard, cursor));
      await transaction.commit();
      return { written };
    } catch (error) {
      await transaction.rollback().catch(() => {
        broken = true;
      });
      // A connection that failed mid-transaction is not given back to the pool.
      if (this.driver.isTransient(error)) broken = true;
      throw error;
    } finally {
      transaction.release(broken);
    }
  }

  /** Up to `size` random rows that already have a sender, with what `sender_id` points at. */
  async sampleForVerify(size: number): Promise<SqlVerifySample[]> {
    const rows = await this.rows(this.dialect.verifySample(size));
    return rows.map((r) =>
      sqlVerifySample(
        { roomId: String(r.room_id), id: String(r.id) },
        r.message as Buffer,
        String(r.sender_id),
        r.user_name === null ? null : text(r.user_name),
        r.server === null ? null : text(r.server),
      ),
    );
  }

  verifyAnswer(sample: SqlVerifySample, answer: ExtractResult): Mismatch | null {
    if (sample.user === null || sample.server === null) {
      return { kind: 'sender_row_missing', detail: `no mam_server_user row with id ${sample.senderId}` };
    }
    if (!answer.ok) return { kind: 'decode_failed', detail: `${answer.code}: ${answer.detail}` };
    if (answer.user !== sample.user || answer.server !== sample.server) {
      return {
        kind: 'sender_differs',
        detail: `payload says ${answer.user}@${answer.server}, sender_id ${sample.senderId} is ${sample.user}@${sample.server}`,
      };
    }
    return null;
  }

  isTransient(error: unknown): boolean {
    // Failed only because the batch before it failed: as transient as that failure.
    if (error instanceof EarlierBatchFailedError) return this.isTransient(error.causeError);
    return this.driver.isTransient(error);
  }

  async close(): Promise<void> {
    const lock = this.lock;
    this.lock = null;
    if (lock !== null) {
      // Closing the session would release it too; unlocking first says so explicitly.
      await lock.session.query(this.dialect.unlockShard(lock.shard)).catch(() => {});
      await lock.session.close().catch(() => {});
    }
    await this.driver.close();
  }
}

/** `stored` of a verify sample: what `sender_id` points at, in words. */
export function describeStoredSender(senderId: string, user: string | null, server: string | null): string {
  return user === null || server === null ? `sender_id ${senderId} (no mam_server_user row)` : `sender_id ${senderId} = ${user}@${server}`;
}

export function sqlVerifySample(key: RowKey, payload: Uint8Array, senderId: string, user: string | null, server: string | null): SqlVerifySample {
  return { key, payload, senderId, user, server, stored: describeStoredSender(senderId, user, server) };
}

/** The CLI's entry for a SQL backend: `--url`, and a pool of one connection per batch in flight plus the reader's. */
/** Each SQL backend's URL; MSSQL also takes an ADO string (`Server=...;Database=...`), passed as is. */
const URL_RULES: Record<string, UrlRules> = {
  postgres: { schemes: ['postgres', 'postgresql'], example: 'postgres://USER:PASSWORD@HOST:5432/DATABASE' },
  mysql: { schemes: ['mysql', 'mariadb'], example: 'mysql://USER:PASSWORD@HOST:3306/DATABASE' },
  mssql: { schemes: ['mssql', 'sqlserver'], example: 'mssql://USER:PASSWORD@HOST:1433/DATABASE, or an ADO string Server=...;Database=...' },
};

export function sqlBackendDefinition(kind: string, summary: string, open: (options: { url: string; poolSize: number }) => AnyBackend): BackendDefinition {
  return {
    kind,
    summary,
    flags: {},
    usage: `  --url URL              the database (or env MIM_SENDER_JID_DB_URL): ${URL_RULES[kind]?.example ?? 'its URL'}`,
    async open(values, context) {
      if (typeof values.url !== 'string') throw new UsageError(`--url is required (or set MIM_SENDER_JID_DB_URL)`);
      const rules = URL_RULES[kind];
      const adoString = kind === 'mssql' && !values.url.includes('://') && values.url.includes('=');
      // Before the driver sees it: a driver's own refusal may quote the URL, password included.
      if (rules !== undefined && !adoString) checkUrl('--url', values.url, rules);
      return open({ url: values.url, poolSize: context.concurrency + 2 });
    },
  };
}
