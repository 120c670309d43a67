/**
 * The piscina pool of decoding workers (worker.ts), shared by the gRPC server and by the
 * in-process decoder client (clients/decoder-client/in-process.ts): one way to start the workers,
 * warm them up, hand them a batch and name what went wrong, whoever asks.
 *
 * A batch is planned on the main thread first (request-scan.ts: item count, formats, inflation
 * budget, a cut into tasks), then its tasks are handed to the workers by a scheduler of our own,
 * never more tasks than workers: piscina's queue stays empty. The scheduler takes turns between
 * flows (a stream, or a unary call), one task each, so that a heavy request cut into many tasks
 * cannot hold the workers while a small call waits behind all of it.
 *
 * Cancelling a batch never ends a thread: its queued tasks are dropped and a running task sees a
 * shared flag and stops between two items (piscina's own abort would terminate the worker).
 * Each worker has a V8 heap limit (resourceLimits): a task that exceeds it ends that worker
 * (replaced by piscina) and fails only its batch; the process does not die.
 *
 * A failure is a value here (a status name and a message): the server turns it into a gRPC
 * status, the in-process client into an error carrying the same status code.
 */
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { AnswerKind, BatchAnswered, BatchBytes, BatchOutcome, BatchTask, WorkerSettings } from './batch-protocol.js';
import { OUTCOMES } from './batch-protocol.js';
import { planRequest, type PlanSettings, type PlannedTask } from './request-scan.js';

const WARM_UP_ATTEMPTS = 3;

/** The gRPC status names a batch can fail with (the server sends them as they are). */
export type FailureStatus = 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED' | 'CANCELLED' | 'INTERNAL';

export type PoolResult =
  { readonly ok: true; readonly answered: BatchAnswered } | { readonly ok: false; readonly status: FailureStatus; readonly message: string };

export interface DecodingPoolOptions {
  readonly settings: WorkerSettings;
  /** How requests are checked and cut into tasks (request-scan.ts). */
  readonly plan: PlanSettings;
  readonly poolSize: number;
  /** Batches waiting for a free worker, all callers together; null: no bound (callers bound themselves). */
  readonly maxQueuedBatches: number | null;
  /** V8 old-generation heap of each worker, in MiB (piscina resourceLimits). */
  readonly workerMaxHeapMb: number;
  readonly log: Logger;
  /** The worker's module (default ./worker.js): see StartOptions.workerModule. */
  readonly workerModule?: URL;
}

export interface RunOptions {
  readonly signal?: AbortSignal;
  /** Batches with the same flow (e.g. one stream) take turns with other flows as one; default: the batch alone. */
  readonly flow?: object;
  /** The answer the batch asks for; default: the sender. */
  readonly answer?: AnswerKind;
}

export interface DecodingPool {
  readonly poolSize: number;
  /** Batches admitted with no task on a worker right now. */
  readonly queueSize: number;
  /** Batches handed to the pool and not settled yet (running or queued). */
  readonly batchesInPool: number;
  /** Worker tasks running right now (at most poolSize). */
  readonly busyWorkers: number;
  /** Worker tasks finished since the start (answered, cancelled or failed). */
  readonly tasksDone: number;
  /** Worker threads started since the start (poolSize at first; one more for each worker replaced). */
  readonly workersStarted: number;
  /** Thread ids of the workers (piscina's), for tests: a worker replaced gets a new id. */
  readonly threadIds: number[];
  /** Decodes one batch; `bytes.request` may be transferred to a worker (the caller must not use it again). */
  run(bytes: BatchBytes, options?: RunOptions): Promise<PoolResult>;
  destroy(): Promise<void>;
}

interface Job {
  readonly bytes: BatchBytes;
  readonly answer: AnswerKind;
  readonly batchFormat: number;
  readonly tasks: readonly PlannedTask[];
  readonly flow: Flow;
  readonly cancel: Int32Array;
  readonly responses: (Uint8Array | null)[];
  readonly outcomes: number[];
  next: number;
  running: number;
  finished: number;
  decoderBug: string | null;
  settled: boolean;
  settle(result: PoolResult): void;
}

interface Flow {
  readonly key: object;
  /** Jobs of this flow with tasks not yet handed to a worker, oldest first. */
  readonly jobs: Job[];
}

