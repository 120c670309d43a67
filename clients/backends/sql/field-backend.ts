/**
 * `migrate postgres|mysql --field origin_id|is_groupchat`: the columns MongooseIM 3.7.0
 * (origin_id, on both archives) and 6.2.1 (is_groupchat, on the users' archive `mam_message`)
 * fill only for new messages, backfilled from each stored payload through the same pipeline as
 * the sender (clients/pipeline): this backend only reads and writes.
 *
 * - partitions: one per table the field lives in, for this shard (`room_id % N = K` or
 *   `user_id % N = K`), each walked as one keyset in primary key order;
 * - pages: rows still holding the column's default (origin_id NULL, is_groupchat false), since a
 *   row holding anything else was written by MongooseIM or an earlier run and is right;
 * - decide: MongooseIM's answer; when that answer is the default itself (a message without an
 *   origin-id, a message that is not groupchat) there is nothing to change, and the record counts
 *   as written (its column holds MongooseIM's answer); a payload that gives no answer is reported;
 * - write: only where the row still holds the default, with the partition's checkpoint in the
 *   same transaction, committed after every earlier batch of the partition;
 * - accounting: none at the end of a run. A row holding the default is right for most messages
 *   (MongooseIM's own answer), so no query tells a row the walk missed from one it walked; the
 *   checkpoints say how far the walk went, and `verify --complete` decodes every row.
 */
import { awaitEarlierBatches, EarlierBatchFailedError } from '../../pipeline/ordering.js';
import type {
  Backend,
  Decision,
  FieldAnswer,
  FieldsResult,
  Mismatch,
  NotWrittenRecord,
  Page,
  PageLimits,
  Partition,
  PlannedWrite,
  ScannedRecord,
  ScanPage,
  SchemaStatus,
  ShardSpec,
  SourceRecord,
  VerifySample,
  WriteOutcome,
} from '../../pipeline/types.js';
import { EXACT_COUNT_BELOW } from './sql-backend.js';
import { ShardBusyError } from './sql-errors.js';
import {
  checkpointTableExists,
  inTransaction,
  nullableText,
  pagePlace,
  prepareCheckpointTable,
  truthy,
  type SqlDriver,
  type SqlRow,
  type SqlSession,
  type SqlStatement,
} from './sql-dialect.js';
import {
  fieldIndexName,
  fieldPartitionName,
  fieldTargets,
  ownerColumn,
  type FieldDialect,
  type FieldName,
  type FieldRowKey,
  type FieldTarget,
} from './field-statements.js';

export interface FieldPartition extends Partition, FieldTarget {
  readonly shard: ShardSpec;
}

/** What one row gets: the origin_id, `true` for is_groupchat, or null (MongooseIM's answer is the default: nothing to change). */
export type FieldWrite = string | true | null;

/** A row as `verify` sees it: what the column holds (null for a NULL origin_id). */
export interface FieldVerifySample extends VerifySample<FieldRowKey> {
  readonly value: string | boolean | null;
}

export class SqlFieldBackend<P = unknown> implements Backend<FieldRowKey, FieldRowKey, FieldWrite, FieldPartition, FieldsResult> {
  readonly answers = 'fields' as const;
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'in-write' as const;
  readonly noAccountingReason: string;
  private readonly targets: FieldTarget[];
  /** Sessions holding this run's locks, one per partition. */
  private readonly locks: { readonly session: SqlSession<P>; readonly name: string }[] = [];

  constructor(
    /** `postgres` or `mysql`: the CLI's kind (report and log names). */
    readonly name: string,
    readonly field: FieldName,
    private readonly dialect: FieldDialect<P>,
    private readonly driver: SqlDriver<P>,
  ) {
    this.targets = fieldTargets(field);
    this.noAccountingReason =
      field === 'origin_id'
        ? "NULL is also MongooseIM's origin_id for a message without an origin-id, so no query tells a row not walked from one walked; the checkpoints say how far the walk went"
        : "false is also MongooseIM's is_groupchat for a message that is not groupchat, so no query tells a row not walked from one walked; the checkpoints say how far the walk went";
  }

  private async rows(statement: SqlStatement<P>): Promise<SqlRow[]> {
    return (await this.driver.query(statement)).rows;
  }

  describeKey(key: FieldRowKey): Record<string, string> {
    return { table: key.table, [ownerColumn(key.table)]: key.owner, id: key.id };
  }

  describeCursor(key: FieldRowKey): string {
    return `${key.table} (${ownerColumn(key.table)} ${key.owner}, id ${key.id})`;
  }

