/**
 * The typed client of a remote sidecar (SenderJidService over gRPC), used by `--sidecar` and by
 * anyone talking to a sidecar from TypeScript.
 *
 * - `extract()`: one batch, one unary call, as given (no cutting: the server's limits apply);
 *   UNAVAILABLE (server restarting, connection lost) is retried with exponential backoff and jitter.
 * - `openStream().extract()`: batches of any size, cut to the server's request limits, answers in
 *   order, retried on UNAVAILABLE: an OrderedStream (ordered-stream.ts) to one sidecar, a
 *   BalancedStream (balanced-stream.ts) to several.
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
import { backoffDelay, sleep, type BackoffPolicy } from '../common/backoff.js';
import { SenderJidServiceDefinition } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import type { RequestLimits } from '../../services/sidecar/request-limits.js';
import { decodeAnswers, encodeBatch, FIELD_ANSWERS } from './batch-codec.js';
import { BalancedStream, type UnaryCalls } from './balanced-stream.js';
import { OrderedStream } from './ordered-stream.js';
import { isServiceError, isUnavailable } from './decode-errors.js';
import { checkSidecars, SidecarFaultError } from './sidecar-probe.js';
import { literalSidecarTarget, resolveSidecarTarget, SidecarTargetError, type SidecarTarget } from './sidecar-target.js';
import type { AnswerKind, ExtractItem, ExtractResult, ExtractStream, FieldsResult, PayloadFormat } from './types.js';

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
/**
 * Pauses between retries after UNAVAILABLE: retry n (from 0) waits between half and all of
 * 100 ms * 2^n, at most 5 s. The guaranteed half makes the default 8 retries span at least ~8 s,
 * enough for a sidecar to restart; the random half keeps many clients from retrying in step.
 */
const DECODE_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 5_000 };

const methodPath = (method: { readonly name: string }): string => `/${SenderJidServiceDefinition.fullName}/${method.name}`;
const UNARY_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJid);
const STREAM_PATH = methodPath(SenderJidServiceDefinition.methods.extractSenderJidStream);
const FIELDS_PATH = methodPath(SenderJidServiceDefinition.methods.extractMessageFields);

const passBytes = (bytes: Buffer): Buffer => bytes;

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
        await sleep(this.retryDelayMs(attempt));
      }
    }
  }

  openStream(format?: PayloadFormat): ExtractStream {
    return this.target.balanced ? new BalancedStream(this, format) : new OrderedStream(this, format);
  }

  /**
   * origin_id and is_groupchat (ExtractMessageFields), with the sender stream's cutting, limits,
   * order and retries. The RPC is unary only, so one sidecar is served as several are: a
   * BalancedStream of unary calls (on one sidecar, all on its one channel).
   */
  openFieldsStream(format?: PayloadFormat): ExtractStream<FieldsResult> {
    return new BalancedStream(this, format, FIELD_ANSWERS);
  }

  close(): void {
    this.client.close();
  }

  /** @internal */
  openBidi(): grpc.ClientDuplexStream<Buffer, Buffer> {
    return this.client.makeBidiStreamRequest(STREAM_PATH, passBytes, passBytes, new grpc.Metadata(), {});
  }

  /** The pause before retry `attempt` (from 0) after UNAVAILABLE (extract(), OrderedStream, BalancedStream). @internal */
  retryDelayMs(attempt: number): number {
    return backoffDelay(attempt + 1, DECODE_BACKOFF);
  }

  /** One unary call, with the server's initial metadata (extract() and BalancedStream). @internal */
  unaryCall(
    request: Buffer,
    answers: AnswerKind = 'sender',
  ): { call: grpc.ClientUnaryCall; answer: Promise<{ response: Buffer; metadata: grpc.Metadata | null }> } {
    let metadata: grpc.Metadata | null = null;
    let call!: grpc.ClientUnaryCall;
    const answer = new Promise<{ response: Buffer; metadata: grpc.Metadata | null }>((resolve, reject) => {
      call = this.client.makeUnaryRequest(
        answers === 'fields' ? FIELDS_PATH : UNARY_PATH,
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
