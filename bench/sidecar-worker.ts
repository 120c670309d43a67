/**
 * The sidecar's decoding-thread work per item, in one thread, against the decoder alone on the same
 * payloads: what the worker adds per item (parsing the protobuf request, building results,
 * encoding the response) beside inflating and decoding. CPU time of this process (best of 5).
 * Erlang-made compressed terms, batches of BENCH_BATCH (1,000), BENCH_MESSAGES messages made.
 *
 * Run: npm run build && node dist/bench/sidecar-worker.js
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_DECODE_LIMITS, extractSenderJid } from '../services/decode/index.js';
import type { BatchTask, WorkerSettings } from '../services/sidecar/batch-protocol.js';
import { ExtractSenderJidRequest, PayloadFormat, type Item } from '../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { answerBatch, answerBatchByGeneratedCode } from '../services/sidecar/worker.js';
import { erlangRandomMessages } from '../test/support/erlang-payloads.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 30_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 1_000);

const payloads = erlangRandomMessages(MESSAGES, 42)
  .filter((_, i) => i % 3 === 1)
  .map((r) => r.payload);
const batches: { bytes: Uint8Array; items: Item[] }[] = [];
for (let b = 0; b + BATCH <= payloads.length; b += BATCH) {
  // MongooseIM-shaped message ids as keys: 18 digits.
  const items = payloads.slice(b, b + BATCH).map((payload, i) => ({ payload, key: String(1700000000000000000n + BigInt(b + i) * 256n), format: 0 }));
  batches.push({ bytes: ExtractSenderJidRequest.encode({ format: PayloadFormat.PAYLOAD_FORMAT_ETERM, items }).finish(), items });
}
const items = batches.length * BATCH;
const settings: WorkerSettings = { maxItemsPerBatch: 10_000, limits: DEFAULT_DECODE_LIMITS };

/** Best CPU µs per item of five runs of `work`. */
function cpuPerItem(work: () => void): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const before = process.cpuUsage();
    work();
    const used = process.cpuUsage(before);
    best = Math.min(best, used.user + used.system);
  }
  return best / items;
}

const decode = cpuPerItem(() => {
  for (const b of batches) for (const item of b.items) extractSenderJid(item.payload, 'eterm');
});
const parse = cpuPerItem(() => {
  for (const b of batches) ExtractSenderJidRequest.decode(b.bytes);
});
function taskOf(b: { bytes: Uint8Array }): BatchTask {
  const request = b.bytes.buffer.slice(b.bytes.byteOffset, b.bytes.byteOffset + b.bytes.length) as ArrayBuffer;
  return {
    request,
    offset: 0,
    length: b.bytes.length,
    batchFormat: PayloadFormat.PAYLOAD_FORMAT_ETERM,
    firstItem: 0,
    overBudget: [],
    budgetBytes: 1e12,
    cancel: null,
  };
}
// The same task by the generated protobuf code (request objects, Result objects, protobuf-es's
// writer) and by the worker's own path (offsets and bytes, sender-answers.ts), alternating.
let generated = Infinity;
let whole = Infinity;
for (let round = 0; round < 2; round++) {
  generated = Math.min(
    generated,
    cpuPerItem(() => batches.forEach((b) => answerBatchByGeneratedCode(taskOf(b), settings))),
  );
  whole = Math.min(
    whole,
    cpuPerItem(() => batches.forEach((b) => answerBatch(taskOf(b), settings))),
  );
}
console.log(
  `sidecar worker, ${items.toLocaleString('en')} compressed terms in batches of ${BATCH}, CPU µs per item: decoder alone ${decode.toFixed(2)}, ` +
    `request parse ${parse.toFixed(2)}; whole batch task by the generated code ${generated.toFixed(2)} (own ${(generated - decode).toFixed(2)}), ` +
    `by the worker's path ${whole.toFixed(2)} (own ${(whole - decode).toFixed(2)}); decoder ÷ task ${(decode / generated).toFixed(2)} → ${(decode / whole).toFixed(2)}; ` +
    `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
);