  async checkSchema(): Promise<SchemaStatus> {
    const missing: string[] = [];
    const statements: string[] = [];
    for (const target of this.targets) {
      const [r] = await this.rows(this.dialect.schemaCheck(target));
      if (!truthy(r?.has_table)) throw new Error(`table ${target.table} not found: is this a MongooseIM database?`);
      const guide = this.dialect.schemaStatements(target);
      const index = fieldIndexName(target);
      // The guide's index on the rooms' origin_id includes sender_id (the 3.4 step).
      if (index !== null && target.table === 'mam_muc_message' && !truthy(r.has_sender_id) && !truthy(r.has_index)) {
        throw new Error(
          `mam_muc_message has no sender_id column, which the guide's index ${index} includes: run the sender backfill's schema step first (migrate ${this.name} --apply-schema)`,
        );
      }
      if (!truthy(r.has_column)) {
        missing.push(`column ${target.table}.${target.field} is missing`);
        statements.push(guide.column);
      }
      if (index !== null && guide.index !== null && !truthy(r.has_index)) {
        missing.push(`index ${index} is missing`);
        statements.push(guide.index);
      }
    }
    return { ready: missing.length === 0, missing, statements, guide: this.dialect.guide[this.field] };
  }

  async applySchema(): Promise<string[]> {
    const { statements } = await this.checkSchema();
    for (const sql of statements) await this.driver.query({ sql, params: [] });
    return statements;
  }

  async partitions(shard: ShardSpec): Promise<FieldPartition[]> {
    return this.targets.map((target) => ({ ...target, shard, name: fieldPartitionName(target, shard) }));
  }

  /**
   * One lock per partition, on a session of its own (named by table, field and shard): a second
   * process on the same walk is refused at once; the sender walk and the other field's walk hold
   * other names, and may run beside it (they write other columns).
   */
  async acquireShard(shard: ShardSpec): Promise<void> {
    for (const partition of await this.partitions(shard)) {
      const session = await this.driver.openSession();
      let acquired = false;
      try {
        const [r] = (await session.query(this.dialect.lock(partition.name))).rows;
        acquired = truthy(r?.acquired);
      } finally {
        if (!acquired) await session.close().catch(() => {});
      }
      if (!acquired) throw new ShardBusyError(shard, `mim_sender_jid ${partition.name}`);
      this.locks.push({ session, name: partition.name });
    }
  }

  private checkpointTableExists(): Promise<boolean> {
    return checkpointTableExists(this.driver, this.dialect);
  }

  prepareCheckpoints(): Promise<void> {
    return prepareCheckpointTable(this.driver, this.dialect, 'mim_sender_jid_checkpoint');
  }

  async readCheckpoint(partition: FieldPartition): Promise<FieldRowKey | null> {
    if (!(await this.checkpointTableExists())) return null;
    const [row] = await this.rows(this.dialect.readCheckpoint(partition.name));
    return row === undefined ? null : { table: partition.table, owner: String(row.last_room_id), id: String(row.last_id) };
  }

  async deleteCheckpoint(partition: FieldPartition): Promise<void> {
    await this.driver.query(this.dialect.deleteCheckpoint(partition.name));
  }

  async estimate(partitions: readonly FieldPartition[]): Promise<number> {
    let total = 0;
    for (const p of partitions) {
      const [statistics] = await this.rows(this.dialect.rowEstimate(p.table));
      const n = Number(statistics?.n ?? -1);
      if (n >= EXACT_COUNT_BELOW) total += Math.round(n / p.shard.count);
      else total += Number((await this.rows(this.dialect.exactCount(p, p.shard)))[0].n);
    }
    return total;
  }

  private async pageRows(partition: FieldPartition, after: FieldRowKey | null, limits: PageLimits, scan: boolean): Promise<SqlRow[]> {
    const page = this.dialect.page(partition, after, limits, partition.shard, scan);
    if (this.dialect.pageSettings.length === 0) return this.rows(page);
    return inTransaction(this.driver, async (transaction) => {
      for (const setting of this.dialect.pageSettings) await transaction.query(setting);
      return (await transaction.query(page)).rows;
    });
  }

  async readPage(partition: FieldPartition, after: FieldRowKey | null, limits: PageLimits): Promise<Page<FieldRowKey, FieldRowKey>> {
    const rows = await this.pageRows(partition, after, limits, false);
    const records = rows.map((r) => ({ key: this.keyOf(partition, r), payload: r.message as Buffer }));
    return { records, ...pagePlace(rows, records, after, limits) };
  }

  /**
   * `verify --complete`: every row, each as written (only its payload tells whether the column
   * holds MongooseIM's answer; `verifyAnswer` judges it).
   */
  async scanPage(partition: FieldPartition, after: FieldRowKey | null, limits: PageLimits): Promise<ScanPage<FieldRowKey, FieldRowKey>> {
    const rows = await this.pageRows(partition, after, limits, true);
    const records = rows.map((r): ScannedRecord<FieldRowKey> => ({ ...this.sampleOf(partition, r), written: true }));
    return { records, ...pagePlace(rows, records, after, limits) };
  }

  private keyOf(target: FieldTarget, row: SqlRow): FieldRowKey {
    return { table: target.table, owner: String(row.owner), id: String(row.id) };
  }

  private sampleOf(target: FieldTarget, row: SqlRow): FieldVerifySample {
    const value = storedValue(target.field, row.value);
    return { key: this.keyOf(target, row), payload: row.message as Buffer, value, stored: describeStored(target.field, value) };
  }

