/**
 * What a decoding stream takes and gives, the same whichever way it decodes (in-process pool or
 * remote sidecar): the pipeline and the backends are written against these types only.
 */
import type { PayloadFormat } from '../../services/decode/index.js';

export type { PayloadFormat };

export interface ExtractItem {
  key: string;
  payload: Uint8Array;
  format?: PayloadFormat;
}

export type ErrorCodeName = 'malformed' | 'not_groupchat' | 'payload_too_large' | 'jid_without_local_part' | 'jid_without_domain';

export type ExtractResult =
  { key: string; ok: true; bareJid: string; user: string; server: string } | { key: string; ok: false; code: ErrorCodeName; detail: string };

/** Which answers a stream gives: the sender (ExtractSenderJid) or the message's other columns (ExtractMessageFields). */
export type AnswerKind = 'sender' | 'fields';

/** Why one field of a message has no answer (the decoder's two failures for the other columns). */
export type FieldErrorCode = 'malformed' | 'payload_too_large';

/** One column's answer: its value, or why the payload gives none. */
export type FieldAnswer<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: FieldErrorCode; readonly detail: string };

/**
 * ExtractMessageFields' answer for one item: `originId` is the id MongooseIM would store, or null
 * (it stores NULL); `isGroupchat` whether the message's type is `groupchat`.
 */
export interface FieldsResult {
  readonly key: string;
  readonly originId: FieldAnswer<string | null>;
  readonly isGroupchat: FieldAnswer<boolean>;
}

/** `R`: the answer of one item, `ExtractResult` (the sender) or `FieldsResult` (the other columns). */
export interface ExtractStream<R extends { readonly key: string } = ExtractResult> {
  /**
   * Resolves with one result per item, in the items' order. A batch of any size is accepted: it
   * is cut into requests that fit the decoder's limits (items and bytes per request), and their
   * answers are joined in order. Waits for capacity when maxInFlightBatches requests are unanswered.
   * A failure of the stream (a grpc ServiceError, or the same `.code`/`.details` in-process) rejects
   * this and every later call; open a new stream to go on.
   */
  extract(items: ExtractItem[]): Promise<R[]>;
  /** Waits for every extract() asked before it; rejects with the stream's failure, if any. */
  end(): Promise<void>;
}
