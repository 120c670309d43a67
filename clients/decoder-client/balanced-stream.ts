/**
 * The ExtractStream of a SidecarClient whose target names several sidecars (a list, or
 * dns:///NAME:PORT). The channel balances with grpc-js's round_robin policy, which picks a
 * sidecar per CALL: a bidi stream stays on the sidecar it was opened on for its whole life, so
 * here every request is its own unary ExtractSenderJid call, and every request is balanced.
 *
 * The same guarantees as the single-sidecar stream (sidecar-client.ts):
 * - requests are cut to the smallest limits any sidecar announced: openDecoder() asks every
 *   sidecar the target names at start, each alone (sidecar-probe.ts), and gives the client that
 *   ceiling; without it, a stream probes with an empty request (no items; the sidecar answers it
 *   without decoding anything) whose initial metadata carries the limits, as every stream's does
 *   (services/sidecar/request-limits.ts). Every answer's metadata lowers the limits further when
 *   its sidecar announces less (one that joined a dns:/// name later). A sidecar that still
 *   refuses a request for its size (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) fails the stream with
 *   an error that names the mismatch. A sidecar that announces nothing is assumed to run the
 *   defaults, as on a stream;
 * - at most maxInFlightBatches requests are sent and not yet handed back, and answers are handed
 *   back in the order the requests were made (a request answered early waits for the ones
 *   before it, and keeps its place in flight until then, so memory stays bounded);
 * - UNAVAILABLE (a sidecar killed, shutting down, not reachable) is retried per request with the
 *   client's backoff, up to maxRetries times; round_robin sends the retry to a sidecar that is
 *   READY. Decoding is pure, so a request answered twice is harmless;
 * - each call has the client's deadline (deadlineMs); DEADLINE_EXCEEDED and every other failure
 *   fail the stream (this request and every later one), as on a bidi stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { RequestLimits } from '../../services/sidecar/request-limits.js';
import { encodeBatch, SENDER_ANSWERS, type AnswerCodec } from './batch-codec.js';
import { isServiceError, isUnavailable, serviceError } from './decode-errors.js';
import { announcedLimits, extractInRequests } from './request-sizing.js';
import { UnsettledBatches } from './unsettled-batches.js';
import type { AnswerKind, ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './types.js';

/** What the balanced stream needs from its SidecarClient. */
export interface UnaryCalls {
  readonly maxInFlightBatches: number;
  readonly maxRetries: number;
  /** The smallest limits every sidecar announced at start, or null when not asked. */
  readonly ceilingLimits: RequestLimits | null;
  /** After DEADLINE_EXCEEDED: a fault no retry cures (a silent port, TLS mismatch), or null. */
  diagnose(): Promise<Error | null>;
  /** What --sidecar said, for messages. */
  readonly target: { readonly text: string };
  /** Wait before retry `attempt` (0-based) after UNAVAILABLE. */
  retryDelayMs(attempt: number): number;
  /** One unary call (ExtractSenderJid, or the RPC of `answers`) with the client's deadline: the answer and the server's initial metadata. */
  unaryCall(request: Buffer, answers?: AnswerKind): { call: grpc.ClientUnaryCall; answer: Promise<{ response: Buffer; metadata: grpc.Metadata | null }> };
}

interface PendingRequest<R> {
  readonly items: readonly ExtractItem[];
  readonly request: Buffer;
  /** The sidecar's answer, once it came (it may wait here for the requests before it). */
  response: Buffer | null;
  resolve(results: R[]): void;
  reject(error: unknown): void;
}