/** Starts the workers and waits until each has loaded the decoder (see warmUp). */
export async function startDecodingPool(options: DecodingPoolOptions): Promise<DecodingPool> {
  const { settings, plan, poolSize, maxQueuedBatches, workerMaxHeapMb, log } = options;
  const pool = new Piscina<BatchTask, BatchOutcome>({
    filename: (options.workerModule ?? new URL('./worker.js', import.meta.url)).href,
    minThreads: poolSize,
    maxThreads: poolSize,
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1, // workers are kept warm for the life of the pool
    workerData: settings,
    resourceLimits: { maxOldGenerationSizeMb: workerMaxHeapMb },
  });
  let workersStarted = 0;
  pool.on('workerCreate', () => workersStarted++);
  // Without a listener piscina would throw; a worker failing at start-up must be seen in the logs.
  pool.on('error', (error: unknown) => log.error({ err: error }, 'worker pool error'));
  await warmUp(pool, poolSize, log);

  let batchesInPool = 0;
  let jobsOnWorkers = 0;
  let running = 0;
  let tasksDone = 0;
  /** Flows with tasks to hand out, in turn order; `turn` is the next to be served. */
  const ring: Flow[] = [];
  const flows = new Map<object, Flow>();
  let turn = 0;

  const queueFull = (): PoolResult => ({
    ok: false,
    status: 'RESOURCE_EXHAUSTED',
    message: `all ${poolSize} workers are busy and max-queued-batches=${maxQueuedBatches} batches wait (--max-queued-batches); retry later`,
  });

  function failureOf(error: unknown): PoolResult {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_WORKER_OUT_OF_MEMORY' || /memory limit/i.test(message)) {
      log.error({ err: message }, 'a worker reached its heap limit decoding a batch; it is replaced and only that batch fails');
      return {
        ok: false,
        status: 'RESOURCE_EXHAUSTED',
        message: `decoding this batch needed more than the worker heap limit of ${workerMaxHeapMb} MiB (--worker-max-heap-mb); only this batch failed`,
      };
    }
    if (/worker exited/i.test(message)) {
      log.error({ err: message }, 'a worker died decoding a batch; it is replaced and only that batch fails');
      return { ok: false, status: 'INTERNAL', message: `the worker decoding this batch died (${message}); only this batch failed, retry it` };
    }
    log.error({ err: error }, 'batch failed');
    return { ok: false, status: 'INTERNAL', message: `batch failed: ${message}` };
  }

  /** Stops a job: no more of its tasks start, a running one stops between items. */
  function stop(job: Job): void {
    Atomics.store(job.cancel, 0, 1);
    Atomics.notify(job.cancel, 0);
    const waiting = job.flow.jobs.indexOf(job);
    if (waiting >= 0) job.flow.jobs.splice(waiting, 1);
    job.next = job.tasks.length;
  }

  function nextTask(): { job: Job; index: number } | null {
    while (ring.length > 0) {
      if (turn >= ring.length) turn = 0;
      const flow = ring[turn] as Flow;
      const job = flow.jobs[0];
      if (job === undefined) {
        ring.splice(turn, 1);
        flows.delete(flow.key);
        continue;
      }
      const index = job.next++;
      if (job.next >= job.tasks.length) flow.jobs.shift();
      turn++; // the next flow's turn
      return { job, index };
    }
    return null;
  }

  function pump(): void {
    while (running < poolSize) {
      const next = nextTask();
      if (next === null) return;
      start(next.job, next.index);
    }
  }

  function taskOf(job: Job, index: number): BatchTask {
    const planned = job.tasks[index] as PlannedTask;
    const common = {
      answer: job.answer,
      batchFormat: job.batchFormat,
      firstItem: planned.firstItem,
      overBudget: planned.overBudget,
      budgetBytes: plan.maxRequestDecompressedBytes,
      cancel: job.cancel,
    };
    if (job.tasks.length === 1) return { ...common, ...job.bytes }; // the whole request, transferred
    // A slice: its item records, copied into memory of its own (an encoded request of those items).
    let length = 0;
    for (const [from, to] of planned.ranges) length += to - from;
    const memory = new ArrayBuffer(length);
    const target = new Uint8Array(memory);
    const source = new Uint8Array(job.bytes.request, job.bytes.offset, job.bytes.length);
    let at = 0;
    for (const [from, to] of planned.ranges) {
      target.set(source.subarray(from, to), at);
      at += to - from;
    }
    return { ...common, request: memory, offset: 0, length };
  }

  function start(job: Job, index: number): void {
    running++;
    if (job.running++ === 0) jobsOnWorkers++;
    const task = taskOf(job, index);
    pool
      .run(task, { transferList: [task.request] })
      .then(
        (outcome) => {
          if (job.settled) return;
          if (outcome.kind === 'cancelled') return;
          if (outcome.kind === 'refused') {
            job.settle({ ok: false, status: outcome.status, message: outcome.message });
            return;
          }
          if (outcome.decoderBug !== null) job.decoderBug ??= outcome.decoderBug;
          job.responses[index] = outcome.response;
          for (let i = 0; i < OUTCOMES.length; i++) job.outcomes[i] = (job.outcomes[i] as number) + (outcome.outcomes[i] as number);
          if (++job.finished === job.tasks.length) {
            if (job.decoderBug !== null) log.error({ bug: job.decoderBug }, 'decoder threw; item answered as malformed');
            const parts = job.responses as Uint8Array[];
            const response = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
            const items = job.tasks.reduce((sum, t) => sum + t.itemCount, 0);
            job.settle({ ok: true, answered: { kind: 'answered', response, items, outcomes: job.outcomes, decoderBug: job.decoderBug } });
          }
        },
        (error: unknown) => {
          if (!job.settled) job.settle(failureOf(error));
        },
      )
      .finally(() => {
        running--;
        tasksDone++;
        if (--job.running === 0) jobsOnWorkers--;
        pump();
      });
  }

  return {
    poolSize,
    get queueSize() {
      return Math.max(0, batchesInPool - jobsOnWorkers);
    },
    get batchesInPool() {
      return batchesInPool;
    },
    get busyWorkers() {
      return running;
    },
    get tasksDone() {
      return tasksDone;
    },
    get workersStarted() {
      return workersStarted;
    },
    get threadIds() {
      return pool.threads.map((thread) => thread.threadId);
    },
    run(bytes, runOptions = {}) {
      const { signal } = runOptions;
      if (signal?.aborted === true) return Promise.resolve(cancelled());
      // Refused before any work, so that a full queue costs neither a scan nor a wait.
      if (maxQueuedBatches !== null && batchesInPool >= poolSize + maxQueuedBatches) return Promise.resolve(queueFull());
      const planned = planRequest(new Uint8Array(bytes.request, bytes.offset, bytes.length), 0, bytes.length, plan);
      if (!planned.ok) return Promise.resolve({ ok: false, status: 'INVALID_ARGUMENT', message: planned.message } as const);
      const key = runOptions.flow ?? {};
      let flow = flows.get(key);
      if (flow === undefined) {
        flow = { key, jobs: [] };
        flows.set(key, flow);
        ring.push(flow);
      }
      batchesInPool++;
      return new Promise<PoolResult>((resolve) => {
        const onAbort = (): void => {
          if (job.settled) return;
          stop(job);
          job.settle(cancelled());
        };
        const job: Job = {
          bytes,
          answer: runOptions.answer ?? 'sender',
          batchFormat: planned.batchFormat,
          tasks: planned.tasks,
          flow: flow as Flow,
          cancel: new Int32Array(new SharedArrayBuffer(4)),
          responses: planned.tasks.map(() => null),
          outcomes: new Array<number>(OUTCOMES.length).fill(0),
          next: 0,
          running: 0,
          finished: 0,
          decoderBug: null,
          settled: false,
          settle(result) {
            if (job.settled) return;
            job.settled = true;
            batchesInPool--;
            if (!result.ok) stop(job);
            signal?.removeEventListener('abort', onAbort);
            resolve(result);
          },
        };
        (flow as Flow).jobs.push(job);
        signal?.addEventListener('abort', onAbort, { once: true });
        pump();
      });
    },
    destroy: () => pool.destroy(),
  };
}

