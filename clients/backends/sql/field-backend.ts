/**
 * `migrate postgres|mysql --field origin_id|is_groupchat`: the columns MongooseIM 3.7.0
 * (origin_id, on both archives) and 6.2.1 (is_groupchat, on the users' archive `mam_message`)
 * fill only for new messages, backfilled from each stored payload through the same pipeline as
 * the sender (clients/pipeline): this backend only reads and writes.
 *
 * - partitions: one per table the field lives in, for this shard (`room_id mod N = K` or
 *   `user_id mod N = K`, see shardOfSql), each walked as one keyset in primary key order;
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
  NotWrittenReason,
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
  FIELD_NAMES,
  fieldIndexName,
  fieldPartitionName,
  fieldTargets,
  ownerColumn,
  walkTargets,
  type ArchiveTable,
  type FieldDialect,
  type FieldName,
  type FieldRowKey,
  type FieldRowWrite,
  type WalkTarget,
} from './field-statements.js';

export interface FieldPartition extends Partition, WalkTarget {
  readonly shard: ShardSpec;
}

/**
 * What one row gets: each field whose answer is not the default (an origin_id to store,
 * `is_groupchat` true); a field absent keeps its default (MongooseIM's answer, or one it cannot
 * take). `partly`: the record is also reported for a field it cannot take.
 */
export interface FieldWrite {
  readonly origin_id?: string;
  readonly is_groupchat?: true;
  readonly partly?: true;
}

/** A row as `verify` sees it: what each field's column holds (null for a NULL origin_id). */
export interface FieldVerifySample extends VerifySample<FieldRowKey> {
  readonly values: Partial<Record<FieldName, string | boolean | null>>;
}

/** One field's verdict on an answer: the value to write (null: the default), or why none. */
type FieldVerdict =
  | { readonly field: FieldName; readonly value: string | true | null }
  | { readonly field: FieldName; readonly reason: NotWrittenReason; readonly detail: string };

export class SqlFieldBackend<P = unknown> implements Backend<FieldRowKey, FieldRowKey, FieldWrite, FieldPartition, FieldsResult> {
  readonly answers = 'fields' as const;
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'in-write' as const;
  readonly noAccountingReason: string;
  /** The fields this walk fills, in `FIELD_NAMES` order. */
  readonly fields: readonly FieldName[];
  private readonly targets: WalkTarget[];
  /** Sessions holding this run's locks, one per partition. */
  private readonly locks: { readonly session: SqlSession<P>; readonly name: string }[] = [];

  constructor(
    /** `postgres` or `mysql`: the CLI's kind (report and log names). */
    readonly name: string,
    /** One field, or several filled from one read and one decode of each row (`--field origin_id,is_groupchat`). */
    fields: FieldName | readonly FieldName[],
    private readonly dialect: FieldDialect<P>,
    private readonly driver: SqlDriver<P>,
  ) {
    const asked = typeof fields === 'string' ? [fields] : fields;
    this.fields = FIELD_NAMES.filter((f) => asked.includes(f));
    if (this.fields.length === 0) throw new Error('a field walk needs at least one field');
    this.targets = walkTargets(this.fields);
    const why = this.fields.map((field) =>
      field === 'origin_id'
        ? "NULL is also MongooseIM's origin_id for a message without an origin-id"
        : "false is also MongooseIM's is_groupchat for a message that is not groupchat",
    );
    this.noAccountingReason = `${why.join(', and ')}, so no query tells a row not walked from one walked; the checkpoints say how far the walk went`;
  }

  private async rows(statement: SqlStatement<P>): Promise<SqlRow[]> {
    return (await this.driver.query(statement)).rows;
  }

