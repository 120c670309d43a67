/**
 * MongooseIM's Cassandra MUC archive as a pipeline backend. Every message is stored twice: the
 * `with_nick = ''` copy gets the sender's bare JID, as MongooseIM 3.4 writes it; the nick copies
 * get `''` (again as 3.4 writes them) only with `fillNickCopies`. A nick copy's `''` does not depend
 * on what its payload says, so it is written whatever the decoder answers (its payload is still
 * decoded with the batch: one batch, one answer per record, no special path in the pipeline).
 * Writes are single-row prepared UPDATEs, idempotent, so a batch written twice after a crash is
 * harmless and the `after-write` checkpoints may lag behind the data.
 */
import cassandra, { type Client } from 'cassandra-driver';
import { senderOf } from '../../pipeline/decisions.js';
import type {
  Backend,
  Decision,
  ExtractResult,
  Mismatch,
  NotWrittenRecord,
  Page,
  PageLimits,
  PlannedWrite,
  ScanPage,
  ScannedRecord,
  SchemaStatus,
  ShardSpec,
  SourceRecord,
  VerifySample,
  WriteOutcome,
} from '../../pipeline/types.js';
import { PartlyWrittenError } from '../../pipeline/types.js';
import { describeRangeCursor, describeRowKey, type RangeCursor, type CassandraRowKey } from './keys.js';
import { RangeReader, type ScannedRow } from './range-reader.js';
import { CHECKPOINT_TABLE, MESSAGE_TABLE, applySchema, checkSchema, createCheckpointTableStatement, readIdOrder, type IdOrder } from './schema.js';
import { MAX_TOKEN, MIN_TOKEN, rangesOfShard, type TokenRange } from './token-ranges.js';
import { isTransientCassandraError } from './transient-errors.js';

/**
 * A refusal that is not about one row but about the role: the same for every row, so reporting each
 * one and moving on would end "done" with nothing written and every checkpoint at the end.
 */
export function isStoreWideWriteError(error: unknown): boolean {
  return error instanceof cassandra.errors.ResponseError && error.code === cassandra.types.responseErrorCodes.unauthorized;
}

export class StoreWideWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreWideWriteError';
  }
}

/** A saved place the walk cannot trust: refused with the checkpoint's name and the way out. */
export class CorruptCheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptCheckpointError';
  }
}

/**
 * "No such table" as Cassandra 4 words it (`unconfigured table X`) and as Cassandra 5 does
 * (`table X does not exist`).
 */
export function isMissingTableError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /unconfigured table|table \S+ does not exist/i.test(message);
}

/** Writes (single rows or single-partition batches) in flight per batch, spread by the driver over its connections. */
const GROUPS_IN_FLIGHT_PER_BATCH = 16;
/**
 * Rows of one partition written as one unlogged batch: at most this many, and at most this many
 * bytes of keys and values, under the node's default `batch_size_warn_threshold` (5 KiB) so that
 * the backfill fills no server log with warnings.
 */
const ROWS_PER_GROUP = 50;
const BYTES_PER_GROUP = 4_000;

/** Writes grouped by Cassandra partition (`room_jid`, `with_nick`), each group cut to the limits above. */
export function groupByCassandraPartition<W extends { key: CassandraRowKey; write: string }>(writes: readonly W[]): W[][] {
  const byPartition = new Map<string, W[][]>();
  const sizes = new Map<W[], number>();
  for (const write of writes) {
    const partitionKey = `${write.key.roomJid}\u0000${write.key.withNick}`;
    const bytes = Buffer.byteLength(write.key.roomJid) + Buffer.byteLength(write.key.withNick) + Buffer.byteLength(write.write) + 16;
    const groups = byPartition.get(partitionKey) ?? [];
    let last = groups[groups.length - 1];
    if (last === undefined || last.length >= ROWS_PER_GROUP || (sizes.get(last) ?? 0) + bytes > BYTES_PER_GROUP) {
      last = [];
      groups.push(last);
      byPartition.set(partitionKey, groups);
    }
    last.push(write);
    sizes.set(last, (sizes.get(last) ?? 0) + bytes);
  }
  return [...byPartition.values()].flat();
}
/**
 * A value of an indexed column becomes a partition key of the index table, and partition keys are
 * at most 65,535 bytes: a longer JID would be refused by the node, so it is reported instead.
 */