function cancelled(): PoolResult {
  return { ok: false, status: 'CANCELLED', message: 'the call was cancelled; its batch was abandoned' };
}

/**
 * The pool is ready once the workers answer: an empty batch per worker loads the decoder in each,
 * so the first real batches do not pay for it, and a pool that cannot decode fails at start, not later.
 */
async function warmUp(pool: Piscina<BatchTask, BatchOutcome>, poolSize: number, log: Logger): Promise<void> {
  let lastError: unknown = null;
  const empty = (): BatchTask => ({
    request: new ArrayBuffer(0),
    offset: 0,
    length: 0,
    answer: 'sender',
    batchFormat: 0,
    firstItem: 0,
    overBudget: [],
    budgetBytes: 0,
    cancel: null,
  });
  for (let attempt = 1; attempt <= WARM_UP_ATTEMPTS; attempt++) {
    const runs = await Promise.allSettled(Array.from({ length: poolSize }, () => pool.run(empty())));
    const failed = runs.find((run): run is PromiseRejectedResult => run.status === 'rejected');
    if (failed === undefined) return;
    lastError = failed.reason;
    log.warn({ err: lastError, attempt }, 'a decoding worker failed its warm-up batch');
  }
  await pool.destroy();
  throw new Error(`the decoding workers cannot start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}
