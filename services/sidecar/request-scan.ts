/**
 * A look at a request's protobuf framing before anything is decoded, on the main thread: field
 * tags and lengths only, never a payload's contents beyond its first six bytes. It costs one pass
 * over the tags of at most max-items-per-batch + 1 items, whatever the request holds, and gives:
 *
 * - the item count, so that a request over --max-items-per-batch is refused at once (the scan
 *   stops at the first item over the limit: 33 million empty items cost 10,001 steps, not a
 *   worker's heap);
 * - a refusal of what no worker would accept (broken framing, an unknown PayloadFormat);
 * - the per-request budget of inflated bytes (--max-request-decompressed-bytes): every compressed
 *   term declares its inflated size in its header and the decoder never inflates past it, so
 *   the sum of the declared sizes bounds the request's inflation; items that would go over it
 *   are answered PAYLOAD_TOO_LARGE without being inflated;
 * - a cut of the request into worker tasks of about --task-slice-bytes of work each (payload
 *   bytes plus declared inflated bytes), so that one heavy request is many short tasks and the
 *   calls of other callers get workers between them.
 */
import { PayloadFormat } from './gen/mongooseim/mam/v1/sender_jid.js';

export interface PlanSettings {
  readonly maxItemsPerBatch: number;
  readonly maxPayloadBytes: number;
  readonly maxDecompressedBytes: number;
  /** Sum of declared inflated sizes allowed in one request. */
  readonly maxRequestDecompressedBytes: number;
  /** Work (payload bytes + declared inflated bytes + a fixed cost per item) of one worker task. */
  readonly taskSliceBytes: number;
}

/** What an item costs beyond its bytes (protobuf objects, a result), in the same unit. */
export const ITEM_OVERHEAD_BYTES = 256;

/** A run of items given to one worker task. */
export interface PlannedTask {
  /** Index of the task's first item in the request. */
  readonly firstItem: number;
  readonly itemCount: number;
  /** Byte ranges [start, end) of the request holding the task's item records (tag, length, body), in order. */
  readonly ranges: readonly (readonly [number, number])[];
  /** Items (indices within the task) over the request's inflation budget: answered without decoding. */
  readonly overBudget: readonly number[];
}

export type Plan =
  | { readonly ok: true; readonly itemCount: number; readonly batchFormat: number; readonly tasks: readonly PlannedTask[] }
  | { readonly ok: false; readonly message: string };

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_SGROUP = 3;
const WIRE_EGROUP = 4;
const WIRE_I32 = 5;

class Malformed extends Error {}