export const MAX_FROM_JID_BYTES = 65_535;

export interface CassandraBackendOptions {
  readonly client: Client;
  /** Validated CQL identifier. */
  readonly keyspace: string;
  readonly consistency: number;
  readonly fillNickCopies: boolean;
  /** Random source of `verify`'s sample (seeded by tests). */
  readonly random?: () => number;
}

/** The value written into `from_jid`: a bare JID for the `''` copy, `''` for a nick copy. */
export type FromJid = string;

function keyOf(row: ScannedRow): CassandraRowKey {
  return { roomJid: row.room_jid, withNick: row.with_nick, id: row.id.toString() };
}

export class CassandraBackend implements Backend<CassandraRowKey, RangeCursor, FromJid, TokenRange> {
  readonly name = 'cassandra';
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'after-write' as const;

  private readonly client: Client;
  private readonly keyspace: string;
  private readonly table: string;
  private readonly consistency: number;
  private readonly fillNickCopies: boolean;
  private readonly random: () => number;
  private readonly reader: RangeReader<SourceRecord<CassandraRowKey>>;
  private readonly scanner: RangeReader<ScannedRecord<CassandraRowKey>>;
  readonly noAccountingReason = 'counting the rows still without from_jid is a full scan in Cassandra: verify --complete does it';
  private idOrderRead: Promise<IdOrder> | undefined;
  /** Checkpoints of a walk with nick copies are not those of one without: the second must still visit them. */
  private readonly walkPrefix: string;

  constructor(options: CassandraBackendOptions) {
    this.client = options.client;
    this.keyspace = options.keyspace;
    this.table = `${options.keyspace}.${MESSAGE_TABLE}`;
    this.consistency = options.consistency;
    this.fillNickCopies = options.fillNickCopies;
    this.random = options.random ?? Math.random;
    this.walkPrefix = options.fillNickCopies ? 'blank-and-nick-copies' : 'blank-copies';
    const common = { client: this.client, table: this.table, consistency: this.consistency };
    this.reader = new RangeReader<SourceRecord<CassandraRowKey>>({
      ...common,
      pick: (row) => (this.isOurs(row) && row.from_jid === null ? { key: keyOf(row), payload: row.message ?? Buffer.alloc(0) } : null),
    });
    // Its own reader: its walks (driver page states) must not be taken for the migration's.
    this.scanner = new RangeReader<ScannedRecord<CassandraRowKey>>({
      ...common,
      pick: (row) =>
        this.isOurs(row) ? { key: keyOf(row), payload: row.message ?? Buffer.alloc(0), stored: row.from_jid ?? '', written: row.from_jid !== null } : null,
    });
  }

  /** The rows this walk answers for: the '' copies, and the nick copies with `fillNickCopies`. */
  private isOurs(row: ScannedRow): boolean {
    return row.with_nick === '' || this.fillNickCopies;
  }

  describeKey(key: CassandraRowKey): Record<string, string> {
    return describeRowKey(key);
  }

  describeCursor(cursor: RangeCursor): string {
    return describeRangeCursor(cursor);
  }

  checkSchema(): Promise<SchemaStatus> {
    return checkSchema(this.client, this.keyspace);
  }

  applySchema(): Promise<string[]> {
    return applySchema(this.client, this.keyspace);
  }

  async partitions(shard: ShardSpec): Promise<TokenRange[]> {
    const ranges = rangesOfShard(shard);
    await this.idOrder(); // a table of another shape is refused before anything is walked
    return ranges;
  }

