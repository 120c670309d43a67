/**
 * A piscina task: one whole batch in, one whole answer out.
 *
 * The main thread hands over the request exactly as it came off the wire (one packed buffer:
 * the protobuf message, whose payloads are already laid end to end with their offsets in the
 * encoding), transferred, not copied. Decoding the protobuf here rather than on the main thread
 * keeps the main thread free for I/O, and a payload is read in place (a view into that buffer),
 * never copied. The encoded response comes back as one buffer.
 */
import { workerData } from 'node:worker_threads';
import { type PayloadFormat as DecodeFormat, extractMessageFields, extractSenderJid, splitBareJid, type Failure as DecodeFailure } from '../decode/index.js';
import { OUTCOMES, type BatchOutcome, type BatchRefused, type BatchTask, type Outcome, type WorkerSettings } from './batch-protocol.js';
import {
  ErrorCode,
  ExtractMessageFieldsResponse,
  ExtractSenderJidRequest,
  ExtractSenderJidResponse,
  PayloadFormat,
  type FieldsResult,
  type Item,
  type Result,
} from './gen/mongooseim/mam/v1/sender_jid.js';
import { answerSenderBatch, FAILURE_CODE, OUTCOME_INDEX } from './sender-answers.js';

const settings = workerData as WorkerSettings | undefined;

/** The decoder's format for a wire format, or null for a value this version does not know. */
function decodeFormatOf(format: PayloadFormat): DecodeFormat | null {
  switch (format) {
    case PayloadFormat.PAYLOAD_FORMAT_ETERM:
      return 'eterm';
    case PayloadFormat.PAYLOAD_FORMAT_XML:
      return 'xml';
    case PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED:
    case PayloadFormat.PAYLOAD_FORMAT_AUTO:
      return 'auto';
    default:
      return null;
  }
}

function unknownFormat(format: number, where: string): BatchRefused {
  return { kind: 'refused', status: 'INVALID_ARGUMENT', message: `unknown PayloadFormat ${format} ${where}: it is not guessed` };
}

export function answerBatch(task: BatchTask, options: WorkerSettings): BatchOutcome {
  if (task.answer !== 'fields') {
    const answered = answerSenderBatch(task, options);
    if (answered !== null) return answered;
  }
  return answerBatchByGeneratedCode(task, options);
}

