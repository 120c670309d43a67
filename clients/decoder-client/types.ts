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

export interface ExtractStream {
  /**
   * Resolves with one result per item, in the items' order. A batch of any size is accepted: it
   * is cut into requests that fit the decoder's limits (items and bytes per request), and their
   * answers are joined in order. Waits for capacity when maxInFlightBatches requests are unanswered.
   * A failure of the stream (a grpc ServiceError, or the same `.code`/`.details` in-process) rejects
   * this and every later call; open a new stream to go on.
   */
  extract(items: ExtractItem[]): Promise<ExtractResult[]>;
  /** Waits for every extract() asked before it; rejects with the stream's failure, if any. */
  end(): Promise<void>;
}