  /**
   * `CREATE TABLE IF NOT EXISTS` needs CREATE permission even when the table exists, which a role
   * made for the backfill (SELECT, MODIFY) has no need of: refused so, an existing table is enough.
   * (Not "look first, create if missing": a table another shard has just created can show in
   * system_schema a moment before the node accepts statements on it.)
   */
  async prepareCheckpoints(): Promise<void> {
    try {
      await this.client.execute(createCheckpointTableStatement(this.keyspace));
    } catch (error) {
      if (!isStoreWideWriteError(error)) throw error;
      const found = await this.client.execute(
        'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
        [this.keyspace.toLowerCase(), CHECKPOINT_TABLE],
        { prepare: true },
      );
      if (found.rows.length === 0) throw error;
    }
  }

  private checkpointName(partition: TokenRange): string {
    return `${this.walkPrefix}/${partition.name}`;
  }

  async readCheckpoint(partition: TokenRange): Promise<RangeCursor | null> {
    let result;
    try {
      result = await this.client.execute(
        `SELECT last_token, room_jid, with_nick, id FROM ${this.keyspace}.${CHECKPOINT_TABLE} WHERE walk = ?`,
        [this.checkpointName(partition)],
        { prepare: true, consistency: this.consistency },
      );
    } catch (error) {
      // No table yet: nothing was ever saved (a dry run never creates it).
      if (isMissingTableError(error)) return null;
      throw error;
    }
    const row = result.rows[0];
    if (row === undefined) return null;
    return this.checkedCursor(partition, row);
  }

  /**
   * A saved place is trusted only when it is one our walk could have saved: every column set, and
   * a token inside the range it is saved for. Anything else (a hand edit, a row of another tool or
   * version) is refused rather than walked from the start: the walk from the start is one flag
   * away (`--reset`), and it is the operator's to choose once told, while a checkpoint table that
   * holds what we never wrote may mean that something else is writing there too.
   */
  private checkedCursor(partition: TokenRange, row: Record<string, unknown>): RangeCursor {
    const where = `checkpoint '${this.checkpointName(partition)}' in ${this.keyspace}.${CHECKPOINT_TABLE}`;
    const fix = `run again with --reset to walk this shard from its start (writes are idempotent), or delete that row`;
    const token = row['last_token'];
    const roomJid = row['room_jid'];
    const withNick = row['with_nick'];
    const id = row['id'];
    const missing = Object.entries({ last_token: token, room_jid: roomJid, with_nick: withNick, id })
      .filter(([, value]) => value === null || value === undefined)
      .map(([name]) => name);
    if (missing.length > 0) throw new CorruptCheckpointError(`${where} is corrupt (${missing.join(', ')} null): ${fix}`);
    const tokenValue = BigInt(token as bigint);
    if (tokenValue <= partition.start || tokenValue > partition.end) {
      throw new CorruptCheckpointError(`${where} holds token ${tokenValue}, outside its range (${partition.start}, ${partition.end}]: ${fix}`);
    }
    return { token: tokenValue.toString(), roomJid: roomJid as string, withNick: withNick as string, id: String(id) };
  }

  async saveCheckpoint(partition: TokenRange, cursor: RangeCursor): Promise<void> {
    await this.client.execute(
      `INSERT INTO ${this.keyspace}.${CHECKPOINT_TABLE} (walk, last_token, room_jid, with_nick, id, updated_at) VALUES (?, ?, ?, ?, ?, toTimestamp(now()))`,
      [this.checkpointName(partition), BigInt(cursor.token), cursor.roomJid, cursor.withNick, BigInt(cursor.id)],
      { prepare: true, consistency: this.consistency, isIdempotent: true },
    );
  }