export class BalancedStream<R extends { readonly key: string } = ExtractResult> implements ExtractStream<R> {
  /** Requests made and not handed back yet, oldest first. */
  private readonly unanswered: PendingRequest<R>[] = [];
  private readonly waitingForRoom: (() => void)[] = [];
  private limits: RequestLimits | null = null;
  private learning: Promise<RequestLimits> | null = null;
  private failure: unknown = null;
  private ended = false;
  /** Calls in progress and backoff waits, to stop at once when the stream fails. */
  private readonly calls = new Set<grpc.ClientUnaryCall>();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; wake(): void }>();
  private readonly unsettled = new UnsettledBatches();

  constructor(
    private readonly client: UnaryCalls,
    private readonly format: PayloadFormat | undefined,
    /** Which RPC each request is, and how its answer is read (default: ExtractSenderJid). */
    private readonly answers: AnswerCodec<R> = SENDER_ANSWERS as unknown as AnswerCodec<R>,
  ) {}

  extract(items: ExtractItem[]): Promise<R[]> {
    if (this.ended) return Promise.reject(new Error('extract() after end() on a sidecar stream'));
    return this.unsettled.track(this.extractSized(items));
  }

  async end(): Promise<void> {
    this.ended = true;
    await this.unsettled.allSettled();
    if (this.failure !== null) throw this.failure;
  }

  private async extractSized(items: ExtractItem[]): Promise<R[]> {
    this.limits ??= this.client.ceilingLimits;
    const limits = this.limits ?? (await this.learnLimits());
    return extractInRequests(items, limits, (request) => this.extractInOrder(request), this.answers.tooLarge);
  }

  /** One probe per stream, shared by every extract() that waits for it. */
  private learnLimits(): Promise<RequestLimits> {
    if (this.failure !== null) return Promise.reject(this.failure);
    this.learning ??= this.withRetries(encodeBatch([], this.format)).then(({ metadata }) => {
      // Throws on a header that is present but not a whole number: the stream fails.
      const limits = announcedLimits(metadata);
      this.limits = limits;
      return limits;
    });
    return this.learning.catch((error: unknown) => {
      this.fail(error);
      throw this.failure;
    });
  }

  private async extractInOrder(items: ExtractItem[]): Promise<R[]> {
    while (this.failure === null && this.unanswered.length >= this.client.maxInFlightBatches) {
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
    // Encoded once there is room (a retry resends these bytes).
    const request = encodeBatch(items, this.format);
    return new Promise<R[]>((resolve, reject) => {
      const pending: PendingRequest<R> = { items, request, response: null, resolve, reject };
      this.unanswered.push(pending);
      const cutTo = this.limits;
      this.withRetries(request).then(
        ({ response, metadata }) => {
          this.lowerLimits(metadata);
          pending.response = response;
          this.handBack();
        },
        (error: unknown) => this.fail(this.namingMismatch(error, items.length, request.byteLength, cutTo)),
      );
    });
  }

  /** A sidecar that announces smaller limits than the stream cuts to: later requests are cut to them. */
  private lowerLimits(metadata: grpc.Metadata | null): void {
    if (metadata === null || this.limits === null) return;
    let announced: RequestLimits;
    try {
      announced = announcedLimits(metadata);
    } catch {
      return; // the probe's answer already failed the stream on such a header
    }
    if (announced.maxItemsPerBatch < this.limits.maxItemsPerBatch || announced.maxRequestBytes < this.limits.maxRequestBytes) {
      this.limits = {
        maxItemsPerBatch: Math.min(announced.maxItemsPerBatch, this.limits.maxItemsPerBatch),
        maxRequestBytes: Math.min(announced.maxRequestBytes, this.limits.maxRequestBytes),
      };
    }
  }

  /**
   * A refusal for size (INVALID_ARGUMENT for items, RESOURCE_EXHAUSTED for bytes) of a request cut
   * to limits the answering sidecar does not share: the error says so and what to do.
   */
  private namingMismatch(error: unknown, items: number, bytes: number, cutTo: RequestLimits | null): unknown {
    if (!isServiceError(error) || cutTo === null) return error;
    if (error.code !== grpc.status.INVALID_ARGUMENT && error.code !== grpc.status.RESOURCE_EXHAUSTED) return error;
    const metadata = (error as { initialMetadata?: grpc.Metadata | null }).initialMetadata ?? null;
    let theirs: RequestLimits | null;
    try {
      theirs = metadata === null ? null : announcedLimits(metadata);
    } catch {
      theirs = null;
    }
    const tooBig = theirs !== null && (items > theirs.maxItemsPerBatch || bytes > theirs.maxRequestBytes);
    if (!tooBig) return error;
    return serviceError(
      error.code,
      `${error.details} (a request of ${items} items, ${bytes} bytes, cut to max-items-per-batch=${cutTo.maxItemsPerBatch} and ` +
        `max-request-bytes=${cutTo.maxRequestBytes} as announced by the others, went to a sidecar that announces max-items-per-batch=${theirs!.maxItemsPerBatch} and ` +
        `max-request-bytes=${theirs!.maxRequestBytes}: the sidecars at ${this.client.target.text} run with different --max-items-per-batch ` +
        `or --max-request-bytes; give them all the same)`,
    );
  }

  /** One request, as many calls as UNAVAILABLE takes (each picked anew by round_robin). */
  private async withRetries(request: Buffer): Promise<{ response: Buffer; metadata: grpc.Metadata | null }> {
    for (let attempt = 0; ; attempt++) {
      if (this.failure !== null) throw this.failure;
      const { call, answer } = this.client.unaryCall(request, this.answers.kind);
      let initialMetadata: grpc.Metadata | null = null;
      call.on('metadata', (received: grpc.Metadata) => (initialMetadata = received));
      this.calls.add(call);
      try {
        return await answer;
      } catch (error) {
        if (this.failure !== null) throw this.failure;
        if (isServiceError(error) && error.code === grpc.status.DEADLINE_EXCEEDED) throw (await this.client.diagnose()) ?? error;
        if (!isUnavailable(error) || attempt >= this.client.maxRetries) throw Object.assign(error as object, { initialMetadata });
      } finally {
        this.calls.delete(call);
      }
      await this.pause(this.client.retryDelayMs(attempt));
    }
  }

  /** Hands back, in order, every answer no earlier request is still waiting for. */
  private handBack(): void {
    while (this.failure === null && this.unanswered.length > 0 && this.unanswered[0].response !== null) {
      const pending = this.unanswered.shift()!;
      try {
        pending.resolve(this.answers.decode(pending.items, pending.response!));
      } catch (error) {
        pending.reject(error);
        this.fail(error);
        return;
      }
      this.waitingForRoom.shift()?.();
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wait = {
        timer: setTimeout(() => {
          this.waits.delete(wait);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.waits.add(wait);
    });
  }

  /** The first failure ends the stream: calls cancelled, every request waiting rejected. */
  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const call of [...this.calls]) call.cancel();
    for (const wait of [...this.waits]) {
      clearTimeout(wait.timer);
      wait.wake();
    }
    this.waits.clear();
    for (const pending of this.unanswered.splice(0)) pending.reject(error);
    for (const wake of this.waitingForRoom.splice(0)) wake();
  }
}
