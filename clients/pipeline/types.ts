/**
 * The contract between the shared migration pipeline and a database backend.
 *
 * A backend adds only what differs per database: its schema step, how to read one page of rows
 * still missing `sender_id`, how to resolve sender ids and write one batch together with the
 * checkpoint, a row estimate, and a sample for `verify`. Paging order, overlap, retries,
 * progress, checkpoints, rate limits and reports live once in the pipeline.
 */
import type { PayloadFormat } from '../../services/sidecar/decode/answer.js';
import type { ErrorCodeName, ExtractItem, ExtractResult, ExtractStream } from '../sidecar-client.js';

/** Primary key of `mam_muc_message`, as decimal strings: ids are 64-bit and must not lose precision. */
export interface RowKey {
  readonly roomId: string;
  readonly id: string;
}

/** One archived message whose `sender_id` is still NULL. */
export interface SourceRow {
  readonly key: RowKey;
  readonly payload: Uint8Array;
}

/** `--shard K/N`: this process handles the rows whose `room_id % N = K`. */
export interface ShardSpec {
  readonly index: number;
  readonly count: number;
}

export const WHOLE_TABLE: ShardSpec = Object.freeze({ index: 0, count: 1 });

/** Name of a shard's checkpoint row: `K/N`. */
export function shardName(shard: ShardSpec): string {
  return `${shard.index}/${shard.count}`;
}

/** A decoded, split sender for one row: the row will get the id of `(server, user)`. */
export interface SenderWrite {
  readonly key: RowKey;
  readonly user: string;
  readonly server: string;
}

export interface SchemaStatus {
  /** True when `sender_id` and its index exist. */
  readonly ready: boolean;
  /** What is missing, in words. */
  readonly missing: string[];
  /** The statements of the upgrade guide (storage reference §7) that would fix it. */
  readonly statements: string[];
}

export interface WriteOutcome {
  /** Rows whose `sender_id` this batch set (rows set meanwhile by someone else are not counted). */
  readonly written: number;
}

/** A row with `sender_id` set, joined with its `mam_server_user` row (null when that id is absent). */
export interface VerifySample {
  readonly key: RowKey;
  readonly payload: Uint8Array;
  readonly senderId: string;
  readonly user: string | null;
  readonly server: string | null;
}

export interface Backend {
  /** `postgres`, `mysql`, `mssql`: used in logs, report and checkpoint names. */
  readonly name: string;
  checkSchema(): Promise<SchemaStatus>;
  /** Runs the missing statements of `checkSchema()`; returns the statements run. */
  applySchema(): Promise<string[]>;
  /** Creates our own checkpoint table when missing (not MongooseIM's schema, so no flag needed). */
  ensureCheckpointTable(): Promise<void>;
  /** The last key committed for this shard, or null (also when the checkpoint table does not exist). */
  readCheckpoint(shard: ShardSpec): Promise<RowKey | null>;
  deleteCheckpoint(shard: ShardSpec): Promise<void>;
  /** A cheap estimate of the rows this shard still has to walk, for the progress bar's ETA. */
  estimateRows(shard: ShardSpec): Promise<number>;
  /** Up to `limit` rows with `sender_id IS NULL`, keys strictly after `after`, in `(room_id, id)` order. */
  readPage(after: RowKey | null, limit: number, shard: ShardSpec): Promise<SourceRow[]>;
  /**
   * Null when `(user, server)` can be stored in `mam_server_user`, else why not (too long for the
   * column, a character the column cannot hold). Checked before writing so that one bad JID
   * cannot fail a whole batch forever.
   */
  checkStorable(user: string, server: string): string | null;
  /**
   * Resolves every sender to its `mam_server_user` id (creating missing rows), then sets
   * `sender_id` where still NULL and stores `checkpoint` for `shard`, both in one transaction.
   * `beforeCommit` resolves when every earlier batch has committed: the checkpoint may never pass
   * an uncommitted batch, so the commit waits for it (the statements before it do not).
   */
  writeBatch(
    writes: readonly SenderWrite[],
    checkpoint: RowKey,
    shard: ShardSpec,
    beforeCommit: Promise<void>,
  ): Promise<WriteOutcome>;
  /** Up to `size` random rows with `sender_id` set, joined with their `mam_server_user` row. */
  sampleForVerify(size: number): Promise<VerifySample[]>;
  /** True for errors worth a retry after a pause: connection lost, server restarting, deadlock. */
  isTransient(error: unknown): boolean;
  close(): Promise<void>;
}

// The decoding stream is the sidecar client's (one definition of items, results and error codes);
// tests drive the same pipeline with an in-process adapter of the same shape.
export type { ErrorCodeName, ExtractItem, ExtractResult, ExtractStream };

/** Opens a fresh decoding stream (again after a failure). */
export type OpenExtractStream = (format: PayloadFormat) => ExtractStream | Promise<ExtractStream>;

/** Why a row was not written: a decoding failure, or a JID the column cannot store. */
export type NotWrittenReason = ErrorCodeName | 'jid_not_storable';
