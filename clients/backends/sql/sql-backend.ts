/**
 * What the three SQL backends (PostgreSQL, MySQL/MariaDB, MSSQL) share on the generic seam, written
 * once: the key is the primary key `(room_id, id)`, the cursor is the last key committed, one
 * partition per `--shard K/N` (`room_id mod N = K`, see shardOfSql) walked as one keyset, the checkpoint committed
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
  type NotWrittenRecord,
  type Page,
  type PageLimits,
  type Partition,
  type PlannedWrite,
  type ScannedRecord,
  type ScanPage,
  type SchemaStatus,
  type ShardSpec,
  type SourceRecord,
  type UnwrittenKeys,
  type VerifySample,
  type WriteOutcome,
} from '../../pipeline/types.js';
import { UsageError, type BackendDefinition } from '../registry.js';
import { checkUrl, type UrlRules } from '../url-check.js';
import { senderIdsOf } from './sender-id-cache.js';
import { SenderIdResolver, type ResolvedSenders } from './sender-id-resolver.js';
import { ShardBusyError } from './sql-errors.js';
import {
  checkpointTableExists,
  compareRowKeys,
  shardLockName,
  inTransaction,
  nullableText,
  pagePlace,
  prepareCheckpointTable,
  truthy,
  type RowKey,
  type SqlDialect,
  type SqlDriver,
  type SenderPair,
  type SqlRow,
  type SqlSession,
  type SqlStatement,
} from './sql-dialect.js';

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

export class SqlBackend<P = unknown> implements Backend<RowKey, RowKey, Sender, SqlPartition> {
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'in-write' as const;
  private readonly senderIds: SenderIdResolver<P>;
  /** The connection holding this run's shard lock. */
  private lock: { readonly session: SqlSession<P>; readonly shard: ShardSpec } | null = null;

  constructor(
    readonly name: string,
    protected readonly dialect: SqlDialect<P>,
    protected readonly driver: SqlDriver<P>,
    /** `--single-writer`: this process is the only one inserting into `mam_server_user`. */
    private readonly singleWriter = false,
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
    await this.checkSenderUnique();
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

  /**
   * Without the unique `(server, user_name)` index, two writers inserting the same sender at once
   * (two shards, or MongooseIM 3.4 itself) make two rows, and MongooseIM's per-sender lookup
   * then misses the rows that point at the other one. Refused unless the operator says this
   * process is the only writer (`--single-writer`).
   */
  private async checkSenderUnique(): Promise<void> {
    const [u] = await this.rows(this.dialect.senderUniqueCheck);
    if (truthy(u?.has_unique) || this.singleWriter) return;
    throw new SenderIndexMissingError(this.dialect.senderUniqueStatement);
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
    if (this.singleWriter && shard.count > 1) {
      throw new Error(
        `--single-writer says one process writes mam_server_user, but --shard ${shardName(shard)} runs ${shard.count}: drop --shard, or create the unique index and drop --single-writer`,
      );
    }
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

  private checkpointTableExists(): Promise<boolean> {
    return checkpointTableExists(this.driver, this.dialect);
  }

  prepareCheckpoints(): Promise<void> {
    return prepareCheckpointTable(this.driver, this.dialect, this.dialect.checkpointTable);
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
    const records: SourceRow[] = rows.map((r) => ({ key: rowKeyOf(r), payload: r.message as Buffer }));
    return { records, ...pagePlace(rows, records, after, limits) };
  }

  /**
   * `verify --complete`: the walk's pages over every row, written or not; a written row is its
   * verify sample (what `sender_id` points at), as `sampleForVerify` makes it.
   */
  async scanPage(partition: SqlPartition, after: RowKey | null, limits: PageLimits): Promise<ScanPage<RowKey, RowKey>> {
    const rows = await this.rows(this.dialect.scanPage(after, limits, partition.shard));
    const records = rows.map((r): ScannedRecord<RowKey> => {
      const key = rowKeyOf(r);
      const payload = r.message as Buffer;
      if (r.sender_id === null || r.sender_id === undefined) return { key, payload, stored: '', written: false };
      const sample = sqlVerifySample(key, payload, String(r.sender_id), nullableText(r.user_name), nullableText(r.server));
      return { ...sample, written: true };
    });
    return { records, ...pagePlace(rows, records, after, limits) };
  }

  /**
   * The end-of-run accounting: rows of the shard still NULL, read through the index on
   * `sender_id` (one more than `max` tells whether there are more), in key order.
   */
  async unwrittenKeys(shard: ShardSpec, max: number): Promise<UnwrittenKeys<RowKey>> {
    const statement = this.dialect.unwrittenKeys(shard, Math.max(0, Math.floor(max)) + 1);
    let rows: SqlRow[];
    if (this.dialect.unwrittenKeysSettings.length === 0) rows = await this.rows(statement);
    else {
      const transaction = await this.driver.begin();
      let broken = false;
      try {
        for (const setting of this.dialect.unwrittenKeysSettings) await transaction.query(setting);
        rows = (await transaction.query(statement)).rows;
        await transaction.commit();
      } catch (error) {
        await transaction.rollback().catch(() => {
          broken = true;
        });
        if (this.driver.isTransient(error)) broken = true;
        throw error;
      } finally {
        transaction.release(broken);
      }
    }
    const keys = rows.map(rowKeyOf).sort(compareRowKeys);
    return { keys: keys.slice(0, max), complete: keys.length <= max };
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

  /** Ids of every sender, creating the missing `mam_server_user` rows (committed, race-safe), and the senders the database refused. */
  resolveSenderIds(writes: readonly SenderPair[]): Promise<ResolvedSenders> {
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
    const { ids, unstorable, keys } = await this.resolveSenderIds(writes.map((w) => w.write));
    // A sender the database refused (its encoding, the column's character set or length as the
    // database counts it) leaves its rows NULL and reported; the rest of the batch is written.
    const refused: NotWrittenRecord<RowKey>[] = [];
    let senders: readonly PlannedWrite<RowKey, Sender>[] = writes;
    let senderKeys = keys;
    if (unstorable.size > 0) {
      const kept: PlannedWrite<RowKey, Sender>[] = [];
      const keptKeys: string[] = [];
      writes.forEach((w, i) => {
        const why = unstorable.get(keys[i]);
        if (why === undefined) {
          kept.push(w);
          keptKeys.push(keys[i]);
        } else refused.push({ key: w.key, reason: 'jid_not_storable', detail: `JID '${w.write.user}@${w.write.server}': ${why}` });
      });
      senders = kept;
      senderKeys = keptKeys;
    }
    const senderIds = senderIdsOf(
      senders.map((w) => w.write),
      ids,
      senderKeys,
    );
    const rows = senders.map((w, i) => ({ roomId: w.key.roomId, id: w.key.id, senderId: senderIds[i] }));
    // Wait for the batch before *before* taking any row lock: a transaction that waited here
    // holding its locks could be waited on by one that it waits for (through another process on
    // the same rows), a cycle inside clients that no server's deadlock detector sees.
    await awaitEarlierBatches(earlierCommitted);
    return inTransaction(this.driver, async (transaction) => {
      let written = 0;
      for (const statement of rows.length === 0 ? [] : this.dialect.update(rows)) written += (await transaction.query(statement)).rowCount;
      await transaction.query(this.dialect.saveCheckpoint(partition.shard, cursor));
      return refused.length === 0 ? { written } : { written, refused };
    });
  }

  /** Up to `size` random rows that already have a sender, with what `sender_id` points at. */
  async sampleForVerify(size: number): Promise<SqlVerifySample[]> {
    const rows = await this.rows(this.dialect.verifySample(size));
    return rows.map((r) => sqlVerifySample(rowKeyOf(r), r.message as Buffer, String(r.sender_id), nullableText(r.user_name), nullableText(r.server)));
  }

  verifyAnswer(sample: SqlVerifySample, answer: ExtractResult): Mismatch | null {
    if (sample.user === null || sample.server === null) {
      return { kind: 'sender_row_missing', detail: `no mam_server_user row with id ${sample.senderId}` };
    }
    if (!answer.ok) return { kind: 'undecodable', detail: `${answer.code}: ${answer.detail}` };
    if (answer.user !== sample.user || answer.server !== sample.server) {
      return {
        kind: 'different_sender',
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

function rowKeyOf(row: SqlRow): RowKey {
  return { roomId: String(row.room_id), id: String(row.id) };
}

export class SenderIndexMissingError extends Error {
  constructor(statement: string) {
    super(
      `mam_server_user has no unique index on (server, user_name): concurrent inserts of one sender (several shards, or MongooseIM 3.4 running) ` +
        `would make duplicate rows. Create it (after removing any duplicates): ${statement} ` +
        `Or, when this is the only process writing mam_server_user (no --shard, MongooseIM stopped), pass --single-writer.`,
    );
    this.name = 'SenderIndexMissingError';
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

/** `--field`: what a walk fills; `sender` (the default) is the 3.4 walk, the others field-backend.ts's. */
const FIELD_VALUES = ['sender', 'origin_id', 'is_groupchat'] as const;
type OtherField = 'origin_id' | 'is_groupchat';

/**
 * `--field F` or `--field F1,F2`: the fields of one walk, or a usage error. origin_id and
 * is_groupchat combine (one read and one decode of `mam_message` for both); the sender does not:
 * its walk is another backend, with its own id resolution (`mam_server_user`) and accounting.
 */
export function parseFieldOption(value: unknown): 'sender' | OtherField[] {
  const text = value ?? 'sender';
  const fields = typeof text === 'string' ? text.split(',').map((f) => f.trim()) : [];
  const bad = fields.find((f) => !(FIELD_VALUES as readonly string[]).includes(f));
  if (typeof text !== 'string' || fields.length === 0 || bad !== undefined) {
    throw new UsageError(`--field must be one of ${FIELD_VALUES.join(', ')}, got '${String(text)}' (origin_id,is_groupchat fills both in one walk)`);
  }
  if (new Set(fields).size !== fields.length) throw new UsageError(`--field names a field twice ('${text}'): name each once`);
  if (fields.length === 1 && fields[0] === 'sender') return 'sender';
  if (fields.includes('sender')) {
    throw new UsageError(
      `--field sender cannot share a walk with ${fields.filter((f) => f !== 'sender').join(',')}: run them one after another (--field sender first, then --field ${fields.filter((f) => f !== 'sender').join(',')})`,
    );
  }
  return fields as OtherField[];
}

export function sqlBackendDefinition(
  kind: string,
  summary: string,
  open: (options: { url: string; poolSize: number; singleWriter: boolean }) => AnyBackend,
  /** The `--field origin_id|is_groupchat` walks (absent: this backend has only the sender's); several fields share one walk. */
  openField?: (options: { url: string; poolSize: number; field: readonly OtherField[] }) => AnyBackend,
): BackendDefinition {
  return {
    kind,
    summary,
    flags: { 'single-writer': { type: 'boolean' }, field: { type: 'string' } },
    usage:
      `  --url URL              the database (or env MIM_SENDER_JID_DB_URL): ${URL_RULES[kind]?.example ?? 'its URL'}\n` +
      `  --single-writer        proceed without mam_server_user's unique (server, user_name) index: this process is its only writer\n` +
      `  --field F              what to backfill: sender (default: mam_muc_message.sender_id, 3.4), origin_id (both archives, 3.7)\n` +
      `                         or is_groupchat (mam_message, 6.2.1); run them in that order${openField === undefined ? ' (sender only for ' + kind + ' so far)' : ''};\n` +
      `                         origin_id,is_groupchat fills both in one walk (one read of mam_message)`,
    async open(values, context) {
      if (typeof values.url !== 'string') throw new UsageError(`--url is required (or set MIM_SENDER_JID_DB_URL)`);
      const field = parseFieldOption(values.field);
      const rules = URL_RULES[kind];
      const adoString = kind === 'mssql' && !values.url.includes('://') && values.url.includes('=');
      // Before the driver sees it: a driver's own refusal may quote the URL, password included.
      if (rules !== undefined && !adoString) checkUrl('--url', values.url, rules);
      const poolSize = context.concurrency + 2;
      if (field !== 'sender') {
        const named = field.join(',');
        if (openField === undefined)
          throw new UsageError(`--field ${named} is not available for ${kind} yet: only the sender (postgres and mysql have origin_id and is_groupchat)`);
        if (values['single-writer'] === true) throw new UsageError(`--single-writer is about mam_server_user, which --field ${named} never writes: drop it`);
        return openField({ url: values.url, poolSize, field });
      }
      return open({ url: values.url, poolSize, singleWriter: values['single-writer'] === true });
    },
  };
}
