/**
 * The two limits that decide how a client must cut its batches into requests, and how the server
 * tells them: as initial metadata (response headers) of every ExtractSenderJidStream and every
 * unary ExtractSenderJid, sent before any answer. No contract change: a client that ignores the
 * headers works as before, and one that reads them never sends a request the server must refuse.
 * Behind a load balancer each stream learns the limits of the sidecar that actually serves it;
 * a client balancing unary calls over several sidecars asks each of them and cuts to the
 * smallest (clients/decoder-client/sidecar-probe.ts, balanced-stream.ts).
 */
import { DEFAULT_MAX_ITEMS_PER_BATCH, DEFAULT_MAX_REQUEST_BYTES } from './config.js';

export interface RequestLimits {
  /** Items in one request (--max-items-per-batch); more: INVALID_ARGUMENT. */
  readonly maxItemsPerBatch: number;
  /** Bytes of one encoded request message (--max-request-bytes); more: RESOURCE_EXHAUSTED. */
  readonly maxRequestBytes: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = Object.freeze({
  maxItemsPerBatch: DEFAULT_MAX_ITEMS_PER_BATCH,
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
});

export const MAX_ITEMS_PER_BATCH_HEADER = 'mim-sender-jid-max-items-per-batch';
export const MAX_REQUEST_BYTES_HEADER = 'mim-sender-jid-max-request-bytes';

/** The headers a stream starts with. */
export function requestLimitsHeaders(limits: RequestLimits): [string, string][] {
  return [
    [MAX_ITEMS_PER_BATCH_HEADER, String(limits.maxItemsPerBatch)],
    [MAX_REQUEST_BYTES_HEADER, String(limits.maxRequestBytes)],
  ];
}

/**
 * The limits a server announced, or null when it announced none (another implementation, or a
 * proxy that drops unknown headers): the caller then assumes the defaults of config.ts. A header
 * present but not a whole number >= 1 is an error: guessing could send requests the server refuses.
 */
export function requestLimitsFrom(header: (name: string) => string | undefined): RequestLimits | null {
  const items = header(MAX_ITEMS_PER_BATCH_HEADER);
  const bytes = header(MAX_REQUEST_BYTES_HEADER);
  if (items === undefined && bytes === undefined) return null;
  return {
    maxItemsPerBatch: items === undefined ? DEFAULT_REQUEST_LIMITS.maxItemsPerBatch : wholeNumber(items, MAX_ITEMS_PER_BATCH_HEADER),
    maxRequestBytes: bytes === undefined ? DEFAULT_REQUEST_LIMITS.maxRequestBytes : wholeNumber(bytes, MAX_REQUEST_BYTES_HEADER),
  };
}

function wholeNumber(text: string, name: string): number {
  const value = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1)) throw new Error(`the sidecar sent ${name}: ${JSON.stringify(text)}, not a whole number >= 1`);
  return value;
}
