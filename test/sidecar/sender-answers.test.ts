/**
 * The worker's own ExtractSenderJid path (sender-answers.ts: offsets and bytes, no per-item
 * objects) against the generated protobuf code it stands in for: for any request, the worker's
 * answer (response bytes, outcome counts, decoder-bug message) is the one the generated code
 * gives. Requests in the plain layout must take the own path (else it would be tested against
 * itself); anything else (unknown fields, cut messages, non-ASCII keys, odd formats) must fall
 * back and still answer the same. Erlang-made payloads (edge cases and random messages), XML,
 * and random bytes; seeded requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_DECODE_LIMITS } from '../../services/decode/index.js';
import type { BatchOutcome, BatchTask, WorkerSettings } from '../../services/sidecar/batch-protocol.js';
import { ExtractSenderJidRequest, type Item } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { answerSenderBatch, MAX_OWN_PATH_ITEMS } from '../../services/sidecar/sender-answers.js';
import { answerBatch, answerBatchByGeneratedCode } from '../../services/sidecar/worker.js';
import { erlangCases, erlangRandomMessages } from '../support/erlang-payloads.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { payloadCases, TRUNCATED_TERM } from './payloads.js';

const SEED = fuzzSeed('SENDER_ANSWERS_SEED', 'sender-answers.test');
const SETTINGS: WorkerSettings = { limits: DEFAULT_DECODE_LIMITS, maxItemsPerBatch: 10_000 };

const cases = payloadCases();
const PAYLOADS: Uint8Array[] = [
  ...erlangCases().map((r) => r.payload),
  ...erlangRandomMessages(40, 7).map((r) => r.payload),
  ...cases.xml.map((c) => c.payload),
  ...cases.compressed.map((c) => c.payload),
  TRUNCATED_TERM,
  new Uint8Array(0),
];

function taskOf(bytes: Uint8Array, batchFormat: number, overBudget: number[] = []): BatchTask {
  const copy = bytes.slice();
  return { request: copy.buffer, offset: 0, length: copy.length, batchFormat, firstItem: 0, overBudget, budgetBytes: 1234, cancel: null };
}

function comparable(outcome: BatchOutcome): unknown {
  return outcome.kind === 'answered' ? { ...outcome, response: Buffer.from(outcome.response).toString('hex') } : outcome;
}

const item = fc.record({
  payload: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...PAYLOADS) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) }),
  key: fc.oneof(
    { weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String) },
    { weight: 1, arbitrary: fc.constantFrom('', 'ключ', 'k\u0000', 'x'.repeat(200)) },
  ),
  format: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 3) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 300 }) }),
});

const request = fc.record({
  format: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 3) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 300 }) }),
  items: fc.array(item, { maxLength: 30 }),
});

describe('the worker’s own ExtractSenderJid path', () => {
  it('takes a plain request and answers it byte for byte as the generated code does', () => {
    const items: Item[] = PAYLOADS.map((payload, i) => ({ payload, key: String(1700000000000000000n + BigInt(i) * 256n), format: 0 }));
    const bytes = ExtractSenderJidRequest.encode({ format: 1, items }).finish();
    const own = answerSenderBatch(taskOf(bytes, 1), SETTINGS);
    assert.notEqual(own, null, 'a plain request must take the own path');
    assert.deepEqual(comparable(own as BatchOutcome), comparable(answerBatchByGeneratedCode(taskOf(bytes, 1), SETTINGS)));
  });

  it('answers any request as the generated code does, falling back where the layout is not plain', () => {
    fc.assert(
      fc.property(
        request,
        fc.uniqueArray(fc.nat({ max: 29 })),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 8 })),
        fc.nat(),
        (req, overBudget, tail, cut) => {
          let bytes = ExtractSenderJidRequest.encode(req).finish();
          // Unknown fields or garbage at the end, or a cut message: the generated code decides.
          if (tail !== null) bytes = Buffer.concat([bytes, tail]);
          if (cut % 7 === 0 && bytes.length > 0) bytes = bytes.subarray(0, cut % bytes.length);
          const budget = overBudget.filter((i) => i < req.items.length).sort((a, b) => a - b);
          const expected = comparable(answerBatchByGeneratedCode(taskOf(bytes, req.format, budget), SETTINGS));
          assert.deepEqual(comparable(answerBatch(taskOf(bytes, req.format, budget), SETTINGS)), expected);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('leaves non-ASCII keys, unknown item fields and test hooks to the generated code', () => {
    const plain = (key: string): Uint8Array =>
      ExtractSenderJidRequest.encode({ format: 1, items: [{ payload: PAYLOADS[0] as Uint8Array, key, format: 0 }] }).finish();
    assert.equal(answerSenderBatch(taskOf(plain('ключ'), 1), SETTINGS), null);
    const withUnknownField = Buffer.concat([plain('k'), Buffer.from([0x20, 0x01])]);
    assert.equal(answerSenderBatch(taskOf(withUnknownField, 1), SETTINGS), null);
    assert.notEqual(answerSenderBatch(taskOf(plain('k'), 1), SETTINGS), null);
  });

  it('stops between items once the call is cancelled, as the general path does', () => {
    const bytes = ExtractSenderJidRequest.encode({ format: 1, items: [{ payload: PAYLOADS[0] as Uint8Array, key: 'k', format: 0 }] }).finish();
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    Atomics.store(cancel, 0, 1);
    assert.deepEqual(answerSenderBatch({ ...taskOf(bytes, 1), cancel }, SETTINGS), { kind: 'cancelled' });
  });

  it('leaves a task of more than MAX_OWN_PATH_ITEMS items to the generated code, whose objects the worker heap limit bounds', () => {
    const items = (n: number): Uint8Array =>
      ExtractSenderJidRequest.encode({ format: 1, items: Array.from({ length: n }, () => ({ payload: new Uint8Array(0), key: '', format: 0 })) }).finish();
    const settings = { ...SETTINGS, maxItemsPerBatch: 10 * MAX_OWN_PATH_ITEMS };
    assert.notEqual(answerSenderBatch(taskOf(items(MAX_OWN_PATH_ITEMS), 1), settings), null);
    assert.equal(answerSenderBatch(taskOf(items(MAX_OWN_PATH_ITEMS + 1), 1), settings), null);
  });
});