  decide(_record: SourceRecord<FieldRowKey>, answer: FieldsResult): Decision<FieldWrite> {
    if (this.field === 'is_groupchat') {
      const g = answer.isGroupchat;
      if (!g.ok) return { reason: g.code, detail: g.detail };
      return { write: g.value ? true : null };
    }
    const o = answer.originId;
    if (!o.ok) return { reason: o.code, detail: o.detail };
    if (o.value === null) return { write: null };
    const why = this.dialect.checkStorable(o.value);
    return why === null ? { write: o.value } : { reason: 'value_not_storable', detail: `origin_id ${JSON.stringify(o.value.slice(0, 80))}: ${why}` };
  }

  async writeBatch(
    partition: FieldPartition,
    writes: readonly PlannedWrite<FieldRowKey, FieldWrite>[],
    cursor: FieldRowKey,
    earlierCommitted: Promise<void>,
  ): Promise<WriteOutcome<FieldRowKey>> {
    const changes = writes.flatMap((w) => (w.write === null ? [] : [{ owner: w.key.owner, id: w.key.id, value: w.write }]));
    // Rows whose answer is the default already hold it: written, with nothing to change.
    const unchanged = writes.length - changes.length;
    // Waited for before any row lock is taken (see SqlBackend.writeBatch).
    await awaitEarlierBatches(earlierCommitted);
    try {
      return await inTransaction(this.driver, async (transaction) => {
        let written = 0;
        for (const statement of changes.length === 0 ? [] : this.dialect.update(partition, changes)) written += (await transaction.query(statement)).rowCount;
        await transaction.query(this.dialect.saveCheckpoint(partition.name, cursor.owner, cursor.id));
        return { written: written + unchanged };
      });
    } catch (error) {
      if (!this.dialect.isRefusedValue(error)) throw error;
    }
    // A value the database refused (its encoding cannot hold a character of it): row by row, the
    // refused rows reported and left NULL, so one such id cannot fail its batch on every run.
    return inTransaction(this.driver, async (transaction) => {
      let written = 0;
      const refused: NotWrittenRecord<FieldRowKey>[] = [];
      for (const change of changes) {
        await transaction.query(this.dialect.savepoint.set);
        try {
          for (const statement of this.dialect.update(partition, [change])) written += (await transaction.query(statement)).rowCount;
          await transaction.query(this.dialect.savepoint.release);
        } catch (error) {
          if (!this.dialect.isRefusedValue(error)) throw error;
          await transaction.query(this.dialect.savepoint.rollback);
          const why = error instanceof Error ? error.message : String(error);
          refused.push({
            key: { table: partition.table, owner: change.owner, id: change.id },
            reason: 'value_not_storable',
            detail: `${partition.field} ${JSON.stringify(String(change.value).slice(0, 80))}: the database refused it: ${why}`,
          });
        }
      }
      await transaction.query(this.dialect.saveCheckpoint(partition.name, cursor.owner, cursor.id));
      return refused.length === 0 ? { written: written + unchanged } : { written: written + unchanged, refused };
    });
  }

  /** Up to `size` random rows of each table the field lives in, whatever they hold. */
  async sampleForVerify(size: number): Promise<FieldVerifySample[]> {
    const samples: FieldVerifySample[] = [];
    for (const target of this.targets) {
      for (const row of await this.rows(this.dialect.verifySample(target, size))) samples.push(this.sampleOf(target, row));
    }
    return samples;
  }

  verifyAnswer(sample: FieldVerifySample, answer: FieldsResult): Mismatch | null {
    const field = this.field;
    const given: FieldAnswer<string | null | boolean> = field === 'origin_id' ? answer.originId : answer.isGroupchat;
    const isDefault = sample.value === null || sample.value === false;
    if (!given.ok) {
      // The walk reports such a row and leaves its default; any other value has no payload behind it.
      return isDefault ? null : { kind: 'undecodable', detail: `${given.code}: ${given.detail}` };
    }
    const want = field === 'origin_id' ? given.value : given.value === true;
    if (want === sample.value) return null;
    // An id the column cannot hold: the walk reports it and leaves NULL, as MongooseIM could not store it either.
    if (typeof want === 'string' && sample.value === null && this.dialect.checkStorable(want) !== null) return null;
    const words = (v: unknown): string => (v === null ? 'NULL' : JSON.stringify(v));
    return { kind: 'different_value', detail: `payload says ${field} ${words(want)}, the row holds ${words(sample.value)}` };
  }

  isTransient(error: unknown): boolean {
    if (error instanceof EarlierBatchFailedError) return this.isTransient(error.causeError);
    return this.driver.isTransient(error);
  }

  async close(): Promise<void> {
    for (const lock of this.locks.splice(0)) {
      await lock.session.query(this.dialect.unlock(lock.name)).catch(() => {});
      await lock.session.close().catch(() => {});
    }
    await this.driver.close();
  }
}

/** The column as the driver returns it: origin_id text or bytes (MySQL's binary column), is_groupchat a boolean or 0/1. */
function storedValue(field: FieldName, value: unknown): string | boolean | null {
  if (field === 'is_groupchat') return value === true || Number(value) === 1;
  return nullableText(value);
}

function describeStored(field: FieldName, value: string | boolean | null): string {
  return `${field} ${value === null ? 'NULL' : JSON.stringify(value)}`;
}
