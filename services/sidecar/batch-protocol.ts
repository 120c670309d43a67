/**
 * What the server and a worker say to each other: one task per batch, one outcome per task.
 * Kept apart from worker.ts so that the main thread never loads the decoder.
 */
import type { DecodeLimits } from '../decode/index.js';

export interface WorkerSettings {
  readonly limits: DecodeLimits;
  readonly maxItemsPerBatch: number;
  /** Test hooks only (SidecarConfig.testHooks, never from flags or environment). */
  readonly crashWorkerOnKey: string | null;
  readonly stallWorkerOnKey: string | null;
  readonly stallMs: number;
}

export interface BatchTask {
  /** Holds the raw ExtractSenderJidRequest message at [offset, offset + length); transferred. */
  readonly request: ArrayBuffer;
  readonly offset: number;
  readonly length: number;
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

export type BatchOutcome = BatchAnswered | BatchRefused;
