/**
 * Cuts a batch of any size into requests the decoder accepts (at most maxItemsPerBatch items and
 * maxRequestBytes encoded bytes each) and joins their answers in the batch's order. The caller of
 * ExtractStream.extract() thinks in batches of its own choosing (a page, a verify sample); only
 * the client knows what the server at the other end takes.
 */
import type { Metadata } from '@grpc/grpc-js';
import { DEFAULT_REQUEST_LIMITS, requestLimitsFrom, type RequestLimits } from '../../services/sidecar/request-limits.js';
import type { ExtractItem, ExtractResult } from './types.js';

/** The answer for an item no request can hold (default: the sender's payload_too_large). */
export type TooLarge<R> = (key: string, detail: string) => R;

const senderTooLarge: TooLarge<ExtractResult> = (key, detail) => ({ key, ok: false, code: 'payload_too_large', detail });

/**
 * Encoded bytes an item may take at most in an ExtractSenderJidRequest: the item's own tag and
 * length (6), the payload's and the key's tag and length (6 each), the item format (2), and the
 * key's UTF-8 (at most 3 bytes per UTF-16 unit; keys are short, so the bound costs nothing).
 */
export function itemBytesBound(item: ExtractItem): number {
  return item.payload.byteLength + 3 * item.key.length + 20;
}

/** The request's own field (the batch format) besides its items. */
export const REQUEST_OVERHEAD_BYTES = 2;

/** One piece of a batch: a request to send, or an item answered here because no request can hold it. */
export type RequestPart<R = ExtractResult> = { readonly send: ExtractItem[] } | { readonly answer: R };

/**
 * The batch's items in order, in as few requests as the limits allow. An item too large for any
 * request on its own is answered here as payload_too_large (the server could not even receive
 * it; every payload smaller than that still goes to the decoder, whose own payload limit decides).
 */
export function planRequests<R = ExtractResult>(
  items: readonly ExtractItem[],
  limits: RequestLimits,
  tooLarge: TooLarge<R> = senderTooLarge as TooLarge<R>,
): RequestPart<R>[] {
  const parts: RequestPart<R>[] = [];
  const room = limits.maxRequestBytes - REQUEST_OVERHEAD_BYTES;
  let current: ExtractItem[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (current.length > 0) parts.push({ send: current });
    current = [];
    bytes = 0;
  };
  for (const item of items) {
    const size = itemBytesBound(item);
    if (size > room) {
      flush();
      parts.push({ answer: tooLarge(item.key, unsendable(item, limits)) });
      continue;
    }
    if (current.length >= limits.maxItemsPerBatch || bytes + size > room) flush();
    current.push(item);
    bytes += size;
  }
  flush();
  return parts;
}

function unsendable(item: ExtractItem, limits: RequestLimits): string {
  return `payload of ${item.payload.byteLength} bytes does not fit in one request of the decoder's max-request-bytes=${limits.maxRequestBytes} (--max-request-bytes)`;
}

/**
 * extract() of a batch of any size over `send`, which takes one request that fits the limits.
 * Requests are all asked at once (send bounds what is in flight) and answered in order.
 */
export async function extractInRequests<R = ExtractResult>(
  items: ExtractItem[],
  limits: RequestLimits,
  send: (request: ExtractItem[]) => Promise<R[]>,
  tooLarge: TooLarge<R> = senderTooLarge as TooLarge<R>,
): Promise<R[]> {
  if (items.length <= limits.maxItemsPerBatch) {
    // The common case, checked without allocating: a batch that fits goes as it is.
    let bytes = REQUEST_OVERHEAD_BYTES;
    for (const item of items) bytes += itemBytesBound(item);
    if (bytes <= limits.maxRequestBytes) return items.length === 0 ? [] : send(items);
  }
  const parts = planRequests(items, limits, tooLarge);
  const answers = await Promise.all(parts.map((part) => ('send' in part ? send(part.send) : [part.answer])));
  return answers.flat();
}

/**
 * The limits a sidecar announced in a call's initial metadata (services/sidecar/request-limits.ts).
 * A server that announces nothing (another implementation) is assumed to run the defaults; a
 * header that is present but not a whole number throws.
 */
export function announcedLimits(metadata: Metadata | null): RequestLimits {
  const first = (name: string): string | undefined => {
    const values = metadata?.get(name) ?? [];
    return values.length === 0 ? undefined : String(values[0]);
  };
  return requestLimitsFrom(first) ?? DEFAULT_REQUEST_LIMITS;
}
