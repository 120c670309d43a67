/**
 * A sidecar worker module for tests (StartOptions.workerModule = FAULT_WORKER): it answers as
 * the shipped worker does, except for items with these keys, seen before the batch is decoded:
 * - `crash`: the worker thread exits at once, as a crashing worker would;
 * - `stall` (60 s) or `stall:MS`: the worker blocks, as a long batch would, until the time is up
 *   or the batch is cancelled (a cancelled batch answers `cancelled`, as real work does).
 */
import type { BatchOutcome, BatchTask } from '../../services/sidecar/batch-protocol.js';
import { ExtractSenderJidRequest } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import runBatch from '../../services/sidecar/worker.js';

export const FAULT_WORKER = new URL(import.meta.url);

const DEFAULT_STALL_MS = 60_000;

export default function runFaultyBatch(task: BatchTask): BatchOutcome {
  if (task.length > 0) {
    for (const { key } of ExtractSenderJidRequest.decode(new Uint8Array(task.request, task.offset, task.length)).items) {
      if (key === 'crash') process.exit(70); // in a worker thread this ends the thread only
      const stall = /^stall(?::(\d+))?$/.exec(key);
      if (stall === null) continue;
      const cancel = task.cancel ?? new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(cancel, 0, 0, stall[1] === undefined ? DEFAULT_STALL_MS : Number(stall[1]));
      if (Atomics.load(cancel, 0) !== 0) return { kind: 'cancelled' };
    }
  }
  return runBatch(task);
}
