/**
 * The typed client of the sidecar (SenderJidService): the backend clients are built on it.
 *
 * - `extract()`: one batch, one unary call; UNAVAILABLE (server restarting, connection lost) is
 *   retried with exponential backoff and jitter.
 * - `openStream().extract()`: batches over one ExtractSenderJidStream with a bounded number of
 *   batches in flight; answers come back in order; on UNAVAILABLE the stream is reopened and the
 *   unanswered batches are sent again, in order (decoding is pure, so a resent batch is harmless).
 *
 * Requests are encoded once, so a retry does not encode again. Every other failure (bad
 * argument, RESOURCE_EXHAUSTED, a dead worker's INTERNAL) rejects with the grpc ServiceError
 * (`.code`, `.details`), for the caller to decide.
 */
import * as grpc from '@grpc/grpc-js';
import type { PayloadFormat } from '../services/decode/index.js';
import {
  ErrorCode,
  ExtractSenderJidRequest,
  ExtractSenderJidResponse,
  PayloadFormat as WireFormat,
  SenderJidServiceService,
} from '../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';

export type { PayloadFormat };

export interface ExtractItem {
  key: string;
  payload: Uint8Array;
  format?: PayloadFormat;
}
export type ErrorCodeName = 'malformed' | 'not_groupchat' | 'payload_too_large' | 'jid_without_local_part' | 'jid_without_domain';
export type ExtractResult =
  | { key: string; ok: true; bareJid: string; user: string; server: string }
  | { key: string; ok: false; code: ErrorCodeName; detail: string };

export interface SidecarClientOptions {
  /** host:port of the sidecar. */
  address: string;
  /** TLS (omit for plaintext): ca checks the server; cert and key are the client's, for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Stream: batches sent and not yet answered (default 4). */
  maxInFlightBatches?: number;
  /** Unary: deadline of one call; stream: longest wait for the next answer (default 60 s). */
  deadlineMs?: number;
  /** Retries after UNAVAILABLE before giving up (default 8: at least ~8 s, at most ~16 s of waiting). */
  maxRetries?: number;
}

export interface ExtractStream {
  /** Resolves with this batch's results, in order; waits for capacity when maxInFlightBatches are unanswered;
   *  on UNAVAILABLE reopens the stream and resends unanswered batches (bounded retries with backoff). */
  extract(items: ExtractItem[]): Promise<ExtractResult[]>;
  end(): Promise<void>;
}

export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 4;
export const DEFAULT_DEADLINE_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 8;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5_000;

const UNARY_PATH = SenderJidServiceService.extractSenderJid.path;
const STREAM_PATH = SenderJidServiceService.extractSenderJidStream.path;

const WIRE_FORMAT: Record<PayloadFormat, WireFormat> = {
  eterm: WireFormat.PAYLOAD_FORMAT_ETERM,
  xml: WireFormat.PAYLOAD_FORMAT_XML,
  auto: WireFormat.PAYLOAD_FORMAT_AUTO,
};

const CODE_NAME: Partial<Record<ErrorCode, ErrorCodeName>> = {
  [ErrorCode.ERROR_CODE_MALFORMED]: 'malformed',
  [ErrorCode.ERROR_CODE_NOT_GROUPCHAT]: 'not_groupchat',
  [ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE]: 'payload_too_large',
  [ErrorCode.ERROR_CODE_JID_WITHOUT_LOCAL_PART]: 'jid_without_local_part',
  [ErrorCode.ERROR_CODE_JID_WITHOUT_DOMAIN]: 'jid_without_domain',
};

const passBytes = (bytes: Buffer): Buffer => bytes;
const noop = (): void => {};

/** Encodes a batch once; retries resend these bytes. */
export function encodeBatch(items: readonly ExtractItem[], format?: PayloadFormat): Buffer {
  const bytes = ExtractSenderJidRequest.encode({
    format: format === undefined ? WireFormat.PAYLOAD_FORMAT_UNSPECIFIED : WIRE_FORMAT[format],
    items: items.map((item) => ({
      key: item.key,
      payload: item.payload,
      format: item.format === undefined ? WireFormat.PAYLOAD_FORMAT_UNSPECIFIED : WIRE_FORMAT[item.format],
    })),
  }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes an answer and checks it answers this batch: one result per item, keys in order. */
export function decodeAnswers(items: readonly { key: string }[], bytes: Uint8Array): ExtractResult[] {
  const { results } = ExtractSenderJidResponse.decode(bytes);
  if (results.length !== items.length) {
    throw new Error(`sidecar answered ${results.length} results for a batch of ${items.length} items`);
  }
  return results.map((result, i) => {
    const key = items[i].key;
    if (result.key !== key) throw new Error(`sidecar answered key ${JSON.stringify(result.key)} at ${i}, expected ${JSON.stringify(key)}`);
    if (result.jid !== undefined) {
      return { key, ok: true, bareJid: result.jid.bareJid, user: result.jid.user, server: result.jid.server };
    }
    if (result.error !== undefined) {
      const code = CODE_NAME[result.error.code];
      if (code === undefined) {
        // A code newer than this client: still a failure for this item, never a guessed JID.
        return { key, ok: false, code: 'malformed', detail: `unknown error code ${result.error.code}: ${result.error.detail}` };
      }
      return { key, ok: false, code, detail: result.error.detail };
    }
    throw new Error(`sidecar answered neither a jid nor an error for key ${JSON.stringify(key)}`);
  });
}

export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number';
}

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

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

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
    const answer = this.extractInOrder(items);
    // end() waits for every batch asked before it, also those still waiting for room.
    const settled = answer.then(noop, noop);
    this.outstanding.add(settled);
    void settled.then(() => this.outstanding.delete(settled));
    return answer;
  }

  private async extractInOrder(items: ExtractItem[]): Promise<ExtractResult[]> {
    const request = encodeBatch(items, this.format);
    while (this.failure === null && this.unanswered.length >= this.client.maxInFlightBatches) {
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
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
    call.on('data', (response: Buffer) => this.onAnswer(call, response));
    call.on('error', (error: unknown) => this.onCallError(call, error));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK && call === this.call && this.unanswered.length > 0) {
        this.fail(new Error(`sidecar ended the stream with ${this.unanswered.length} batches unanswered`));
      }
    });
    return call;
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
