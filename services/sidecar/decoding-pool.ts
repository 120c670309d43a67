/**
 * The piscina pool of decoding workers (worker.ts), shared by the gRPC server and by the
 * in-process decoder client (clients/decoder-client/in-process.ts): one way to start the workers,
 * warm them up, hand them a batch and name what went wrong, whoever asks.
 *
 * A failure is a value here (a status name and a message): the server turns it into a gRPC
 * status, the in-process client into an error carrying the same status code.
 */
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { BatchAnswered, BatchOutcome, BatchTask, WorkerSettings } from './batch-protocol.js';

const WARM_UP_ATTEMPTS = 3;

/** The gRPC status names a batch can fail with (the server sends them as they are). */
export type FailureStatus = 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED' | 'CANCELLED' | 'INTERNAL';

export type PoolResult = { readonly ok: true; readonly answered: BatchAnswered } | { readonly ok: false; readonly status: FailureStatus; readonly message: string };

export interface DecodingPoolOptions {
  readonly settings: WorkerSettings;
  readonly poolSize: number;
  /** Batches waiting for a free worker, all callers together; null: no bound (callers bound themselves). */
  readonly maxQueuedBatches: number | null;
  readonly log: Logger;
}

export interface DecodingPool {
  readonly poolSize: number;
  /** Batches waiting for a worker. */
  readonly queueSize: number;
  /** Batches handed to the pool and not settled yet (running or queued). */
  readonly batchesInPool: number;
  /** Decodes one batch; `task.request` is transferred to the worker (the caller must not use it again). */
  run(task: BatchTask, signal?: AbortSignal): Promise<PoolResult>;
  destroy(): Promise<void>;
}

/** Starts the workers and waits until each has loaded the decoder (see warmUp). */
export async function startDecodingPool(options: DecodingPoolOptions): Promise<DecodingPool> {
  const { settings, poolSize, maxQueuedBatches, log } = options;
  const pool = new Piscina<BatchTask, BatchOutcome>({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: poolSize,
    maxThreads: poolSize,
    ...(maxQueuedBatches === null ? {} : { maxQueue: maxQueuedBatches }),
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1, // workers are kept warm for the life of the pool
    workerData: settings,
  });
  // Without a listener piscina would throw; a worker failing at start-up must be seen in the logs.
  pool.on('error', (error: unknown) => log.error({ err: error }, 'worker pool error'));
  await warmUp(pool, poolSize, log);

  let batchesInPool = 0;

  const queueFull = (): PoolResult => ({
    ok: false,
    status: 'RESOURCE_EXHAUSTED',
    message: `all ${poolSize} workers are busy and max-queued-batches=${maxQueuedBatches} batches wait (--max-queued-batches); retry later`,
  });

  function failureOf(error: unknown, signal: AbortSignal | undefined): PoolResult {
    const message = error instanceof Error ? error.message : String(error);
    if (signal?.aborted === true || (error instanceof Error && error.name === 'AbortError')) {
      return { ok: false, status: 'CANCELLED', message: 'the call was cancelled; its batch was abandoned' };
    }
    if (/task queue is at limit/i.test(message)) return queueFull();
    if (/worker exited/i.test(message)) {
      log.error({ err: message }, 'a worker died decoding a batch; it is replaced and only that batch fails');
      return { ok: false, status: 'INTERNAL', message: `the worker decoding this batch died (${message}); only this batch failed, retry it` };
    }
    log.error({ err: error }, 'batch failed');
    return { ok: false, status: 'INTERNAL', message: `batch failed: ${message}` };
  }

  return {
    poolSize,
    get queueSize() {
      return pool.queueSize;
    },
    get batchesInPool() {
      return batchesInPool;
    },
    async run(task, signal) {
      // Refused before piscina sees it, so that a full queue costs neither a transfer nor a wait.
      if (maxQueuedBatches !== null && batchesInPool >= poolSize + maxQueuedBatches) return queueFull();
      batchesInPool++;
      try {
        const outcome = await pool.run(task, { transferList: [task.request], ...(signal === undefined ? {} : { signal }) });
        if (outcome.kind === 'refused') return { ok: false, status: outcome.status, message: outcome.message };
        if (outcome.decoderBug !== null) log.error({ bug: outcome.decoderBug }, 'decoder threw; item answered as malformed');
        return { ok: true, answered: outcome };
      } catch (error) {
        return failureOf(error, signal);
      } finally {
        batchesInPool--;
      }
    },
    destroy: () => pool.destroy(),
  };
}

/**
 * The pool is ready once the workers answer: an empty batch per worker loads the decoder in each,
 * so the first real batches do not pay for it, and a pool that cannot decode fails at start, not later.
 */
async function warmUp(pool: Piscina<BatchTask, BatchOutcome>, poolSize: number, log: Logger): Promise<void> {
  let lastError: unknown = null;
  for (let attempt = 1; attempt <= WARM_UP_ATTEMPTS; attempt++) {
    const runs = await Promise.allSettled(Array.from({ length: poolSize }, () => pool.run({ request: new ArrayBuffer(0), offset: 0, length: 0 })));
    const failed = runs.find((run): run is PromiseRejectedResult => run.status === 'rejected');
    if (failed === undefined) return;
    lastError = failed.reason;
    log.warn({ err: lastError, attempt }, 'a decoding worker failed its warm-up batch');
  }
  await pool.destroy();
  throw new Error(`the decoding workers cannot start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}