  async deleteCheckpoint(partition: TokenRange): Promise<void> {
    await this.client.execute(`DELETE FROM ${this.keyspace}.${CHECKPOINT_TABLE} WHERE walk = ?`, [this.checkpointName(partition)], {
      prepare: true,
      consistency: this.consistency,
      isIdempotent: true,
    });
  }

  /** Unknown: counting rows in Cassandra means reading them all. */
  async estimate(): Promise<number> {
    return 0;
  }

  /** Read once per backend, on the first page (a failed read is tried again on the next). */
  private idOrder(): Promise<IdOrder> {
    this.idOrderRead ??= readIdOrder(this.client, this.keyspace).catch((error: unknown) => {
      this.idOrderRead = undefined;
      throw error;
    });
    return this.idOrderRead;
  }

  async readPage(partition: TokenRange, after: RangeCursor | null, limits: PageLimits): Promise<Page<CassandraRowKey, RangeCursor>> {
    return this.reader.readPage(partition, after, limits, await this.idOrder());
  }

  /**
   * Every row the walk answers for, written or not, through the same ranges, cursors and resume
   * queries as `readPage`. Written means `from_jid` set (whatever its value: `verifyAnswer` judges it).
   */
  async scanPage(partition: TokenRange, after: RangeCursor | null, limits: PageLimits): Promise<ScanPage<CassandraRowKey, RangeCursor>> {
    return this.scanner.readPage(partition, after, limits, await this.idOrder());
  }

  decide(record: SourceRecord<CassandraRowKey>, answer: ExtractResult): Decision<FromJid> {
    if (record.key.withNick !== '') return { write: '' };
    return this.senderJid(answer);
  }

  private senderJid(answer: ExtractResult): Decision<FromJid> {
    const sender = senderOf(answer);
    if (!('write' in sender)) return sender;
    const bytes = Buffer.byteLength(sender.write.bareJid, 'utf8');
    if (bytes > MAX_FROM_JID_BYTES) {
      return { reason: 'jid_not_storable', detail: `JID of ${bytes} bytes: an indexed from_jid holds at most ${MAX_FROM_JID_BYTES}` };
    }
    return { write: sender.write.bareJid };
  }

