/**
 * Decoding in this process, without a loopback hop: batches go straight to the piscina pool of
 * decoding workers (services/sidecar/decoding-pool.ts), the same worker and batch protocol a
 * sidecar runs. A request is encoded once into memory of its own, transferred (not copied) to a
 * worker, and its encoded answer comes back by structured clone; no socket, no HTTP/2 framing,
 * no second parse on the main thread, which also drives the database.
 *
 * Same contract as the remote stream: batches of any size are cut to the same limits (so a
 * batch spreads over the workers the same way), at most maxInFlightBatches requests per stream
 * are in the pool, answers come back in order, and a failure is a grpc-style ServiceError
 * (INTERNAL for a worker that died) that ends the stream.
 */
import { availableParallelism } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import type { BatchBytes, WorkerSettings } from '../../services/sidecar/batch-protocol.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../../services/decode/index.js';
import { startDecodingPool, type DecodingPool } from '../../services/sidecar/decoding-pool.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../services/sidecar/request-limits.js';
import { DEFAULT_MAX_REQUEST_DECOMPRESSED_BYTES, DEFAULT_TASK_SLICE_BYTES, DEFAULT_WORKER_MAX_HEAP_MB } from '../../services/sidecar/config.js';
import { encodeBatch, FIELD_ANSWERS, SENDER_ANSWERS, type AnswerCodec } from './batch-codec.js';
import { serviceError } from './decode-errors.js';
import { extractInRequests } from './request-sizing.js';
import { UnsettledBatches } from './unsettled-batches.js';
import type { ExtractItem, ExtractStream, FieldsResult, PayloadFormat } from './types.js';

export interface InProcessDecoderOptions {
  /** Decoding threads (default: the core count). */
  readonly workers?: number;
  /** Requests of one stream in the pool at once. */
  readonly maxInFlightBatches: number;
  /** How batches are cut (default: a sidecar's defaults, 10,000 items and 64 MiB per request). */
  readonly requestLimits?: RequestLimits;
  /** Decoding limits of the workers (default: the decoder's, as a sidecar's). */
  readonly decodeLimits?: DecodeLimits;
  /** Worker deaths and decoder bugs are logged here (default: JSON on stdout at level warn). */
  readonly logger?: Logger;
}

export class InProcessDecoder {
  private constructor(
    private readonly pool: DecodingPool,
    readonly requestLimits: RequestLimits,
    readonly maxInFlightBatches: number,
  ) {}

  /** Starts the workers and waits until each has loaded the decoder. */
  static async start(options: InProcessDecoderOptions): Promise<InProcessDecoder> {
    const requestLimits = options.requestLimits ?? DEFAULT_REQUEST_LIMITS;
    const settings: WorkerSettings = {
      limits: options.decodeLimits ?? DEFAULT_DECODE_LIMITS,
      maxItemsPerBatch: requestLimits.maxItemsPerBatch,
    };
    const log = options.logger ?? pino({ level: 'warn', base: { service: 'mim-sender-jid' } });
    const poolSize = options.workers ?? availableParallelism();
    // No queue bound: every stream bounds its own requests in flight, and nothing here is shared
    // with strangers (a sidecar's --max-queued-batches protects it from its many callers).
    const plan = {
      maxItemsPerBatch: requestLimits.maxItemsPerBatch,
      maxPayloadBytes: settings.limits.maxPayloadBytes,
      maxDecompressedBytes: settings.limits.maxDecompressedBytes,
      maxRequestDecompressedBytes: DEFAULT_MAX_REQUEST_DECOMPRESSED_BYTES,
      taskSliceBytes: DEFAULT_TASK_SLICE_BYTES,
    };
    const pool = await startDecodingPool({ settings, plan, poolSize, maxQueuedBatches: null, workerMaxHeapMb: DEFAULT_WORKER_MAX_HEAP_MB, log });
    return new InProcessDecoder(pool, requestLimits, positive(options.maxInFlightBatches));
  }

  get workers(): number {
    return this.pool.poolSize;
  }

  openStream(format?: PayloadFormat): ExtractStream {
    return new PoolStream(this.pool, this.requestLimits, this.maxInFlightBatches, format, SENDER_ANSWERS);
  }

  /** The same stream answering origin_id and is_groupchat (the sidecar's ExtractMessageFields, run by the same workers). */
  openFieldsStream(format?: PayloadFormat): ExtractStream<FieldsResult> {
    return new PoolStream(this.pool, this.requestLimits, this.maxInFlightBatches, format, FIELD_ANSWERS);
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

function positive(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`maxInFlightBatches must be a whole number >= 1, got ${value}`);
  return value;
}

class PoolStream<R extends { readonly key: string }> implements ExtractStream<R> {
  private inFlight = 0;
  private readonly waitingForRoom: (() => void)[] = [];
  private failure: unknown = null;
  private ended = false;
  private readonly unsettled = new UnsettledBatches();

  constructor(
    private readonly pool: DecodingPool,
    private readonly limits: RequestLimits,
    private readonly maxInFlight: number,
    private readonly format: PayloadFormat | undefined,
    private readonly answers: AnswerCodec<R>,
  ) {}

  extract(items: ExtractItem[]): Promise<R[]> {
    if (this.ended) return Promise.reject(new Error('extract() after end() on a decoding stream'));
    if (this.failure !== null) return Promise.reject(this.failure);
    return this.unsettled.track(extractInRequests(items, this.limits, (request) => this.decode(request), this.answers.tooLarge));
  }

  async end(): Promise<void> {
    this.ended = true;
    await this.unsettled.allSettled();
    if (this.failure !== null) throw this.failure;
  }

  private async decode(items: ExtractItem[]): Promise<R[]> {
    while (this.failure === null && this.inFlight >= this.maxInFlight) {
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
    this.inFlight++;
    try {
      const result = await this.pool.run(taskOf(encodeBatch(items, this.format)), { answer: this.answers.kind });
      if (!result.ok) throw this.fail(serviceError(grpc.status[result.status], result.message));
      return this.answers.decode(items, result.answered.response);
    } catch (error) {
      throw this.fail(error);
    } finally {
      this.inFlight--;
      this.waitingForRoom.shift()?.();
    }
  }

  /** The first failure ends the stream, as a failed call ends a remote one; returns it. */
  private fail(error: unknown): unknown {
    if (this.failure === null) this.failure = error;
    for (const wake of this.waitingForRoom.splice(0)) wake();
    return this.failure;
  }
}

/** The encoded request as a task whose memory the worker may take (transfer detaches it here). */
function taskOf(request: Buffer): BatchBytes {
  const memory = request.buffer;
  if (memory instanceof ArrayBuffer && request.byteOffset === 0 && request.byteLength === memory.byteLength) {
    return { request: memory, offset: 0, length: request.byteLength };
  }
  // Not the exact-size array encodeBatch makes: never transfer memory something else may share.
  const copy = new ArrayBuffer(request.byteLength);
  new Uint8Array(copy).set(request);
  return { request: copy, offset: 0, length: copy.byteLength };
}
