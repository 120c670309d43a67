/**
 * What the server and a worker say to each other: one task per batch, one outcome per task.
 * Kept apart from worker.ts so that the main thread never loads the decoder.
 */
import type { DecodeLimits } from '../decode/index.js';

export interface WorkerSettings {
  readonly limits: DecodeLimits;
  readonly maxItemsPerBatch: number;
}

/** An encoded ExtractSenderJidRequest at [offset, offset + length) of memory the pool may take. */
export interface BatchBytes {
  readonly request: ArrayBuffer;
  readonly offset: number;
  readonly length: number;
}

/**
 * One worker task: the whole request (transferred), or a slice of its items (request-scan.ts)
 * copied into memory of its own. Either way an encoded ExtractSenderJidRequest whose items the
 * worker answers; the batch's format comes from the plan (a slice does not hold it).
 */
/** Which answer a batch asks for: the sender (ExtractSenderJid*) or the other columns (ExtractMessageFields). */
export type AnswerKind = 'sender' | 'fields';

export interface BatchTask extends BatchBytes {
  /** The RPC's answer (default: the sender); both requests have the same wire layout, so planning and limits are shared. */
  readonly answer?: AnswerKind;
  /** The batch's PayloadFormat (wire value), for items without a format of their own. */
  readonly batchFormat: number;
  /** Index in the whole request of the task's first item (for messages). */
  readonly firstItem: number;
  /** Items (task indices, ascending) over the request's inflation budget: answered PAYLOAD_TOO_LARGE undecoded. */
  readonly overBudget: readonly number[];
  /** The request's budget of inflated bytes (--max-request-decompressed-bytes), for the over-budget detail. */
  readonly budgetBytes: number;
  /** Shared flag: non-zero once the call is gone; the worker stops between items. Null: never cancelled. */
  readonly cancel: Int32Array | null;
}

/** Outcome names, in the order of BatchAnswered.outcomes; also the `outcome` label of the items metric. */
export const OUTCOMES = [
  'jid',
  'malformed',
  'not_groupchat',
  'payload_too_large',
  'jid_without_local_part',
  'jid_without_domain',
  'decoder_bug',
  // ExtractMessageFields: an item with at least one field answered (else malformed or payload_too_large).
  'fields',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface BatchAnswered {
  readonly kind: 'answered';
  /** The encoded ExtractSenderJidResponse (an exact-size buffer: structured clone copies all of it). */
  readonly response: Uint8Array;
  readonly items: number;
  /** Count of items per outcome, indexed as OUTCOMES. */
  readonly outcomes: number[];
  /** First decoder exception, if any (a bug in the decoder: the item is answered as malformed). */
  readonly decoderBug: string | null;
}

export interface BatchRefused {
  readonly kind: 'refused';
  /** The grpc status the whole call gets. */
  readonly status: 'INVALID_ARGUMENT';
  readonly message: string;
}

/** The call was cancelled while its task ran: the worker stopped early, nothing to answer. */
export interface BatchCancelled {
  readonly kind: 'cancelled';
}

export type BatchOutcome = BatchAnswered | BatchRefused | BatchCancelled;
