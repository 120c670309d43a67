/**
 * The typed client of a remote sidecar (SenderJidService over gRPC), used by `--sidecar` and by
 * anyone talking to a sidecar from TypeScript.
 *
 * - `extract()`: one batch, one unary call, as given (no cutting: the server's limits apply);
 *   UNAVAILABLE (server restarting, connection lost) is retried with exponential backoff and jitter.
 * - `openStream().extract()`: batches of any size over one ExtractSenderJidStream. The stream
 *   first learns the server's request limits (initial metadata, see
 *   services/sidecar/request-limits.ts) and cuts each batch into requests that fit; a bounded
 *   number of requests are in flight; answers come back in order; on UNAVAILABLE the stream is
 *   reopened and the unanswered requests are sent again, in order (decoding is pure, so a resent
 *   request is harmless).
 *
 * Requests are encoded once, so a retry does not encode again. Every other failure (bad
 * argument, RESOURCE_EXHAUSTED, a dead worker's INTERNAL) rejects with the grpc ServiceError
 * (`.code`, `.details`), for the caller to decide.
 */
import * as grpc from '@grpc/grpc-js';
import { SenderJidServiceDefinition } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { DEFAULT_REQUEST_LIMITS, requestLimitsFrom, type RequestLimits } from '../../services/sidecar/request-limits.js';
import { decodeAnswers, encodeBatch } from './batch-codec.js';
import { isServiceError, serviceError } from './decode-errors.js';
import { extractInRequests } from './request-sizing.js';
import type { ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './types.js';

export { decodeAnswers, encodeBatch, isServiceError };

export interface SidecarClientOptions {
  /** host:port of the sidecar. */
  address: string;
  /** TLS (omit for plaintext): ca checks the server; cert and key are the client's, for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Stream: requests sent and not yet answered (default 4). */
  maxInFlightBatches?: number;
  /** Unary: deadline of one call; stream: longest wait for the next answer (default 60 s). */
  deadlineMs?: number;
  /** Retries after UNAVAILABLE before giving up (default 8: at least ~8 s, at most ~16 s of waiting). */
  maxRetries?: number;
}

export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 4;
export const DEFAULT_DEADLINE_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 8;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5_000;

const methodPath = (method: { readonly name: string }): string => `/${SenderJidServiceDefinition.fullName}/${method.name}`;
const UNARY_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJid);
const STREAM_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJidStream);

const passBytes = (bytes: Buffer): Buffer => bytes;
const noop = (): void => {};

function isUnavailable(error: unknown): boolean {
  return isServiceError(error) && error.code === grpc.status.UNAVAILABLE;
}

/**
 * Exponential backoff with "equal jitter": retry n waits between half and all of 100 ms * 2^n
 * (at most 5 s). The guaranteed half makes the default 8 retries span at least ~8 s, enough
 * for a sidecar to restart; the random half keeps many clients from retrying in step.
 */