  async writeBatch(_partition: TokenRange, writes: readonly PlannedWrite<CassandraRowKey, FromJid>[]): Promise<WriteOutcome<CassandraRowKey>> {
    const refused: NotWrittenRecord<CassandraRowKey>[] = [];
    // Rows whose statement completed: written whatever happens to the rest of the batch.
    let landed = 0;
    let transient: unknown = null;
    let storeWide: unknown = null;
    const groups = groupByCassandraPartition(writes);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < groups.length && transient === null && storeWide === null) {
        const group = groups[next++];
        try {
          await this.writeGroup(group);
          landed += group.length;
        } catch (error) {
          // A node that is down or slow fails the whole batch (retried from the last checkpoint).
          if (isTransientCassandraError(error)) {
            transient ??= error;
            return;
          }
          if (isStoreWideWriteError(error)) {
            storeWide ??= error;
            return;
          }
          // The node refused the group: row by row, so that only the rows it refuses are reported.
          for (const write of group) {
            try {
              await this.writeGroup([write]);
              landed++;
            } catch (rowError) {
              if (isTransientCassandraError(rowError)) {
                transient ??= rowError;
                return;
              }
              if (isStoreWideWriteError(rowError)) {
                storeWide ??= rowError;
                return;
              }
              refused.push({ key: write.key, reason: 'write_refused', detail: (rowError as Error).message });
            }
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(GROUPS_IN_FLIGHT_PER_BATCH, groups.length) }, worker));
    // The rows that landed are counted now: the retry's read passes over them (from_jid set).
    const failed = (error: unknown): unknown => (landed > 0 ? new PartlyWrittenError(landed, error) : error);
    if (transient !== null) throw failed(transient);
    // Thrown before the pipeline saves this batch's checkpoint: the next run starts here again.
    if (storeWide !== null) {
      throw failed(
        new StoreWideWriteError(
          `the node refuses every write to ${this.table}: ${(storeWide as Error).message.replace(/\s+/g, ' ')}; ` +
            `grant the role MODIFY on it (GRANT MODIFY ON TABLE ${this.table} TO <role>) and run the same command again ` +
            `(nothing more was written, this batch's checkpoint did not move)`,
        ),
      );
    }
    return { written: writes.length - refused.length, refused };
  }

  /** One row: a plain UPDATE; several rows of one partition: one unlogged batch, applied by the node as one mutation. */
  private async writeGroup(group: readonly PlannedWrite<CassandraRowKey, FromJid>[]): Promise<void> {
    const update = `UPDATE ${this.table} SET from_jid = ? WHERE room_jid = ? AND with_nick = ? AND id = ?`;
    const params = (w: PlannedWrite<CassandraRowKey, FromJid>): unknown[] => [w.write, w.key.roomJid, w.key.withNick, BigInt(w.key.id)];
    const options = { prepare: true, consistency: this.consistency, isIdempotent: true };
    if (group.length === 1) await this.client.execute(update, params(group[0]), options);
    else
      await this.client.batch(
        group.map((w) => ({ query: update, params: params(w) })),
        { ...options, logged: false },
      );
  }

  /**
   * Random `''` copies that have a sender: each try starts at a random token and takes one row
   * of the first page there, so the sample spreads over the ring (bounded tries, never a full scan).
   */
  async sampleForVerify(size: number): Promise<VerifySample<CassandraRowKey>[]> {
    const found = new Map<string, VerifySample<CassandraRowKey>>();
    const query = `SELECT room_jid, with_nick, id, from_jid, message FROM ${this.table} WHERE token(room_jid, with_nick) > ? LIMIT 200`;
    const maxTries = size * 4 + 10;
    for (let tries = 0; tries < maxTries && found.size < size; tries++) {
      const span = MAX_TOKEN - MIN_TOKEN;
      const start = MIN_TOKEN + (span * BigInt(Math.floor(this.random() * 1_000_000))) / 1_000_000n;
      const result = await this.client.execute(query, [start], { prepare: true, consistency: this.consistency, fetchSize: 200 });
      const candidates = result.rows.filter((r) => r['with_nick'] === '' && typeof r['from_jid'] === 'string' && r['from_jid'] !== '');
      if (candidates.length === 0) continue;
      const row = candidates[Math.floor(this.random() * candidates.length)];
      const key: CassandraRowKey = { roomJid: row['room_jid'] as string, withNick: '', id: String(row['id']) };
      found.set(`${key.roomJid}\u0000${key.id}`, { key, payload: (row['message'] as Buffer | null) ?? Buffer.alloc(0), stored: row['from_jid'] as string });
    }
    return [...found.values()];
  }

  verifyAnswer(sample: VerifySample<CassandraRowKey>, answer: ExtractResult): Mismatch | null {
    // A nick copy holds '' whatever its payload says (as MongooseIM 3.4 writes it).
    if (sample.key.withNick !== '') {
      return sample.stored === '' ? null : { kind: 'different_sender', detail: `from_jid of a nick copy is '${sample.stored}', MongooseIM 3.4 writes ''` };
    }
    const decision = this.senderJid(answer);
    if (!('write' in decision)) {
      return { kind: 'undecodable', detail: `from_jid is '${sample.stored}' but the payload gives no sender: ${decision.reason} (${decision.detail})` };
    }
    if (decision.write !== sample.stored) {
      return { kind: 'different_sender', detail: `from_jid is '${sample.stored}', the payload says '${decision.write}'` };
    }
    return null;
  }

  isTransient(error: unknown): boolean {
    return isTransientCassandraError(error);
  }

  async close(): Promise<void> {
    await this.client.shutdown();
  }
}
