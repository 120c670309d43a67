/**
 * ExtractSenderJid's batch task without per-item objects: the request's items are found by one
 * pass over the protobuf framing (offsets into a reused Int32Array, no Item objects, no key
 * strings), and the response is written as bytes into one reused buffer, the key's bytes copied
 * from the request and each sender's encoded SenderJid kept for the JIDs seen last.
 *
 * Why: under load the decoding threads share two cores with the server and its clients, and
 * beside inflating, a thread's other per-item work (an Item object, a key string decoded and
 * encoded again, a Result object, protobuf-es's writer with a fork per message) is CPU the
 * decoder does not get (bench/README.md).
 *
 * Parity: the answer must be byte for byte what the generated code answers (worker.ts's general
 * path). So this path takes only requests in the plain layout: the fields of the contract with
 * their own wire types, lengths that fit, ASCII keys, formats given in one byte, at most
 * MAX_OWN_PATH_ITEMS items.
 * Anything else (unknown fields, a cut message, a key that is not ASCII, whose bytes protobuf-es
 * would decode and encode again) returns null before any item is decoded, and the general path
 * answers it as it always did. Failures are rare: their bytes come from the generated encoder.
 */
import { extractSenderJid, splitBareJid, type PayloadFormat as DecodeFormat } from '../decode/index.js';
import type { BatchOutcome, BatchTask, Outcome, WorkerSettings } from './batch-protocol.js';
import { OUTCOMES } from './batch-protocol.js';
import { ErrorCode, PayloadFormat, Result } from './gen/mongooseim/mam/v1/sender_jid.js';

/** Shared with worker.ts's general path, so both count and answer failures alike. */
export const OUTCOME_INDEX = Object.fromEntries(OUTCOMES.map((name, i) => [name, i])) as Record<Outcome, number>;

export const FAILURE_CODE = {
  malformed: ErrorCode.ERROR_CODE_MALFORMED,
  not_groupchat: ErrorCode.ERROR_CODE_NOT_GROUPCHAT,
  payload_too_large: ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE,
  jid_without_local_part: ErrorCode.ERROR_CODE_JID_WITHOUT_LOCAL_PART,
  jid_without_domain: ErrorCode.ERROR_CODE_JID_WITHOUT_DOMAIN,
} as const;

/**
 * Items this path takes in one task; a larger task goes through the generated code. The path's
 * memory is typed arrays, which the worker's heap limit (--worker-max-heap-mb) does not count: a
 * task of millions of items is left to the path whose objects that limit does bound.
 */
export const MAX_OWN_PATH_ITEMS = 16_384;
/** Per item in `spans`: payload start, payload end, key start, key end, format (wire value). */
const SPAN = 5;
let spans = new Int32Array(SPAN * 1024);
const OUTPUT_BYTES = 64 * 1024;
/** An output buffer grown past this for one large answer is not kept for the next. */
const OUTPUT_KEPT_BYTES = 1024 * 1024;
let out = new Uint8Array(OUTPUT_BYTES);

const ASCII = new TextDecoder();

/** Encoded `jid` fields (tag, length, SenderJid) of recent senders; the decoder hands back the same string for a repeated sender. */
const JID_FIELDS = 4096;
const jidFields = new Map<string, Uint8Array>();

/** The decoder's format for a wire format known to be one of the four (the layout check made sure). */
function decodeFormatOf(format: number): DecodeFormat {
  return format === PayloadFormat.PAYLOAD_FORMAT_ETERM ? 'eterm' : format === PayloadFormat.PAYLOAD_FORMAT_XML ? 'xml' : 'auto';
}

function knownFormat(format: number): boolean {
  return (
    format === PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED ||
    format === PayloadFormat.PAYLOAD_FORMAT_ETERM ||
    format === PayloadFormat.PAYLOAD_FORMAT_XML ||
    format === PayloadFormat.PAYLOAD_FORMAT_AUTO
  );
}

/** A length prefix of up to 4 bytes at b[pos] (under 256 MiB): the value, or -1; `varintEnd` says where it ended. */
let varintEnd = 0;
function length32(b: Uint8Array, pos: number, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) return -1;
    const byte = b[pos++] as number;
    value |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      varintEnd = pos;
      return value;
    }
  }
  return -1;
}

/**
 * Finds the items of a plain-layout request in b[start, end) and records their spans.
 * @returns the item count, or -1 when the request is not in the plain layout.
 */
function scan(b: Uint8Array, start: number, end: number, maxItems: number): number {
  let pos = start;
  let count = 0;
  while (pos < end) {
    const tag = b[pos++] as number;
    if (tag === 8) {
      // The batch's format: the task carries it (from the plan); one byte, as every known value is.
      if (pos >= end || (b[pos] as number) >= 0x80) return -1;
      pos++;
      continue;
    }
    if (tag !== 18) return -1;
    const length = length32(b, pos, end);
    if (length < 0 || length > end - varintEnd) return -1;
    const itemEnd = varintEnd + length;
    pos = varintEnd;
    if (count >= maxItems || count >= MAX_OWN_PATH_ITEMS) return -1;
    if (spans.length < (count + 1) * SPAN) {
      const grown = new Int32Array(spans.length * 2);
      grown.set(spans);
      spans = grown;
    }
    let payloadStart = pos;
    let payloadEnd = pos;
    let keyStart = pos;
    let keyEnd = pos;
    let format = 0;
    while (pos < itemEnd) {
      const itemTag = b[pos++] as number;
      if (itemTag === 24) {
        if (pos >= itemEnd) return -1;
        format = b[pos++] as number;
        if (format >= 0x80 || !knownFormat(format)) return -1;
        continue;
      }
      if (itemTag !== 10 && itemTag !== 18) return -1;
      const fieldLength = length32(b, pos, itemEnd);
      if (fieldLength < 0 || fieldLength > itemEnd - varintEnd) return -1;
      const from = varintEnd;
      const to = from + fieldLength;
      if (itemTag === 10) {
        payloadStart = from;
        payloadEnd = to;
      } else {
        for (let i = from; i < to; i++) if ((b[i] as number) >= 0x80) return -1;
        keyStart = from;
        keyEnd = to;
      }
      pos = to;
    }
    const at = count * SPAN;
    spans[at] = payloadStart;
    spans[at + 1] = payloadEnd;
    spans[at + 2] = keyStart;
    spans[at + 3] = keyEnd;
    spans[at + 4] = format;
    count++;
  }
  return count;
}