export function backoffMs(attempt: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class SidecarClient {
  private readonly client: grpc.Client;
  readonly maxInFlightBatches: number;
  readonly deadlineMs: number;
  readonly maxRetries: number;

  constructor(opts: SidecarClientOptions) {
    const credentials =
      opts.tls === undefined
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(opts.tls.ca ?? null, opts.tls.key ?? null, opts.tls.cert ?? null);
    this.client = new grpc.Client(opts.address, credentials, {
      // A batch of 10,000 answers can exceed grpc's default 4 MiB; the server bounds what it sends.
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    this.maxInFlightBatches = positive(opts.maxInFlightBatches ?? DEFAULT_MAX_IN_FLIGHT_BATCHES, 'maxInFlightBatches');
    this.deadlineMs = positive(opts.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs');
    this.maxRetries = Math.max(0, Math.floor(opts.maxRetries ?? DEFAULT_MAX_RETRIES));
  }

  /** One batch over the unary rpc. Results in the items' order. */
  async extract(items: ExtractItem[], format?: PayloadFormat): Promise<ExtractResult[]> {
    const request = encodeBatch(items, format);
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.unary(request);
        return decodeAnswers(items, response);
      } catch (error) {
        if (!isUnavailable(error) || attempt >= this.maxRetries) throw error;
        await sleep(backoffMs(attempt));
      }
    }
  }

  openStream(format?: PayloadFormat): ExtractStream {
    return new OrderedStream(this, format);
  }

  close(): void {
    this.client.close();
  }

  /** @internal */
  openBidi(): grpc.ClientDuplexStream<Buffer, Buffer> {
    return this.client.makeBidiStreamRequest(STREAM_PATH, passBytes, passBytes, new grpc.Metadata(), {});
  }

  private unary(request: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        UNARY_PATH,
        passBytes,
        passBytes,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error, response) => (error ? reject(error) : resolve(response as Buffer)),
      );
    });
  }
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number >= 1, got ${value}`);
  return value;
}

interface PendingBatch {
  readonly items: readonly ExtractItem[];
  readonly request: Buffer;
  resolve(results: ExtractResult[]): void;
  reject(error: unknown): void;
}

/** ExtractStream over one bidi call at a time; see the module comment. */
class OrderedStream implements ExtractStream {
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | null = null;
  /** Sent (or to be resent after a reopen) and not answered yet, oldest first. */
  private readonly unanswered: PendingBatch[] = [];
  private readonly waitingForRoom: (() => void)[] = [];
  /** The request limits the server of the current call announced; null until its metadata came. */
  private limits: RequestLimits | null = null;
  private readonly waitingForLimits: { resolve(limits: RequestLimits): void; reject(error: unknown): void }[] = [];
  private failure: unknown = null;
  private ended = false;
  private reopening = false;
  /** UNAVAILABLE errors since the last answer. */
  private retries = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private callClosed: Promise<void> = Promise.resolve();
  /** Every extract() not yet settled (a promise that never rejects). */
  private readonly outstanding = new Set<Promise<void>>();

  constructor(
    private readonly client: SidecarClient,
    private readonly format: PayloadFormat | undefined,
  ) {}

  extract(items: ExtractItem[]): Promise<ExtractResult[]> {
    if (this.ended) return Promise.reject(new Error('extract() after end() on a sidecar stream'));
    const answer = this.extractSized(items);
    // end() waits for every batch asked before it, also those still waiting for room.
    const settled = answer.then(noop, noop);
    this.outstanding.add(settled);
    void settled.then(() => this.outstanding.delete(settled));
    return answer;
  }

  private async extractSized(items: ExtractItem[]): Promise<ExtractResult[]> {
    const limits = this.limits ?? (await this.learnLimits());
    return extractInRequests(items, limits, (request) => this.extractInOrder(request));
  }

  /** Opens the call if need be and waits for the server's limits (its initial metadata). */
  private learnLimits(): Promise<RequestLimits> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<RequestLimits>((resolve, reject) => {
      this.waitingForLimits.push({ resolve, reject });
      if (!this.reopening) {
        this.ensureCall();
        // A server that never answers the call's headers is as stuck as one that never answers a batch.
        this.armWatchdog();
      }
    });
  }

  private async extractInOrder(items: ExtractItem[]): Promise<ExtractResult[]> {
    while (this.failure === null && this.unanswered.length >= this.client.maxInFlightBatches) {
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
    // Encoded once there is room, so a big batch cut in many requests holds one copy per request in flight.
    const request = encodeBatch(items, this.format);
    return new Promise<ExtractResult[]>((resolve, reject) => {
      const batch: PendingBatch = { items, request, resolve, reject };
      this.unanswered.push(batch);
      if (!this.reopening) this.send(batch);
    });
  }

  async end(): Promise<void> {
    this.ended = true;
    await Promise.all([...this.outstanding]);
    this.stopWatchdog();
    if (this.call !== null) {
      this.call.end();
      await this.callClosed;
      this.call = null;
    }
    if (this.failure !== null) throw this.failure;
  }

  private send(batch: PendingBatch): void {
    // Memory is bounded by maxInFlightBatches, so write()'s backpressure signal needs no wait here.
    this.ensureCall().write(batch.request);
    this.armWatchdog();
  }

  private ensureCall(): grpc.ClientDuplexStream<Buffer, Buffer> {
    if (this.call !== null) return this.call;
    const call = this.client.openBidi();
    this.call = call;
    this.callClosed = new Promise<void>((resolve) => call.on('status', () => resolve()));
    call.on('metadata', (metadata: grpc.Metadata) => this.onMetadata(call, metadata));
    call.on('data', (response: Buffer) => this.onAnswer(call, response));
    call.on('error', (error: unknown) => this.onCallError(call, error));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code !== grpc.status.OK || call !== this.call) return;
      if (this.unanswered.length > 0) this.fail(new Error(`sidecar ended the stream with ${this.unanswered.length} batches unanswered`));
      else if (this.waitingForLimits.length > 0) this.fail(new Error('sidecar ended the stream before sending its headers'));
      else this.call = null; // nothing lost: the next request opens a new call
    });
    return call;
  }

  private onMetadata(call: grpc.ClientDuplexStream<Buffer, Buffer>, metadata: grpc.Metadata): void {
    if (call !== this.call) return;
    let limits: RequestLimits;
    try {
      const first = (name: string): string | undefined => {
        const values = metadata.get(name);
        return values.length === 0 ? undefined : String(values[0]);
      };
      // A server that announces nothing (another implementation) is assumed to run the defaults.
      limits = requestLimitsFrom(first) ?? DEFAULT_REQUEST_LIMITS;
    } catch (error) {
      this.fail(error);
      return;
    }
    this.limits = limits;
    if (this.unanswered.length === 0) this.stopWatchdog();
    for (const waiter of this.waitingForLimits.splice(0)) waiter.resolve(limits);
  }

  private onAnswer(call: grpc.ClientDuplexStream<Buffer, Buffer>, response: Buffer): void {
    if (call !== this.call) return;
    const batch = this.unanswered.shift();
    if (batch === undefined) {
      this.fail(new Error('sidecar answered a batch that was not asked'));
      return;
    }
    this.retries = 0;
    try {
      batch.resolve(decodeAnswers(batch.items, response));
    } catch (error) {
      batch.reject(error);
      this.fail(error);
      return;
    }
    if (this.unanswered.length === 0) this.stopWatchdog();
    else this.armWatchdog();
    this.waitingForRoom.shift()?.();
  }

  private onCallError(call: grpc.ClientDuplexStream<Buffer, Buffer>, error: unknown): void {
    if (call !== this.call) return;
    this.call = null;
    if (isUnavailable(error) && this.retries < this.client.maxRetries && this.failure === null) {
      const attempt = this.retries++;
      this.reopening = true;
      this.stopWatchdog();
      setTimeout(() => {
        this.reopening = false;
        if (this.failure !== null) return;
        // The new call announces its server's limits again; requests already cut are resent as
        // they are (a sidecar restarted with lower limits refuses them: the stream then fails).
        if (this.waitingForLimits.length > 0) {
          this.ensureCall();
          this.armWatchdog();
        }
        for (const batch of this.unanswered) this.send(batch);
      }, backoffMs(attempt));
      return;
    }
    this.fail(error);
  }

  private fail(error: unknown): void {
    if (this.failure === null) this.failure = error;
    this.stopWatchdog();
    const call = this.call;
    this.call = null;
    call?.cancel();
    for (const batch of this.unanswered.splice(0)) batch.reject(this.failure);
    for (const waiter of this.waitingForLimits.splice(0)) waiter.reject(this.failure);
    for (const wake of this.waitingForRoom.splice(0)) wake();
  }

  private armWatchdog(): void {
    this.stopWatchdog();
    this.watchdog = setTimeout(() => {
      this.fail(serviceError(grpc.status.DEADLINE_EXCEEDED, `no answer from the sidecar within ${this.client.deadlineMs} ms`));
    }, this.client.deadlineMs);
  }

  private stopWatchdog(): void {
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}
