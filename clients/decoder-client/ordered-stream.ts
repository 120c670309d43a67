/**
 * `SidecarClient.openStream()` to one sidecar: batches of any size over one
 * ExtractSenderJidStream. The stream first learns the server's request limits (initial metadata,
 * see services/sidecar/request-limits.ts) and cuts each batch into requests that fit; a bounded
 * number of requests are in flight; answers come back in order; on UNAVAILABLE the stream is
 * reopened and the unanswered requests are sent again, in order (decoding is pure, so a resent
 * request is harmless). Several sidecars go through BalancedStream (balanced-stream.ts) instead.
 */
import * as grpc from '@grpc/grpc-js';
import type { RequestLimits } from '../../services/sidecar/request-limits.js';
import { decodeAnswers, encodeBatch } from './batch-codec.js';
import { isUnavailable, serviceError } from './decode-errors.js';
import { announcedLimits, extractInRequests } from './request-sizing.js';
import type { SidecarClient } from './sidecar-client.js';
import { UnsettledBatches } from './unsettled-batches.js';
import type { ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './types.js';

interface PendingBatch {
  readonly items: readonly ExtractItem[];
  readonly request: Buffer;
  resolve(results: ExtractResult[]): void;
  reject(error: unknown): void;
}

/** ExtractStream over one bidi call at a time. */
export class OrderedStream implements ExtractStream {
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
  private watchdogGeneration = 0;
  private callClosed: Promise<void> = Promise.resolve();
  private readonly unsettled = new UnsettledBatches();

  constructor(
    private readonly client: SidecarClient,
    private readonly format: PayloadFormat | undefined,
  ) {}

  extract(items: ExtractItem[]): Promise<ExtractResult[]> {
    if (this.ended) return Promise.reject(new Error('extract() after end() on a sidecar stream'));
    return this.unsettled.track(this.extractSized(items));
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
    await this.unsettled.allSettled();
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
      limits = this.client.cutLimits(announcedLimits(metadata));
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
      }, this.client.retryDelayMs(attempt));
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
      this.watchdog = null;
      const generation = this.watchdogGeneration;
      const deadline = serviceError(grpc.status.DEADLINE_EXCEEDED, `no answer from the sidecar within ${this.client.deadlineMs} ms`);
      void this.client.diagnose().then((fault) => {
        // An answer that came while we looked re-armed or stopped the watchdog: nothing to fail.
        if (generation === this.watchdogGeneration) this.fail(fault ?? deadline);
      });
    }, this.client.deadlineMs);
  }

  private stopWatchdog(): void {
    this.watchdogGeneration++;
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}