/** Every task through the generated protobuf code: what sender-answers.ts must answer byte for byte, and what it leaves to this path. */
export function answerBatchByGeneratedCode(task: BatchTask, options: WorkerSettings): BatchOutcome {
  let request: ExtractSenderJidRequest;
  // ExtractMessageFieldsRequest has ExtractSenderJidRequest's fields, numbers and types: one decoder reads both.
  try {
    request = ExtractSenderJidRequest.decode(new Uint8Array(task.request, task.offset, task.length));
  } catch (error) {
    return {
      kind: 'refused',
      status: 'INVALID_ARGUMENT',
      message: `the request is not a valid ExtractSenderJidRequest: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const count = request.items.length;
  // The main thread counted the items before anything was decoded (request-scan.ts); this is a
  // second line for a task that did not come from a plan.
  if (count > options.maxItemsPerBatch) {
    return {
      kind: 'refused',
      status: 'INVALID_ARGUMENT',
      message: `batch of ${count} items is over the limit max-items-per-batch=${options.maxItemsPerBatch} (--max-items-per-batch)`,
    };
  }
  const batchFormat = decodeFormatOf(task.batchFormat);
  if (batchFormat === null) return unknownFormat(task.batchFormat, 'for the batch');
  return task.answer === 'fields'
    ? answerItems(task, request, batchFormat, options, FIELDS_ANSWERS)
    : answerItems(task, request, batchFormat, options, SENDER_ANSWERS);
}

/** How one RPC answers an item, and answers it failed; the loop around them is answerItems'. */
interface ItemAnswers<R> {
  answer(item: Item, format: DecodeFormat, options: WorkerSettings): { outcome: Outcome; result: R };
  failed(item: Item, failure: { code: ErrorCode; detail: string }): R;
  encode(results: R[]): Uint8Array;
}

/** Every item of the request, in order, with the limits, the inflation budget and cancellation. */
function answerItems<R>(
  task: BatchTask,
  request: ExtractSenderJidRequest,
  batchFormat: DecodeFormat,
  options: WorkerSettings,
  answers: ItemAnswers<R>,
): BatchOutcome {
  const count = request.items.length;
  const cancel = task.cancel;
  let nextOverBudget = 0;
  const outcomes = new Array<number>(OUTCOMES.length).fill(0);
  const results = new Array<R>(count);
  let decoderBug: string | null = null;
  for (let i = 0; i < count; i++) {
    if (cancel !== null && Atomics.load(cancel, 0) !== 0) return { kind: 'cancelled' };
    const item = request.items[i];
    const format = item.format === PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED ? batchFormat : decodeFormatOf(item.format);
    if (format === null) return unknownFormat(item.format, `for item ${task.firstItem + i} (key ${JSON.stringify(item.key)})`);
    if (task.overBudget[nextOverBudget] === i) {
      nextOverBudget++;
      outcomes[OUTCOME_INDEX.payload_too_large]++;
      results[i] = answers.failed(item, {
        code: ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE,
        detail: `compressed term not inflated: with the items before it the request would inflate to more than ${task.budgetBytes} bytes (--max-request-decompressed-bytes)`,
      });
      continue;
    }
    let outcome: Outcome;
    try {
      const answered = answers.answer(item, format, options);
      outcome = answered.outcome;
      results[i] = answered.result;
    } catch (error) {
      // The decoder answers every input with a value; an exception is a bug in it. The item is
      // answered as malformed (it is left untouched by a backfill) and the bug is reported.
      const message = error instanceof Error ? error.message : String(error);
      decoderBug ??= `item ${i} (key ${JSON.stringify(item.key)}): ${message}`;
      outcome = 'decoder_bug';
      results[i] = answers.failed(item, { code: ErrorCode.ERROR_CODE_MALFORMED, detail: `internal decoder error: ${message}` });
    }
    outcomes[OUTCOME_INDEX[outcome]]++;
  }
  return { kind: 'answered', response: answers.encode(results), items: count, outcomes, decoderBug };
}

const SENDER_ANSWERS: ItemAnswers<Result> = {
  answer(item, format, options) {
    const answer = extractSenderJid(item.payload, format, options.limits);
    if (!('jid' in answer))
      return { outcome: answer.reason, result: { key: item.key, jid: undefined, error: { code: FAILURE_CODE[answer.reason], detail: answer.detail } } };
    const split = splitBareJid(answer.jid);
    if ('reason' in split)
      return { outcome: split.reason, result: { key: item.key, jid: undefined, error: { code: FAILURE_CODE[split.reason], detail: split.detail } } };
    return { outcome: 'jid', result: { key: item.key, jid: { bareJid: answer.jid, user: split.user, server: split.server }, error: undefined } };
  },
  failed: (item, error) => ({ key: item.key, jid: undefined, error }),
  encode: (results) => ExtractSenderJidResponse.encode({ results }).finish(),
};

function fieldFailure(failure: DecodeFailure): { code: ErrorCode; detail: string } {
  return { code: failure.reason === 'payload_too_large' ? ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE : ErrorCode.ERROR_CODE_MALFORMED, detail: failure.detail };
}

/** ExtractMessageFields: origin_id and is_groupchat per item. */
const FIELDS_ANSWERS: ItemAnswers<FieldsResult> = {
  answer(item, format, options) {
    const answers = extractMessageFields(item.payload, format, options.limits);
    const o = answers.originId;
    const g = answers.isGroupchat;
    const originOk = 'originId' in o;
    const groupchatOk = 'isGroupchat' in g;
    const result: FieldsResult = {
      key: item.key,
      originId: originOk
        ? o.originId === null
          ? { originId: undefined, none: {}, error: undefined }
          : { originId: o.originId, none: undefined, error: undefined }
        : { originId: undefined, none: undefined, error: fieldFailure(o) },
      isGroupchat: groupchatOk ? { isGroupchat: g.isGroupchat, error: undefined } : { isGroupchat: undefined, error: fieldFailure(g) },
    };
    const outcome = originOk || groupchatOk ? 'fields' : (o as DecodeFailure).reason === 'payload_too_large' ? 'payload_too_large' : 'malformed';
    return { outcome, result };
  },
  failed: (item, error) => ({ key: item.key, originId: { originId: undefined, none: undefined, error }, isGroupchat: { isGroupchat: undefined, error } }),
  encode: (results) => ExtractMessageFieldsResponse.encode({ results }).finish(),
};

/** The piscina entry point. */
export default function runBatch(task: BatchTask): BatchOutcome {
  if (settings === undefined) throw new Error('worker.ts runs in a piscina pool started by decoding-pool.ts');
  // The answer goes back by structured clone: one copy of the encoded response, small next to
  // decoding the batch. (Transferring it would need piscina's move(), i.e. loading the CommonJS
  // piscina package in the worker, which this module graph avoids: see buf.gen.yaml.)
  return answerBatch(task, settings);
}
