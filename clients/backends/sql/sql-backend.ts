/**
 * What the three SQL backends (PostgreSQL, MySQL/MariaDB, MSSQL) share on the generic seam: the
 * key is the primary key `(room_id, id)`, the cursor is the last key committed, one partition per
 * `--shard K/N` (`room_id % N = K`) walked as one keyset, the checkpoint committed in the batch's
 * own transaction, and a sender written as the id of its `mam_server_user` row. A dialect supplies
 * the statements and the driver.
 */
import { senderOf, type Sender } from '../../pipeline/decisions.js';
import {
  shardName,
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

/** Primary key of `mam_muc_message`, as decimal strings: ids are 64-bit and must not lose precision. */
export interface RowKey {
  readonly roomId: string;
  readonly id: string;
}

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

export abstract class SqlBackend implements Backend<RowKey, RowKey, Sender> {
  abstract readonly name: string;
  readonly defaultFormat = 'eterm' as const;
  readonly checkpointMode = 'in-write' as const;

  abstract checkSchema(): Promise<SchemaStatus>;
  abstract applySchema(): Promise<string[]>;
  abstract prepareCheckpoints(): Promise<void>;
  /** The last key committed for this shard, or null (also when the checkpoint table does not exist). */
  protected abstract readShardCheckpoint(shard: ShardSpec): Promise<RowKey | null>;
  protected abstract deleteShardCheckpoint(shard: ShardSpec): Promise<void>;
  /** A cheap estimate of the rows this shard still has to walk. */
  protected abstract estimateRows(shard: ShardSpec): Promise<number>;
  /** Up to `limit` rows with `sender_id IS NULL`, keys strictly after `after`, in `(room_id, id)` order. */
  protected abstract readRows(after: RowKey | null, limit: number, shard: ShardSpec): Promise<SourceRow[]>;
  /** Null when `(user, server)` fits `mam_server_user`, else why not (checked before writing, so one bad JID cannot fail a batch forever). */
  abstract checkStorable(user: string, server: string): string | null;
  /**
   * Resolves every sender to its `mam_server_user` id (creating missing rows), then sets
   * `sender_id` where still NULL and stores `checkpoint` for `shard`, both in one transaction,
   * committed only after `beforeCommit` (every earlier batch committed) resolves.
   */
  protected abstract writeRows(writes: readonly SenderWrite[], checkpoint: RowKey, shard: ShardSpec, beforeCommit: Promise<void>): Promise<{ written: number }>;
  abstract sampleForVerify(size: number): Promise<SqlVerifySample[]>;
  abstract isTransient(error: unknown): boolean;
  abstract close(): Promise<void>;

  describeKey(key: RowKey): Record<string, string> {
    return { room_id: key.roomId, id: key.id };
  }

  describeCursor(key: RowKey): string {
    return `(room_id ${key.roomId}, id ${key.id})`;
  }

  async partitions(shard: ShardSpec): Promise<SqlPartition[]> {
    return [{ name: shardName(shard), shard }];
  }

  readCheckpoint(partition: SqlPartition): Promise<RowKey | null> {
    return this.readShardCheckpoint(partition.shard);
  }

  deleteCheckpoint(partition: SqlPartition): Promise<void> {
    return this.deleteShardCheckpoint(partition.shard);
  }

  async estimate(partitions: readonly SqlPartition[]): Promise<number> {
    let total = 0;
    for (const p of partitions) total += await this.estimateRows(p.shard);
    return total;
  }

  async readPage(partition: SqlPartition, after: RowKey | null, limits: PageLimits): Promise<Page<RowKey, RowKey>> {
    const rows = await this.readRows(after, limits.rows, partition.shard);
    // A short page is the last: the query asked for `limits.rows`.
    return { records: rows, cursor: rows.length > 0 ? rows[rows.length - 1].key : after, end: rows.length < limits.rows };
  }

  decide(_record: SourceRow, answer: ExtractResult): Decision<Sender> {
    const decision = senderOf(answer);
    if (!('write' in decision)) return decision;
    const { user, server, bareJid } = decision.write;
    const unstorable = this.checkStorable(user, server);
    return unstorable === null ? decision : { reason: 'jid_not_storable', detail: `JID '${bareJid}': ${unstorable}` };
  }

  async writeBatch(
    partition: SqlPartition,
    writes: readonly PlannedWrite<RowKey, Sender>[],
    cursor: RowKey,
    earlierCommitted: Promise<void>,
  ): Promise<WriteOutcome<RowKey>> {
    const rows = writes.map((w) => ({ key: w.key, user: w.write.user, server: w.write.server }));
    return this.writeRows(rows, cursor, partition.shard, earlierCommitted);
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
}

/** `stored` of a verify sample: what `sender_id` points at, in words. */
export function describeStoredSender(senderId: string, user: string | null, server: string | null): string {
  return user === null || server === null ? `sender_id ${senderId} (no mam_server_user row)` : `sender_id ${senderId} = ${user}@${server}`;
}

export function sqlVerifySample(key: RowKey, payload: Uint8Array, senderId: string, user: string | null, server: string | null): SqlVerifySample {
  return { key, payload, senderId, user, server, stored: describeStoredSender(senderId, user, server) };
}
