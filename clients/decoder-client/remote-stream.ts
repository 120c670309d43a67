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
 *
 * Several sidecars: `address` may also be a list `HOST:PORT,HOST:PORT,...` or `dns:///NAME:PORT`
 * (sidecar-target.ts; a list naming hosts needs `SidecarClient.open()`, which looks them up).
 * The channel then balances with grpc-js's own round_robin policy (service config below; no
 * balancer of ours), and `openStream()` is a BalancedStream (balanced-stream.ts): one unary call
 * per request, since round_robin picks a sidecar per call and a bidi stream would stay on one.
 * A single HOST:PORT goes exactly the way it always went: grpc-js's default target and policy,
 * one bidi stream per openStream().
 *
 * What keeps new requests off a sidecar that is draining (SIGTERM): grpc-js 1.14 does NOT
 * implement client-side health checking (gRFC A17): its service-config parser ignores
 * `healthCheckConfig`, and its subchannels report themselves healthy always (Subchannel.isHealthy()
 * returns true, addHealthStateWatcher is a no-op), so the sidecar's health NOT_SERVING is not
 * seen by this channel (it is for Kubernetes readiness probes, which take the pod out of a
 * headless Service's DNS answers, i.e. out of what dns:/// resolves to). What does work: the
 * draining sidecar calls grpc-js's server.tryShutdown(), which stops listening and closes every
 * HTTP/2 session with GOAWAY (Node's Http2Session.close()). On GOAWAY grpc-js's transport reports
 * a disconnect, the subchannel goes READY -> IDLE, and round_robin rebuilds its picker from the
 * READY subchannels only; its reconnect attempt is refused (nobody listens any more), so that
 * address stays out until it serves again. A call that races the GOAWAY is refused by the server
 * (REFUSED_STREAM) and retried transparently by grpc-js on another pick; calls already running
 * there finish within the sidecar's --shutdown-grace-ms, or end UNAVAILABLE and are retried
 * here. A sidecar killed outright drops its connection: same state change, and its calls in
 * flight end UNAVAILABLE ("Connection dropped") and are retried here.
 */
import * as grpc from '@grpc/grpc-js';
import { SenderJidServiceDefinition } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import type { RequestLimits } from '../../services/sidecar/request-limits.js';
import { decodeAnswers, encodeBatch } from './batch-codec.js';
import { BalancedStream, type UnaryCalls } from './balanced-stream.js';
import { isServiceError, isUnavailable, serviceError } from './decode-errors.js';
import { announcedLimits, extractInRequests } from './request-sizing.js';
import { UnsettledBatches } from './unsettled-batches.js';
import { checkSidecars, SidecarFaultError } from './sidecar-probe.js';
import { literalSidecarTarget, resolveSidecarTarget, SidecarTargetError, type SidecarTarget } from './sidecar-target.js';
import type { ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './types.js';

export { decodeAnswers, encodeBatch, isServiceError };

export interface SidecarClientOptions {
  /** host:port of the sidecar; or several: `host:port,host:port,...` or `dns:///NAME:PORT` (balanced). */
  address: string;
  /** TLS (omit for plaintext): ca checks the server; cert and key are the client's, for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /**
   * Stream: requests sent and not yet answered (default 4; balanced: 4 per resolved address of
   * a list, or 16 for dns:///, see DEFAULT_BALANCED_IN_FLIGHT_PER_SIDECAR).
   */
  maxInFlightBatches?: number;
  /** Unary: deadline of one call; stream: longest wait for the next answer (default 60 s). */
  deadlineMs?: number;
  /** Retries after UNAVAILABLE before giving up (default 8: at least ~8 s, at most ~16 s of waiting). */
  maxRetries?: number;
  /**
   * Requests are never cut larger than these, whatever a stream's server announces: the smallest
   * limits of every sidecar behind a balanced target (sidecar-probe.ts), since round_robin may
   * hand any request to any of them.
   */
  ceilingLimits?: RequestLimits;
}

export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 4;
export const DEFAULT_DEADLINE_MS = 60_000;
/**
 * Retries of one decoding call on a sidecar that answered UNAVAILABLE, inside the client (not the
 * walk's own `--max-retries`, which restarts the walk from its checkpoints after anything transient).
 */
export const DEFAULT_DECODE_RETRIES = 8;
/**
 * Balanced targets: the default bound on requests in flight is this many per sidecar. One
 * sidecar is kept busy by DEFAULT_MAX_IN_FLIGHT_BATCHES requests (one decoding while the next
 * arrive and the last answer leaves); round_robin hands out requests in turn, so N sidecars need
 * N times that for each to have as much work as a lone sidecar would. A list says N at start;
 * dns:/// does not (grpc-js resolves it, and the answer changes), so it gets a fixed
 * DEFAULT_DNS_MAX_IN_FLIGHT_BATCHES, four sidecars' worth. Only a default: a caller's own bound
 * wins (`migrate` passes its --concurrency, which bounds its batches in flight anyway).
 */
export const DEFAULT_BALANCED_IN_FLIGHT_PER_SIDECAR = DEFAULT_MAX_IN_FLIGHT_BATCHES;
export const DEFAULT_DNS_MAX_IN_FLIGHT_BATCHES = 16;
/** grpc-js's own round_robin, chosen through the channel's service config. */
export const ROUND_ROBIN_SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5_000;

const methodPath = (method: { readonly name: string }): string => `/${SenderJidServiceDefinition.fullName}/${method.name}`;
const UNARY_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJid);
const STREAM_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJidStream);

const passBytes = (bytes: Buffer): Buffer => bytes;

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

export class SidecarClient implements UnaryCalls {
  private readonly client: grpc.Client;
  readonly maxInFlightBatches: number;
  readonly deadlineMs: number;
  readonly maxRetries: number;
  /** What the channel connects to: one sidecar, or several balanced by round_robin. */
  readonly target: SidecarTarget;
  /** See SidecarClientOptions.ceilingLimits; set by openDecoder() once it has asked every sidecar. */
  ceilingLimits: RequestLimits | null;
  private readonly tls: SidecarClientOptions['tls'];

  /**
   * `opts.address` may name one sidecar, a list of IP addresses, or dns:///NAME:PORT; a list
   * naming hosts must be looked up first: use `SidecarClient.open()`.
   */
  constructor(opts: SidecarClientOptions, target?: SidecarTarget) {
    const credentials =
      opts.tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(opts.tls.ca ?? null, opts.tls.key ?? null, opts.tls.cert ?? null);
    const resolved = target ?? literalSidecarTarget(opts.address, opts.tls !== undefined);
    if (resolved === null) {
      throw new SidecarTargetError(`'${opts.address}' names hosts: use SidecarClient.open() (or openDecoder()), which looks them up first`);
    }
    this.target = resolved;
    if (!resolved.balanced) {
      this.client = new grpc.Client(opts.address, credentials, {
        // A batch of 10,000 answers can exceed grpc's default 4 MiB; the server bounds what it sends.
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
      });
    } else {
      const serverName = resolved.tlsServerName;
      this.client = new grpc.Client(resolved.grpcTarget, credentials, {
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
        'grpc.service_config': ROUND_ROBIN_SERVICE_CONFIG,
        // No service config from DNS TXT records: the balancing is ours to choose, not the zone's.
        'grpc.service_config_disable_resolution': 1,
        // A list of names became IP addresses: the certificates are still checked against the name.
        ...(serverName === undefined ? {} : { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName }),
      });
    }
    const defaultInFlight = !resolved.balanced
      ? DEFAULT_MAX_IN_FLIGHT_BATCHES
      : resolved.addresses === null
        ? DEFAULT_DNS_MAX_IN_FLIGHT_BATCHES
        : DEFAULT_BALANCED_IN_FLIGHT_PER_SIDECAR * resolved.addresses.length;
    this.maxInFlightBatches = positive(opts.maxInFlightBatches ?? defaultInFlight, 'maxInFlightBatches');
    this.deadlineMs = positive(opts.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs');
    this.maxRetries = Math.max(0, Math.floor(opts.maxRetries ?? DEFAULT_DECODE_RETRIES));
    this.ceilingLimits = opts.ceilingLimits ?? null;
    this.tls = opts.tls;
  }

  /**
   * After a wait that ran out (DEADLINE_EXCEEDED), a look below gRPC at the target's sidecars:
   * the SidecarFaultError of one that is silent or speaks the wrong TLS (not load: the run must
   * not retry it), or null (a busy sidecar: the deadline stands, and is retried). @internal
   */
  async diagnose(): Promise<SidecarFaultError | null> {
    try {
      await checkSidecars(this.target, { tls: this.tls });
      return null;
    } catch (error) {
      return error instanceof SidecarFaultError ? error : null;
    }
  }

  /** The limits to cut requests to, given what one server announced. @internal */
  cutLimits(announced: RequestLimits): RequestLimits {
    return smallerLimits(announced, this.ceilingLimits);
  }

  /** A client for any target `--sidecar` takes: the host names of a list are looked up first (once). */
  static async open(opts: SidecarClientOptions): Promise<SidecarClient> {
    return new SidecarClient(opts, await resolveSidecarTarget(opts.address, { tls: opts.tls !== undefined }));
  }

  /** One batch over the unary rpc. Results in the items' order. */
  async extract(items: ExtractItem[], format?: PayloadFormat): Promise<ExtractResult[]> {
    const request = encodeBatch(items, format);
    for (let attempt = 0; ; attempt++) {
      try {
        const { response } = await this.unaryCall(request).answer;
        return decodeAnswers(items, response);
      } catch (error) {
        if (!isUnavailable(error) || attempt >= this.maxRetries) throw error;
        await sleep(backoffMs(attempt));
      }
    }
  }

  openStream(format?: PayloadFormat): ExtractStream {
    return this.target.balanced ? new BalancedStream(this, format) : new OrderedStream(this, format);
  }

  close(): void {
    this.client.close();
  }

  /** @internal */
  openBidi(): grpc.ClientDuplexStream<Buffer, Buffer> {
    return this.client.makeBidiStreamRequest(STREAM_PATH, passBytes, passBytes, new grpc.Metadata(), {});
  }

  /** @internal (BalancedStream) */
  retryDelayMs(attempt: number): number {
    return backoffMs(attempt);
  }

  /** One unary call, with the server's initial metadata (extract() and BalancedStream). @internal */
  unaryCall(request: Buffer): { call: grpc.ClientUnaryCall; answer: Promise<{ response: Buffer; metadata: grpc.Metadata | null }> } {
    let metadata: grpc.Metadata | null = null;
    let call!: grpc.ClientUnaryCall;
    const answer = new Promise<{ response: Buffer; metadata: grpc.Metadata | null }>((resolve, reject) => {
      call = this.client.makeUnaryRequest(
        UNARY_PATH,
        passBytes,
        passBytes,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error, response) => (error ? reject(error) : resolve({ response: response as Buffer, metadata })),
      );
    });
    call.on('metadata', (received: grpc.Metadata) => (metadata = received));
    return { call, answer };
  }
}

export function smallerLimits(a: RequestLimits, b: RequestLimits | null): RequestLimits {
  if (b === null) return a;
  return { maxItemsPerBatch: Math.min(a.maxItemsPerBatch, b.maxItemsPerBatch), maxRequestBytes: Math.min(a.maxRequestBytes, b.maxRequestBytes) };
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
