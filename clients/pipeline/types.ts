/**
 * The seam between the pipeline (written once: partitions, paging, overlap, ordering, retries,
 * progress, checkpoints, reports, dry run, verify) and a backend (only what differs per store).
 *
 * A backend is generic over four types of its own:
 * - `Key`: what names one record (SQL `{roomId, id}`, Cassandra `(room_jid, with_nick, id)`,
 *   Elasticsearch `_id`, Riak bucket + key);
 * - `Cursor`: a position inside one partition, after which the walk continues (a keyset key, a
 *   token, a search cursor, a listing position);
 * - `Write`: what one record gets written (SQL `{user, server}`, Cassandra/ES the bare JID, Riak
 *   `mam_type` + `msg_owner_jid`);
 * - `Part`: its partition (SQL the shard, Cassandra a token range, Elasticsearch a `mam_id` range,
 *   Riak a bucket): what `partitions()` returns is what every other method receives back, so a
 *   backend never rebuilds its partition from the name.
 * The pipeline never looks inside any of them.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import type { AnswerKind, ErrorCodeName, ExtractItem, ExtractResult, ExtractStream, FieldAnswer, FieldsResult } from '../decoder-client/types.js';

// The decoding stream is the decoder client's (one definition of items, results and error codes).
export type { AnswerKind, ErrorCodeName, ExtractItem, ExtractResult, ExtractStream, FieldAnswer, FieldsResult };

/** Any decoding answer: the pipeline reads only its key (the backend's `decide` reads the rest). */
export interface AnyAnswer {
  readonly key: string;
}

/** Opens a fresh decoding stream (again after a failure), of the answers the backend decides on (`Backend.answers`). */
export type OpenExtractStream = (format: PayloadFormat) => ExtractStream<AnyAnswer> | Promise<ExtractStream<AnyAnswer>>;

/** `--shard K/N`: this process handles a disjoint 1/N of the partitions (for SQL: `room_id % N = K`). */
export interface ShardSpec {
  readonly index: number;
  readonly count: number;
}

export const WHOLE_TABLE: ShardSpec = Object.freeze({ index: 0, count: 1 });

/** Name of a shard: `K/N`. */
export function shardName(shard: ShardSpec): string {
  return `${shard.index}/${shard.count}`;
}

/**
 * Why a record was not written: a decoding failure (the decoder's error codes), a JID the store
 * cannot hold, a value the store cannot hold (`--field` walks: an origin-id longer than the column),
 * or a write the store refused for that one record (not retried).
 */
export type NotWrittenReason = ErrorCodeName | 'jid_not_storable' | 'write_refused' | 'value_not_storable';

/**
 * One part of the data, walked in order by one walker at a time; several partitions are walked
 * concurrently. Its `name` is stable across runs: checkpoints and logs use it.
 */
export interface Partition {
  readonly name: string;
}

export interface SourceRecord<Key> {
  readonly key: Key;
  readonly payload: Uint8Array;
}

export interface Page<Key, Cursor> {
  /** Records that still need their write (a backend that cannot filter in the query filters here). */
  readonly records: readonly SourceRecord<Key>[];
  /**
   * Where the next page starts; also the checkpoint once this page's batch is written. Null only
   * on an empty last page of a partition that was never walked (nothing to write, nothing to keep).
   */
  readonly cursor: Cursor | null;
  /** True when nothing is left after `cursor` in this partition. */
  readonly end: boolean;
}

/** How much one page may hold: a page stops at whichever limit it reaches first. */
export interface PageLimits {
  readonly records: number;
  readonly bytes: number;
}

/**
 * The backend's verdict on one decoding answer: write it, or report why not; or, for a walk of
 * several columns whose answer one column cannot take (an origin_id too long for its column beside
 * an is_groupchat to write), both: `write` is written and the record is reported for the rest
 * (`partly`), counted as reported, not written. A backend's `writeBatch` then leaves such records
 * out of `written` and never lists them in `refused`.
 */
export type Decision<Write> =
  | { readonly write: Write }
  | { readonly reason: NotWrittenReason; readonly detail: string }
  | { readonly write: Write; readonly partly: { readonly reason: NotWrittenReason; readonly detail: string } };

export interface NotWrittenRecord<Key> {
  readonly key: Key;
  readonly reason: NotWrittenReason;
  readonly detail: string;
}

export interface PlannedWrite<Key, Write> {
  readonly key: Key;
  readonly write: Write;
}