/** Makes room for `bytes` more bytes at `used` in the output buffer. */
function reserve(used: number, bytes: number): void {
  if (used + bytes <= out.length) return;
  let size = out.length * 2;
  while (size < used + bytes) size *= 2;
  const grown = new Uint8Array(size);
  grown.set(out.subarray(0, used));
  out = grown;
}

function writeVarint(at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[at++] = value;
  return at;
}

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/** A Result without its key, encoded by the generated code: the `jid` or `error` field's bytes. */
function resultTail(result: Omit<Result, 'key'>): Uint8Array {
  return Result.encode({ key: '', ...result }).finish();
}

function jidField(bareJid: string, user: string, server: string): Uint8Array {
  if (jidFields.size >= JID_FIELDS) jidFields.clear();
  const field = resultTail({ jid: { bareJid, user, server }, error: undefined });
  jidFields.set(bareJid, field);
  return field;
}

/**
 * The task answered from the request bytes, or null when the request is not in the plain layout:
 * the caller then takes the general path, which answers it as before.
 */
export function answerSenderBatch(task: BatchTask, options: WorkerSettings): BatchOutcome | null {
  const b = new Uint8Array(task.request, task.offset, task.length);
  const count = scan(b, 0, b.length, options.maxItemsPerBatch);
  if (count < 0) return null;
  const batchFormat = task.batchFormat;
  if (!knownFormat(batchFormat)) return null;
  const cancel = task.cancel;
  const outcomes = new Array<number>(OUTCOMES.length).fill(0);
  let decoderBug: string | null = null;
  let nextOverBudget = 0;
  let used = 0;
  for (let i = 0; i < count; i++) {
    if (cancel !== null && Atomics.load(cancel, 0) !== 0) return { kind: 'cancelled' };
    const at = i * SPAN;
    const keyStart = spans[at + 2] as number;
    const keyEnd = spans[at + 3] as number;
    const itemFormat = spans[at + 4] as number;
    const format = decodeFormatOf(itemFormat === PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED ? batchFormat : itemFormat);
    let outcome: Outcome;
    let tail: Uint8Array;
    if (task.overBudget[nextOverBudget] === i) {
      nextOverBudget++;
      outcome = 'payload_too_large';
      tail = resultTail({
        jid: undefined,
        error: {
          code: ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE,
          detail: `compressed term not inflated: with the items before it the request would inflate to more than ${task.budgetBytes} bytes (--max-request-decompressed-bytes)`,
        },
      });
    } else {
      try {
        const answer = extractSenderJid(b.subarray(spans[at] as number, spans[at + 1] as number), format, options.limits);
        const known = 'jid' in answer ? jidFields.get(answer.jid) : undefined;
        if (known !== undefined) {
          // Only a JID that split well is kept: the same JID splits the same way again.
          outcome = 'jid';
          tail = known;
        } else if ('jid' in answer) {
          const split = splitBareJid(answer.jid);
          if ('reason' in split) {
            outcome = split.reason;
            tail = resultTail({ jid: undefined, error: { code: FAILURE_CODE[split.reason], detail: split.detail } });
          } else {
            outcome = 'jid';
            tail = jidField(answer.jid, split.user, split.server);
          }
        } else {
          outcome = answer.reason;
          tail = resultTail({ jid: undefined, error: { code: FAILURE_CODE[answer.reason], detail: answer.detail } });
        }
      } catch (error) {
        // As the general path: an exception is a bug in the decoder; the item is answered malformed.
        const message = error instanceof Error ? error.message : String(error);
        const key = ASCII.decode(b.subarray(keyStart, keyEnd));
        decoderBug ??= `item ${i} (key ${JSON.stringify(key)}): ${message}`;
        outcome = 'decoder_bug';
        tail = resultTail({ jid: undefined, error: { code: ErrorCode.ERROR_CODE_MALFORMED, detail: `internal decoder error: ${message}` } });
      }
    }
    outcomes[OUTCOME_INDEX[outcome]]++;
    const keyLength = keyEnd - keyStart;
    const keyPart = keyLength === 0 ? 0 : 1 + varintSize(keyLength) + keyLength;
    const resultLength = keyPart + tail.length;
    reserve(used, 1 + varintSize(resultLength) + resultLength);
    out[used++] = 10; // ExtractSenderJidResponse.results
    used = writeVarint(used, resultLength);
    if (keyLength !== 0) {
      out[used++] = 10; // Result.key
      used = writeVarint(used, keyLength);
      out.set(b.subarray(keyStart, keyEnd), used);
      used += keyLength;
    }
    out.set(tail, used);
    used += tail.length;
  }
  // Exact size: structured clone copies the whole of a view's memory.
  const response = out.slice(0, used);
  if (out.length > OUTPUT_KEPT_BYTES) out = new Uint8Array(OUTPUT_BYTES);
  return { kind: 'answered', response, items: count, outcomes, decoderBug };
}
