/**
 * What decoding ghz's own request data costs on one thread with nothing else running: CPU µs per
 * item of the decoder alone, and of the worker's whole batch task (request parsing, decoding,
 * answer encoding), on the items of batch-1000.json (best of 5 rounds). run.sh hands the first to
 * summarize.js, which prints the ceiling of sidecar ÷ floor: the floor's CPU per item over the
 * floor's plus decoding's, i.e. the ratio if the sidecar cost nothing but the decoder on top of
 * the floor's serving (on a machine whose cores are all busy, throughput follows CPU per item).
 *
 *   node dist/bench/ghz/decode-cost.js DATA_DIR      prints "DECODER_US TASK_US"
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DECODE_LIMITS, extractSenderJid } from '../../services/decode/index.js';
import type { WorkerSettings } from '../../services/sidecar/batch-protocol.js';
import { ExtractSenderJidRequest, PayloadFormat } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { answerBatch } from '../../services/sidecar/worker.js';

const ROUNDS = 5;
const REPEATS = 20;

const data = JSON.parse(readFileSync(join(process.argv[2] ?? 'bench/results/ghz/data', 'batch-1000.json'), 'utf8')) as {
  items: { key: string; payload: string }[];
};
const items = data.items.map((item) => ({ key: item.key, payload: Buffer.from(item.payload, 'base64'), format: 0 }));
const request = ExtractSenderJidRequest.encode({ format: PayloadFormat.PAYLOAD_FORMAT_ETERM, items }).finish();
const settings: WorkerSettings = { limits: DEFAULT_DECODE_LIMITS, maxItemsPerBatch: 10_000 };

function cpuPerItem(work: () => void): number {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < REPEATS; i++) work();
    const used = process.cpuUsage(before);
    best = Math.min(best, used.user + used.system);
  }
  return best / (REPEATS * items.length);
}

const decoder = cpuPerItem(() => {
  for (const item of items) extractSenderJid(item.payload, 'eterm');
});
const task = cpuPerItem(() => {
  const copy = request.slice();
  answerBatch(
    {
      request: copy.buffer,
      offset: 0,
      length: copy.length,
      batchFormat: PayloadFormat.PAYLOAD_FORMAT_ETERM,
      firstItem: 0,
      overBudget: [],
      budgetBytes: 0,
      cancel: null,
    },
    settings,
  );
});
process.stdout.write(`${decoder.toFixed(2)} ${task.toFixed(2)}\n`);