  /** The fields this walk fills in `table`. */
  private fieldsOf(table: ArchiveTable): readonly FieldName[] {
    return this.targets.find((t) => t.table === table)?.fields ?? [];
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
    for (const target of this.fields.flatMap(fieldTargets)) {
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
    return { ready: missing.length === 0, missing, statements, guide: this.fields.map((f) => this.dialect.guide[f]).join(', and ') };
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
   * One lock per partition, on a session of its own (named by table, fields and shard): a second
   * process on the same walk is refused at once; the sender walk and other fields' walks hold
   * other names, and may run beside it (each column changes only from its default, so two walks
   * filling the same column only race to write the same answer).
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
    const columns = this.dialect.pageColumns?.(partition);
    if (columns !== undefined && this.driver.readRows !== undefined) return this.driver.readRows(page, columns);
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

  private keyOf(target: WalkTarget, row: SqlRow): FieldRowKey {
    return { table: target.table, owner: String(row.owner), id: String(row.id) };
  }

  private sampleOf(target: WalkTarget, row: SqlRow): FieldVerifySample {
    const values: Partial<Record<FieldName, string | boolean | null>> = {};
    for (const field of target.fields) values[field] = storedValue(field, row[field]);
    const stored = target.fields.map((field) => describeStored(field, values[field] ?? null)).join(', ');
    return { key: this.keyOf(target, row), payload: row.message as Buffer, values, stored };
  }

  /** One field's answer, as the column takes it. */
  private verdict(field: FieldName, answer: FieldsResult): FieldVerdict {
    if (field === 'is_groupchat') {
      const g = answer.isGroupchat;
      return g.ok ? { field, value: g.value ? true : null } : { field, reason: g.code, detail: g.detail };
    }
    const o = answer.originId;
    if (!o.ok) return { field, reason: o.code, detail: o.detail };
    if (o.value === null) return { field, value: null };
    const why = this.dialect.checkStorable(o.value);
    return why === null
      ? { field, value: o.value }
      : { field, reason: 'value_not_storable', detail: `origin_id ${JSON.stringify(o.value.slice(0, 80))}: ${why}` };
  }

  /**
   * Each field of the row's table on its own: a field whose answer is the default has nothing to
   * change; one without an answer (or one its column cannot hold) is reported, and the row's other
   * fields are still written (the report line then names the field, and says what was written).
   */
  decide(record: SourceRecord<FieldRowKey>, answer: FieldsResult): Decision<FieldWrite> {
    const fields = this.fieldsOf(record.key.table);
    const verdicts = fields.map((field) => this.verdict(field, answer));
    const write: { origin_id?: string; is_groupchat?: true } = {};
    const failed: { field: FieldName; reason: NotWrittenReason; detail: string }[] = [];
    for (const v of verdicts) {
      if ('reason' in v) failed.push(v);
      else if (v.value !== null) {
        if (v.field === 'origin_id') write.origin_id = v.value as string;
        else write.is_groupchat = true;
      }
    }
    if (failed.length === 0) return { write };
    // One field: its words as they always were; several: each failure says its field.
    const detail =
      fields.length === 1 ? failed[0].detail : failed.map((f) => (f.reason === 'value_not_storable' ? f.detail : `${f.field}: ${f.detail}`)).join('; ');
    const answered = verdicts.filter((v) => !('reason' in v)).map((v) => v.field);
    if (answered.length === 0) return { reason: failed[0].reason, detail };
    return {
      write: { ...write, partly: true },
      partly: { reason: failed[0].reason, detail: `${detail} (${answered.join(', ')} written from the same payload)` },
    };
  }

  async writeBatch(
    partition: FieldPartition,
    writes: readonly PlannedWrite<FieldRowKey, FieldWrite>[],
    cursor: FieldRowKey,
    earlierCommitted: Promise<void>,
  ): Promise<WriteOutcome<FieldRowKey>> {
    const rowOf = (w: PlannedWrite<FieldRowKey, FieldWrite>): FieldRowWrite => ({
      owner: w.key.owner,
      id: w.key.id,
      ...(w.write.origin_id === undefined ? {} : { origin_id: w.write.origin_id }),
      ...(w.write.is_groupchat === undefined ? {} : { is_groupchat: w.write.is_groupchat }),
    });
    const changes = (partly: boolean): FieldRowWrite[] =>
      writes.filter((w) => (w.write.partly === true) === partly && (w.write.origin_id !== undefined || w.write.is_groupchat !== undefined)).map(rowOf);
    const whole = changes(false);
    // Records written in part are reported, not counted; their rows are changed by statements of their own.
    const partial = changes(true);
    // Rows whose answers are the defaults already hold them: written, with nothing to change.
    const unchanged = writes.filter((w) => w.write.partly !== true).length - whole.length;
    // Waited for before any row lock is taken (see SqlBackend.writeBatch).
    await awaitEarlierBatches(earlierCommitted);
    try {
      return await inTransaction(this.driver, async (transaction) => {
        let written = 0;
        for (const statement of whole.length === 0 ? [] : this.dialect.update(partition, whole)) written += (await transaction.query(statement)).rowCount;
        for (const statement of partial.length === 0 ? [] : this.dialect.update(partition, partial)) await transaction.query(statement);
        await transaction.query(this.dialect.saveCheckpoint(partition.name, cursor.owner, cursor.id));
        return { written: written + unchanged };
      });
    } catch (error) {
      if (!this.dialect.isRefusedValue(error)) throw error;
    }
    // A value the database refused (its encoding cannot hold a character of it): row by row, the
    // refused rows reported and left NULL, so one such id cannot fail its batch on every run. The
    // refused value's row still gets its other fields.
    return inTransaction(this.driver, async (transaction) => {
      let written = 0;
      const refused: NotWrittenRecord<FieldRowKey>[] = [];
      const attempt = async (change: FieldRowWrite): Promise<{ changed: number } | { error: string }> => {
        await transaction.query(this.dialect.savepoint.set);
        try {
          let changed = 0;
          for (const statement of this.dialect.update(partition, [change])) changed += (await transaction.query(statement)).rowCount;
          await transaction.query(this.dialect.savepoint.release);
          return { changed };
        } catch (error) {
          if (!this.dialect.isRefusedValue(error)) throw error;
          await transaction.query(this.dialect.savepoint.rollback);
          return { error: error instanceof Error ? error.message : String(error) };
        }
      };
      for (const [change, counted] of [...whole.map((c) => [c, true] as const), ...partial.map((c) => [c, false] as const)]) {
        const first = await attempt(change);
        if ('changed' in first) {
          if (counted) written += first.changed;
          continue;
        }
        // Only origin_id is text a database can refuse: the row's other fields are written without it.
        const { origin_id: refusedValue, ...others } = change;
        const rest = others.is_groupchat === undefined ? null : await attempt(others);
        if (rest !== null && !('changed' in rest)) throw new Error(`the database refused a row without origin_id: ${rest.error}`);
        // A record written in part is reported already (for another field): one line per record.
        if (!counted) continue;
        refused.push({
          key: { table: partition.table, owner: change.owner, id: change.id },
          reason: 'value_not_storable',
          detail:
            `origin_id ${JSON.stringify(String(refusedValue).slice(0, 80))}: the database refused it: ${first.error}` +
            (rest === null ? '' : ' (is_groupchat written from the same payload)'),
        });
      }
      await transaction.query(this.dialect.saveCheckpoint(partition.name, cursor.owner, cursor.id));
      return refused.length === 0 ? { written: written + unchanged } : { written: written + unchanged, refused };
    });
  }

  /** Up to `size` random rows of each table the walk reads, whatever they hold. */
  async sampleForVerify(size: number): Promise<FieldVerifySample[]> {
    const samples: FieldVerifySample[] = [];
    for (const target of this.targets) {
      for (const row of await this.rows(this.dialect.verifySample(target, size))) samples.push(this.sampleOf(target, row));
    }
    return samples;
  }

  /** Each field of the row judged on its own; the mismatch names every field found wrong. */
  verifyAnswer(sample: FieldVerifySample, answer: FieldsResult): Mismatch | null {
    const fields = this.fieldsOf(sample.key.table);
    const found = fields.flatMap((field) => {
      const m = this.verifyField(field, sample.values[field] ?? null, answer);
      return m === null ? [] : [{ ...m, detail: fields.length === 1 || m.kind === 'different_value' ? m.detail : `${field}: ${m.detail}` }];
    });
    if (found.length === 0) return null;
    return { kind: found.some((m) => m.kind === 'different_value') ? 'different_value' : found[0].kind, detail: found.map((m) => m.detail).join('; ') };
  }

  private verifyField(field: FieldName, value: string | boolean | null, answer: FieldsResult): Mismatch | null {
    const given: FieldAnswer<string | null | boolean> = field === 'origin_id' ? answer.originId : answer.isGroupchat;
    const isDefault = value === null || value === false;
    if (!given.ok) {
      // The walk reports such a row and leaves its default; any other value has no payload behind it.
      return isDefault ? null : { kind: 'undecodable', detail: `${given.code}: ${given.detail}` };
    }
    const want = field === 'origin_id' ? given.value : given.value === true;
    if (want === value) return null;
    // An id the column cannot hold: the walk reports it and leaves NULL, as MongooseIM could not store it either.
    if (typeof want === 'string' && value === null && this.dialect.checkStorable(want) !== null) return null;
    const words = (v: unknown): string => (v === null ? 'NULL' : JSON.stringify(v));
    return { kind: 'different_value', detail: `payload says ${field} ${words(want)}, the row holds ${words(value)}` };
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