export interface WriteOutcome<Key> {
  /** Records this batch changed (records changed meanwhile by someone else are not counted). */
  readonly written: number;
  /** Records the store refused one by one (never retried): reported. */
  readonly refused?: readonly NotWrittenRecord<Key>[];
}

/**
 * Thrown by a `writeBatch` that fails after part of its batch landed (a bulk request that gave up
 * on its last items, statements that completed before one failed): the pipeline counts `written`
 * records as written, then handles `causeError` as the failure (a transient one is retried). Those
 * records are not met again: the retry's reads pass over what has its write.
 */
export class PartlyWrittenError extends Error {
  constructor(
    readonly written: number,
    readonly causeError: unknown,
  ) {
    super(causeError instanceof Error ? causeError.message : String(causeError));
    this.name = 'PartlyWrittenError';
  }
}

export interface SchemaStatus {
  /** True when everything the backfill writes exists. */
  readonly ready: boolean;
  /** What is missing, in words. */
  readonly missing: string[];
  /** The upgrade guide's statements (or requests) that would fix it. */
  readonly statements: string[];
  /** Which guide they come from, when not the 3.3.0 -> 3.4.0 one (the sender's). */
  readonly guide?: string;
}

/**
 * Where a partition's place is kept:
 * - `in-write`: the backend stores `cursor` inside the batch's own transaction (`writeBatch`
 *   receives it and must commit both together, after `earlierCommitted` resolved);
 * - `after-write`: the pipeline calls `saveCheckpoint` once the batch and every earlier batch of
 *   the partition are written (writes are idempotent, so a batch written twice is harmless);
 * - `none`: the data itself says what is done (records already written are not read again).
 */
export type CheckpointMode = 'in-write' | 'after-write' | 'none';

/** One sampled record for `verify`: its payload and what the store holds for it. */
export interface VerifySample<Key> {
  readonly key: Key;
  readonly payload: Uint8Array;
  /** What the store holds, in words, for mismatch lines. */
  readonly stored: string;
}

/**
 * What `verify` finds wrong with a record that has its write, in the same words for every backend
 * (the `kind` of its JSON lines, also for `verify --complete`'s `written_wrong` class):
 * - `different_sender`: the store holds another sender than the payload names (Riak: another
 *   `mam_type`/`msg_owner_jid` than the packet gives; Cassandra: a nick copy that is not `''`);
 * - `undecodable`: the store holds a sender, but the payload gives none that could be written (it
 *   does not decode, or its JID is one the store cannot hold);
 * - `sender_row_missing` (SQL): `sender_id` names no `mam_server_user` row;
 * - `different_value` (the `--field` walks): the column holds another value than the payload gives
 *   (an origin_id still NULL, or another id; is_groupchat false for a groupchat message).
 */
export type MismatchKind = 'different_sender' | 'undecodable' | 'sender_row_missing' | 'different_value';

export const MISMATCH_KINDS: readonly MismatchKind[] = ['different_sender', 'undecodable', 'sender_row_missing', 'different_value'];

export interface Mismatch {
  readonly kind: MismatchKind;
  readonly detail: string;
}

/**
 * One record as `verify --complete` walks it: every record of a partition, written or not. A
 * written record carries what the store holds (the backend's own `VerifySample`, as
 * `sampleForVerify` returns it, so that `verifyAnswer` judges it); an unwritten one only its key
 * and payload (`stored` is then the empty string).
 */
export type ScannedRecord<Key> = VerifySample<Key> & { readonly written: boolean };

export interface ScanPage<Key, Cursor> {
  /** Every record after the cursor, written or not, in the walk's own order. */
  readonly records: readonly ScannedRecord<Key>[];
  readonly cursor: Cursor | null;
  readonly end: boolean;
}

/**
 * What the store says still lacks its write in one shard, for the end-of-run accounting: the
 * keys (at most `max`), and whether that is all of them.
 */
export interface UnwrittenKeys<Key> {
  readonly keys: readonly Key[];
  /** False when the store holds more than `max` such records (only the first `max` are listed). */
  readonly complete: boolean;
}