/** A cursor over protobuf wire format; throws Malformed on anything a protobuf reader would refuse. */
class Wire {
  pos: number;
  /** Low 32 bits of the last varint, as protobuf's int32 reads them. */
  low32 = 0;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** Reads a varint; returns its value as a number (exact up to 2^53) and sets low32. */
  varint(): number {
    let value = 0;
    let low = 0;
    // 128 ** (byte index), kept as a product: `2 ** shift` with a variable shift is a call to pow
    // per byte, which a profile under ghz found at the top of the main thread's own work.
    let scale = 1;
    for (let shift = 0; shift < 70; shift += 7, scale *= 128) {
      if (this.pos >= this.end) throw new Malformed(`varint cut at byte ${this.pos}`);
      const b = this.bytes[this.pos++] as number;
      if (shift < 32) low |= (b & 0x7f) << shift;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        this.low32 = low | 0;
        return value;
      }
    }
    throw new Malformed(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Reads a length prefix and returns the end of the body it announces. */
  lengthEnd(): number {
    const length = this.varint();
    if (length > this.end - this.pos) throw new Malformed(`length ${length} at byte ${this.pos} runs past the end of its message`);
    return this.pos + length;
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.pos = this.lengthEnd();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      case WIRE_SGROUP:
        for (;;) {
          const tag = this.varint();
          if ((tag & 7) === WIRE_EGROUP) {
            if (tag >>> 3 !== field) throw new Malformed(`group ${field} closed by group ${tag >>> 3}`);
            return;
          }
          this.skip(tag & 7, tag >>> 3);
        }
      default:
        throw new Malformed(`invalid wire type ${wireType} at byte ${this.pos}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Malformed(`field cut at byte ${this.pos}`);
    this.pos += n;
  }
}

const KNOWN_FORMATS = new Set<number>([
  PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED,
  PayloadFormat.PAYLOAD_FORMAT_ETERM,
  PayloadFormat.PAYLOAD_FORMAT_XML,
  PayloadFormat.PAYLOAD_FORMAT_AUTO,
]);

/** Plans the work of one encoded ExtractSenderJidRequest (bytes[start, end)). Never throws. */
export function planRequest(bytes: Uint8Array, start: number, end: number, settings: PlanSettings): Plan {
  try {
    return plan(bytes, start, end, settings);
  } catch (error) {
    if (error instanceof Malformed) return { ok: false, message: `the request is not a valid ExtractSenderJidRequest: ${error.message}` };
    throw error;
  }
}

function plan(bytes: Uint8Array, start: number, end: number, settings: PlanSettings): Plan {
  const { maxItemsPerBatch } = settings;
  // Pass 1: the top-level fields, stopping at the first item over the limit.
  const recordStarts: number[] = [];
  const bodyStarts: number[] = [];
  const bodyEnds: number[] = [];
  let batchFormat = PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED as number;
  const top = new Wire(bytes, start, end);
  while (top.pos < end) {
    const recordStart = top.pos;
    const tag = top.varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new Malformed(`field number 0 at byte ${recordStart}`);
    if (field === 2 && wireType === WIRE_LEN) {
      if (recordStarts.length === maxItemsPerBatch) {
        return {
          ok: false,
          message: `batch of at least ${maxItemsPerBatch + 1} items is over the limit max-items-per-batch=${maxItemsPerBatch} (--max-items-per-batch)`,
        };
      }
      const bodyEnd = top.lengthEnd();
      recordStarts.push(recordStart);
      bodyStarts.push(top.pos);
      bodyEnds.push(bodyEnd);
      top.pos = bodyEnd;
    } else if (field === 1 && wireType === WIRE_VARINT) {
      top.varint();
      batchFormat = top.low32;
    } else {
      top.skip(wireType, field);
    }
  }
  if (!KNOWN_FORMATS.has(batchFormat)) return { ok: false, message: `unknown PayloadFormat ${batchFormat} for the batch: it is not guessed` };

  // Pass 2: each item's fields: payload position, format, and (for a refusal only) its key.
  const count = recordStarts.length;
  const tasks: PlannedTask[] = [];
  let inflatedSoFar = 0;
  let taskFirst = 0;
  let taskCost = 0;
  let taskOverBudget: number[] = [];
  const closeTask = (next: number): void => {
    const ranges: [number, number][] = [];
    for (let i = taskFirst; i < next; i++) {
      const recordEnd = bodyEnds[i] as number;
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last[1] === recordStarts[i]) last[1] = recordEnd;
      else ranges.push([recordStarts[i] as number, recordEnd]);
    }
    tasks.push({ firstItem: taskFirst, itemCount: next - taskFirst, ranges, overBudget: taskOverBudget });
    taskFirst = next;
    taskCost = 0;
    taskOverBudget = [];
  };
  for (let i = 0; i < count; i++) {
    const item = new Wire(bytes, bodyStarts[i] as number, bodyEnds[i] as number);
    let payloadStart = 0;
    let payloadEnd = 0;
    let format = PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED as number;
    let keyStart = 0;
    let keyEnd = 0;
    while (item.pos < item.end) {
      const tagAt = item.pos;
      const tag = item.varint();
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field === 0) throw new Malformed(`field number 0 at byte ${tagAt}`);
      if ((field === 1 || field === 2) && wireType === WIRE_LEN) {
        const bodyEnd = item.lengthEnd();
        if (field === 1) [payloadStart, payloadEnd] = [item.pos, bodyEnd];
        else [keyStart, keyEnd] = [item.pos, bodyEnd];
        item.pos = bodyEnd;
      } else if (field === 3 && wireType === WIRE_VARINT) {
        item.varint();
        format = item.low32;
      } else {
        item.skip(wireType, field);
      }
    }
    if (!KNOWN_FORMATS.has(format)) {
      const key = new TextDecoder().decode(bytes.subarray(keyStart, keyEnd));
      return { ok: false, message: `unknown PayloadFormat ${format} for item ${i} (key ${JSON.stringify(key)}): it is not guessed` };
    }
    const effective = format === PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED ? batchFormat : format;
    const payloadLength = payloadEnd - payloadStart;
    const inflates = declaredInflation(bytes, payloadStart, payloadLength, effective, settings);
    let cost = ITEM_OVERHEAD_BYTES + Math.min(payloadLength, settings.maxPayloadBytes);
    if (inflates > 0) {
      if (inflatedSoFar + inflates > settings.maxRequestDecompressedBytes) {
        taskOverBudget.push(i - taskFirst);
      } else {
        inflatedSoFar += inflates;
        cost += inflates;
      }
    }
    if (i > taskFirst && taskCost + cost > settings.taskSliceBytes) {
      // The item starts the next task (its over-budget mark moves with it).
      const moved = taskOverBudget.length > 0 && taskOverBudget[taskOverBudget.length - 1] === i - taskFirst;
      if (moved) taskOverBudget.pop();
      closeTask(i);
      if (moved) taskOverBudget.push(0);
    }
    taskCost += cost;
  }
  if (count > taskFirst || tasks.length === 0) closeTask(count);
  return { ok: true, itemCount: count, batchFormat, tasks };
}

/**
 * What the decoder will inflate for this payload: the size a compressed term declares (version
 * 131, tag 80, size), when the decoder will get as far as inflating it; 0 otherwise.
 */
function declaredInflation(bytes: Uint8Array, start: number, length: number, format: number, settings: PlanSettings): number {
  if (format === PayloadFormat.PAYLOAD_FORMAT_XML) return 0;
  if (length < 6 || length > settings.maxPayloadBytes) return 0;
  if (bytes[start] !== 131 || bytes[start + 1] !== 80) return 0;
  const declared =
    (bytes[start + 2] as number) * 2 ** 24 + (((bytes[start + 3] as number) << 16) | ((bytes[start + 4] as number) << 8) | (bytes[start + 5] as number));
  return declared <= settings.maxDecompressedBytes ? declared : 0;
}