export interface Backend<Key = unknown, Cursor = unknown, Write = unknown, Part extends Partition = Partition, Answer extends AnyAnswer = ExtractResult> {
  /** `postgres`, `cassandra`, ...: logs, report and checkpoint names. */
  readonly name: string;
  /**
   * The decoding answers `decide` and `verifyAnswer` take: the sender (`ExtractResult`, the
   * default) or the message's other columns (`fields`: `FieldsResult`, the `--field` walks).
   */
  readonly answers?: AnswerKind;
  /** The payload format this store keeps unless told otherwise (`--format`). */
  readonly defaultFormat: PayloadFormat;
  readonly checkpointMode: CheckpointMode;

  /** The key's own field names and values, for report lines, logs and `verify` output. */
  describeKey(key: Key): Record<string, string>;
  /** A cursor in words, for the "resuming ... after ..." log line. */
  describeCursor(cursor: Cursor): string;

  checkSchema(): Promise<SchemaStatus>;
  /** Runs what `checkSchema()` found missing; returns what it ran. */
  applySchema(): Promise<string[]>;

  /** This shard's partitions, the same names on every run. */
  partitions(shard: ShardSpec): Promise<Part[]>;
  /**
   * Optional: claims `shard` for this process until `close()`, without waiting, and throws a
   * plain message when another process holds it (two processes writing the same records only race
   * each other; the SQL backends use a session-level lock of the database). The pipeline calls it
   * right after `partitions()`, except in a dry run (which writes nothing).
   */
  acquireShard?(shard: ShardSpec): Promise<void>;
  /** Creates the backend's own checkpoint store when missing (not MongooseIM's schema). */
  prepareCheckpoints?(): Promise<void>;
  /** The partition's saved place, or null (also when the store has none yet). */
  readCheckpoint?(partition: Part): Promise<Cursor | null>;
  /** `after-write` only. */
  saveCheckpoint?(partition: Part, cursor: Cursor): Promise<void>;
  deleteCheckpoint?(partition: Part): Promise<void>;
  /** A cheap estimate of the records these partitions still hold, for the progress line (0: unknown). */
  estimate(partitions: readonly Part[]): Promise<number>;

  readPage(partition: Part, after: Cursor | null, limits: PageLimits): Promise<Page<Key, Cursor>>;
  /** What to write for one answer, or why not (the store's rules: a JID too long, `-2` for Riak, ...). */
  decide(record: SourceRecord<Key>, answer: Answer): Decision<Write>;
  /**
   * Writes one batch (possibly empty: the cursor still advances). `earlierCommitted` resolves
   * when every earlier batch of this partition is written; a backend with `in-write` checkpoints
   * commits only after it, and stores `cursor` in the same transaction. What it returns is
   * counted at once, even if an earlier batch then fails; a write that fails after part of the
   * batch landed throws `PartlyWrittenError`. Either way a record counted here must be passed
   * over by later reads (it has its write), or it would be counted again.
   */
  writeBatch(partition: Part, writes: readonly PlannedWrite<Key, Write>[], cursor: Cursor, earlierCommitted: Promise<void>): Promise<WriteOutcome<Key>>;

  /** Up to `size` random records that already have their write, with what the store holds. */
  sampleForVerify(size: number): Promise<VerifySample<Key>[]>;
  /** Null when the stored value is what `answer` says it should be, else the mismatch. */
  verifyAnswer(sample: VerifySample<Key>, answer: Answer): Promise<Mismatch | null> | Mismatch | null;

  /**
   * `verify --complete`: one page of every record of the partition, written or not, from the
   * same partitions and cursors as the walk (a record the walk would visit is visited here).
   */
  scanPage?(partition: Part, after: Cursor | null, limits: PageLimits): Promise<ScanPage<Key, Cursor>>;

  /**
   * The end-of-run accounting: the records of `shard` that still lack their write, listed by a
   * query the store serves cheaply (an index: SQL's `sender_id IS NULL`, a search's
   * `must_not exists`). Absent where only a full scan could say (Cassandra, Riak); the summary
   * then says so and points at `verify --complete`.
   */
  unwrittenKeys?(shard: ShardSpec, max: number): Promise<UnwrittenKeys<Key>>;
  /** Why `unwrittenKeys` is absent, in words for the summary (e.g. "counting is a full scan in Cassandra"). */
  readonly noAccountingReason?: string;

  /** True for errors worth a retry after a pause: connection lost, node restarting, overloaded. */
  isTransient(error: unknown): boolean;
  close(): Promise<void>;
}

/** A backend of any key, cursor, write and partition types (what the CLI and the pipeline hold). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyBackend = Backend<any, any, any, any, any>;
