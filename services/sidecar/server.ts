/**
 * The gRPC sidecar: SenderJidService on a piscina pool, with health, reflection, limits, TLS,
 * metrics and a graceful shutdown.
 *
 * Requests stay raw bytes on the main thread (identity (de)serializers): a worker decodes the
 * protobuf, answers every item and encodes the response, so the main thread only moves buffers
 * and the event loop stays responsive under load.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { pino, type Logger } from 'pino';
import { configFrom, decodeLimitsOf, isLoopbackHost, parseHostPort, type SidecarConfig } from './config.js';
import { startDecodingPool } from './decoding-pool.js';
import { FILE_DESCRIPTOR_SET_BASE64 } from './gen/descriptor-set.js';
import { SenderJidServiceDefinition, protobufPackage } from './gen/mongooseim/mam/v1/sender_jid.js';
import { SidecarMetrics } from './metrics.js';
import { requestLimitsHeaders } from './request-limits.js';
import type { PlanSettings } from './request-scan.js';
import { OUTCOMES, type BatchBytes, type WorkerSettings } from './batch-protocol.js';

export const SERVICE_NAME = `${protobufPackage}.SenderJidService`;

/** At shutdown, time for the last answers to leave before connections are cut. */
const FLUSH_BEFORE_CLOSE_MS = 200;

export interface RunningSidecar {
  /** host:port actually bound (the real port when 0 was asked). */
  readonly address: string;
  /** host:port of GET /metrics, or null when metrics are off. */
  readonly metricsAddress: string | null;
  readonly config: SidecarConfig;
  /**
   * Health turns NOT_SERVING, new calls are refused, calls in flight get graceMs to finish
   * (default: config.shutdownGraceMs), then whatever is left is cancelled and the pool stopped.
   */
  shutdown(graceMs?: number): Promise<void>;
  /** The pool's state now (also in the metrics): for tests and diagnostics. */
  stats(): SidecarStats;
}

export interface SidecarStats {
  readonly busyWorkers: number;
  readonly queuedBatches: number;
  /** Worker tasks finished since the start. */
  readonly tasksDone: number;
  /** Worker threads started since the start: poolSize, plus one per worker replaced. */
  readonly workersStarted: number;
  readonly workerThreadIds: readonly number[];
  /** Bytes (as announced) of request messages still arriving. */
  readonly arrivingRequestBytes: number;
}

export type StartOptions = Partial<SidecarConfig> & { listen?: string; logger?: Logger };

type RawMethod<RequestStream extends boolean, ResponseStream extends boolean> = grpc.MethodDefinition<Buffer, Buffer> & {
  requestStream: RequestStream;
  responseStream: ResponseStream;
};

const identity = (bytes: Buffer): Buffer => bytes;

/** The HTTP/2 path of a method of SenderJidService, e.g. `/mongooseim.mam.v1.SenderJidService/ExtractSenderJid`. */
export function methodPath(method: { readonly name: string }): string {
  return `/${SenderJidServiceDefinition.fullName}/${method.name}`;
}

/** A grpc-js method definition from the generated plain description, with byte-for-byte (de)serializers. */
function rawMethod<Req extends boolean, Res extends boolean>(
  key: string,
  method: { readonly name: string; readonly requestStream: Req; readonly responseStream: Res },
): RawMethod<Req, Res> {
  return {
    path: methodPath(method),
    originalName: key,
    requestStream: method.requestStream,
    responseStream: method.responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The service with byte-for-byte (de)serializers: workers do the protobuf work. */
const RAW_SERVICE = {
  extractSenderJid: rawMethod('extractSenderJid', SenderJidServiceDefinition.methods.extractSenderJid),
  extractSenderJidStream: rawMethod('extractSenderJidStream', SenderJidServiceDefinition.methods.extractSenderJidStream),
};

/** A call's failure, as the grpc status it ends with. */
class CallFailure extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
  }
}

type Dispatched = { ok: true; response: Buffer; startedAt: number } | { ok: false; failure: CallFailure; startedAt: number };

/**
 * Starts a sidecar. Unlike `mim-sender-jid serve`, an in-process sidecar serves metrics only when
 * `metricsListen` is given (tests and pipelines start several in one process).
 */
export async function startSidecar(options: StartOptions = {}): Promise<RunningSidecar> {
  const { logger: givenLogger, ...settings } = options;
  const config = configFrom({ metricsListen: null, ...settings });
  const log = givenLogger ?? pino({ level: config.logLevel, base: { service: 'mim-sender-jid' } });
  const limits = decodeLimitsOf(config);

  const workerSettings: WorkerSettings = {
    limits,
    maxItemsPerBatch: config.maxItemsPerBatch,
    crashWorkerOnKey: config.testHooks?.crashWorkerOnKey ?? null,
    stallWorkerOnKey: config.testHooks?.stallWorkerOnKey ?? null,
    stallMs: config.testHooks?.stallMs ?? 0,
  };
  const pool = await startDecodingPool({
    settings: workerSettings,
    plan: planSettingsOf(config),
    poolSize: config.poolSize,
    maxQueuedBatches: config.maxQueuedBatches,
    workerMaxHeapMb: config.workerMaxHeapMb,
    log,
  });
  /**
   * Sent as the initial metadata of every call (stream or unary), so that clients cut their
   * batches to fit; a client balancing unary calls over several sidecars learns them from one.
   */
  const limitsMetadata = new grpc.Metadata();
  for (const [name, value] of requestLimitsHeaders(config)) limitsMetadata.set(name, value);

  /** SenderJidService calls not yet finished: shutdown waits for these, not for health watches. */
  let callsInFlight = 0;
  let callsDone: (() => void) | null = null;

  const metrics = new SidecarMetrics({
    queuedBatches: () => pool.queueSize,
    busyWorkers: () => pool.busyWorkers,
    callsInFlight: () => callsInFlight,
    arrivingRequestBytes: () => guard.arrivingBytes(),
    workersStarted: () => pool.workersStarted,
  });
  const guard = requestGuard(config, log);

  /**
   * Counts SenderJidService calls from their first byte to their status (or cancellation), so that
   * a shutdown also waits for a call whose request is still arriving (its handler has not run yet).
   */
  const countCalls: grpc.ServerInterceptor = (method, call) => {
    if (!method.path.startsWith(`/${SERVICE_NAME}/`)) return new grpc.ServerInterceptingCall(call);
    let counted = false;
    const finished = (): void => {
      if (!counted) return;
      counted = false;
      callsInFlight--;
      if (callsInFlight === 0 && callsDone !== null) callsDone();
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        counted = true;
        callsInFlight++;
        next({ onCancel: finished });
      },
      sendStatus: (status, next) => {
        next(status);
        finished();
      },
    });
  };

  /** How to end each call being answered with a status, for a shutdown whose grace period is over. */
  const inFlightEnders = new Set<(failure: CallFailure) => void>();

  function callStarted(endWith: (failure: CallFailure) => void): () => void {
    inFlightEnders.add(endWith);
    return () => inFlightEnders.delete(endWith);
  }

  async function dispatch(request: Buffer, signal: AbortSignal, flow?: object): Promise<Dispatched> {
    const startedAt = performance.now();
    const result = await pool.run(handOver(request), flow === undefined ? { signal } : { signal, flow });
    if (!result.ok) return { ok: false, startedAt, failure: new CallFailure(grpc.status[result.status], result.message) };
    const { outcomes, response } = result.answered;
    for (let i = 0; i < OUTCOMES.length; i++) {
      if (outcomes[i] > 0) metrics.items.inc({ outcome: OUTCOMES[i] }, outcomes[i]);
    }
    return { ok: true, startedAt, response: Buffer.from(response.buffer, response.byteOffset, response.byteLength) };
  }

  function record(rpc: string, result: Dispatched, code: grpc.status): void {
    metrics.batches.inc({ rpc, status: grpc.status[code] });
    metrics.batchLatency.observe({ rpc }, (performance.now() - result.startedAt) / 1000);
  }

  const handlers: grpc.UntypedServiceImplementation = {
    extractSenderJid(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      // The limits, as a stream announces them: a balanced client probes them with an empty request.
      call.sendMetadata(limitsMetadata.clone());
      const abort = new AbortController();
      let answered = false;
      const done = callStarted((failure) => {
        answered = true;
        abort.abort();
        callback({ code: failure.code, details: failure.details });
      });
      call.on('cancelled', () => abort.abort());
      dispatch(call.request, abort.signal).then((result) => {
        done();
        if (answered) return;
        if (result.ok) {
          record('unary', result, grpc.status.OK);
          callback(null, result.response);
        } else {
          record('unary', result, result.failure.code);
          callback({ code: result.failure.code, details: result.failure.details });
        }
      }, (error: unknown) => {
        done();
        callback({ code: grpc.status.INTERNAL, details: String(error) });
      });
    },
    extractSenderJidStream(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      answerStream(call);
    },
  };

  /**
   * Batches in, answers out in the same order. Flow control: at most streamWindowBatches batches
   * of this stream are in work or waiting to be written; at that point the stream is paused, so
   * grpc stops reading it and HTTP/2 flow control holds the producer back. A write that grpc
   * cannot take at once (backpressure) also stops the answering until 'drain'.
   */
  function answerStream(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    // Before anything else: the client waits for these limits to cut its first batch.
    call.sendMetadata(limitsMetadata.clone());
    const done = callStarted((failure) => finish(failure));
    limitReadAhead(call);
    const abort = new AbortController();
    const inWork: Promise<Dispatched>[] = [];
    let paused = false;
    let writing = false;
    let finished = false;
    let requestsEnded = false;

    const finish = (failure: CallFailure | null): void => {
      if (finished) return;
      finished = true;
      done();
      if (failure === null) {
        call.end();
      } else {
        abort.abort(); // batches still in work for this stream are abandoned
        call.emit('error', { code: failure.code, details: failure.details });
      }
    };
    call.on('cancelled', () => {
      abort.abort();
      finished = true;
      done();
    });
    call.on('error', () => {
      /* grpc-js turns the emitted error into the call's status */
    });
    call.on('data', (request: Buffer) => {
      if (finished) return;
      inWork.push(dispatch(request, abort.signal, call)); // one flow: the stream's batches take turns with other calls as one
      if (inWork.length >= config.streamWindowBatches && !paused) {
        paused = true;
        call.pause();
      }
      void writeAnswers();
    });
    call.on('end', () => {
      requestsEnded = true;
      if (inWork.length === 0 && !writing) finish(null);
    });

    async function writeAnswers(): Promise<void> {
      if (writing) return;
      writing = true;
      try {
        while (inWork.length > 0 && !finished) {
          const result = await (inWork[0] as Promise<Dispatched>);
          if (finished) return;
          if (!result.ok) {
            record('stream', result, result.failure.code);
            finish(result.failure);
            return;
          }
          record('stream', result, grpc.status.OK);
          const accepted = call.write(result.response);
          if (!accepted) await drained(call);
          inWork.shift();
          if (paused && inWork.length < config.streamWindowBatches && !finished) {
            paused = false;
            call.resume();
          }
        }
      } finally {
        writing = false;
      }
      if (requestsEnded && inWork.length === 0) finish(null);
    }
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxRequestBytes,
    'grpc.max_send_message_length': -1,
    'grpc.max_concurrent_streams': config.maxConcurrentStreams,
    'grpc-node.max_session_memory': config.maxSessionMemoryMb,
    // The guard comes first: it is handed grpc-js's own call, whose HTTP/2 stream it watches.
    interceptors: [guard.interceptor, countCalls],
  });
  server.addService(RAW_SERVICE, handlers);

  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  // Reflection describes SenderJidService and grpc.health.v1 from descriptors compiled by buf.
  new ReflectionService(protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64'))).addToServer(server);

  const credentials = serverCredentials(config);
  const { host } = parseHostPort(config.listen, '--listen');
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(config.listen, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
    );
  } catch (error) {
    await pool.destroy();
    throw new Error(`cannot listen on ${config.listen} (--listen): ${(error as Error).message}`);
  }
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;

  let metricsServer: { address: string; close(): Promise<void> } | null = null;
  if (config.metricsListen !== null) {
    try {
      metricsServer = await metrics.serve(config.metricsListen);
    } catch (error) {
      server.forceShutdown();
      await pool.destroy();
      throw new Error(`cannot serve metrics on ${config.metricsListen} (--metrics-listen): ${(error as Error).message}`);
    }
  }
  if (config.tlsCert === null && !isLoopbackHost(host)) {
    log.warn(
      { address },
      `gRPC is served WITHOUT TLS on ${address}, which is not a loopback address: anyone who can reach it can decode through this sidecar and see the payloads on the wire; give --tls-cert and --tls-key, or listen on 127.0.0.1`,
    );
  }
  if (config.metricsListen !== null && !isLoopbackHost(parseHostPort(config.metricsListen, '--metrics-listen').host)) {
    log.warn(
      { metrics: metricsServer?.address ?? config.metricsListen },
      `metrics are served (plain HTTP, no authentication) on ${config.metricsListen}, which is not a loopback address; use --metrics-listen 127.0.0.1:PORT unless the network is trusted`,
    );
  }
  log.info(
    {
      address,
      metrics: metricsServer?.address ?? null,
      tls: config.tlsCert === null ? 'off' : config.tlsClientCa === null ? 'tls' : 'mutual-tls',
      poolSize: config.poolSize,
      limits: {
        maxItemsPerBatch: config.maxItemsPerBatch,
        maxPayloadBytes: config.maxPayloadBytes,
        maxRequestBytes: config.maxRequestBytes,
        maxDecompressedBytes: config.maxDecompressedBytes,
        maxQueuedBatches: config.maxQueuedBatches,
        streamWindowBatches: config.streamWindowBatches,
        maxRequestDecompressedBytes: config.maxRequestDecompressedBytes,
        taskSliceBytes: config.taskSliceBytes,
        workerMaxHeapMb: config.workerMaxHeapMb,
        maxConcurrentStreams: config.maxConcurrentStreams,
        maxSessionMemoryMb: config.maxSessionMemoryMb,
        maxArrivingRequestBytes: config.maxArrivingRequestBytes,
        requestIdleTimeoutMs: config.requestIdleTimeoutMs,
      },
    },
    'sidecar serving',
  );

  let stopping: Promise<void> | null = null;
  async function shutdown(graceMs: number = config.shutdownGraceMs): Promise<void> {
    stopping ??= (async () => {
      log.info({ callsInFlight, graceMs }, 'shutting down: health NOT_SERVING, finishing calls in flight');
      // Two signals, for two audiences. NOT_SERVING is for whoever polls the health service
      // (Kubernetes readiness probes drop the pod from a headless Service's DNS answers, so that
      // dns:/// targets stop resolving to it); grpc-js 1.14 clients do not watch it (no
      // client-side health checking). What keeps a grpc-js round_robin client's new calls off
      // this sidecar is tryShutdown(): it stops listening and closes each HTTP/2 session with
      // GOAWAY, on which the client's subchannel leaves READY and round_robin stops picking it
      // (its reconnect is refused); calls already here go on until they end or the grace is over.
      // See clients/decoder-client/remote-stream.ts.
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const allCallsDone = new Promise<void>((resolve) => {
        callsDone = resolve;
        if (callsInFlight === 0) resolve();
      });
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const how = await Promise.race([allCallsDone.then(() => 'done' as const), graceOver]);
      clearTimeout(timer);
      if (how === 'grace-over') {
        // UNAVAILABLE, not a bare cancel: it tells clients to retry, elsewhere or after the restart.
        log.warn({ callsInFlight }, 'grace period over: ending calls still in flight with UNAVAILABLE');
        const failure = new CallFailure(grpc.status.UNAVAILABLE, 'the sidecar is shutting down and its grace period is over; retry');
        for (const endWith of [...inFlightEnders]) endWith(failure);
      }
      // The last answers (or statuses) were handed to HTTP/2 a moment ago: let them reach the
      // socket. Health watches never end by themselves, so the server may not close on its own.
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, FLUSH_BEFORE_CLOSE_MS).unref())]);
      server.forceShutdown();
      await closed;
      await pool.destroy();
      await metricsServer?.close();
      log.info('sidecar stopped');
    })();
    return stopping;
  }

  const stats = (): SidecarStats => ({
    busyWorkers: pool.busyWorkers,
    queuedBatches: pool.queueSize,
    tasksDone: pool.tasksDone,
    workersStarted: pool.workersStarted,
    workerThreadIds: pool.threadIds,
    arrivingRequestBytes: guard.arrivingBytes(),
  });
  return { address, metricsAddress: metricsServer?.address ?? null, config, shutdown, stats };
}

function planSettingsOf(config: SidecarConfig): PlanSettings {
  return {
    maxItemsPerBatch: config.maxItemsPerBatch,
    maxPayloadBytes: config.maxPayloadBytes,
    maxDecompressedBytes: config.maxDecompressedBytes,
    maxRequestDecompressedBytes: config.maxRequestDecompressedBytes,
    taskSliceBytes: config.taskSliceBytes,
  };
}

/** The part of grpc-js's own server call (BaseServerInterceptingCall) the guard uses. */
interface GrpcBaseCall {
  readonly stream?: http2.ServerHttp2Stream;
  sendStatus(status: grpc.StatusObject): void;
}

/**
 * What the server holds for request messages still arriving, bounded. grpc-js gathers a message
 * in memory until its last byte (up to --max-request-bytes), for as long as the client takes, and
 * reads a stream's bytes as they come (HTTP/2 flow control does not hold them back). So the guard
 * reads the gRPC framing of each call's stream beside grpc-js (a listener put before grpc-js's):
 *
 * - a message announced over --max-request-bytes is refused with RESOURCE_EXHAUSTED naming the
 *   flag (grpc-js would refuse it too, without the flag's name);
 * - a message is counted at its announced size from its first byte to its last, all calls
 *   together; one that would take the count over --max-arriving-request-bytes is refused with
 *   RESOURCE_EXHAUSTED at once (its bytes are not waited for);
 * - a message whose bytes stop coming for --request-idle-timeout-ms is dropped (DEADLINE_EXCEEDED).
 *
 * A refused call gets its status, then its stream is reset, so that grpc-js lets go of the bytes
 * it had gathered and the client stops sending.
 */
function requestGuard(config: SidecarConfig, log: Logger): { interceptor: grpc.ServerInterceptor; arrivingBytes(): number } {
  let arriving = 0;
  const interceptor: grpc.ServerInterceptor = (method, call) => {
    const base = call as unknown as GrpcBaseCall;
    const stream = base.stream;
    if (!method.path.startsWith(`/${SERVICE_NAME}/`) || stream === undefined) return call as grpc.ServerInterceptingCall;
    let header = Buffer.alloc(0);
    let remaining = 0;
    let reserved = 0;
    let refused = false;
    let timer: NodeJS.Timeout | null = null;
    const release = (): void => {
      arriving -= reserved;
      reserved = 0;
    };
    const disarm = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    const refuse = (code: grpc.status, details: string): void => {
      if (refused) return;
      refused = true;
      disarm();
      release();
      log.warn({ path: method.path, code: grpc.status[code], details }, 'request refused while arriving');
      // Headers already sent (a stream's limits): the status goes as trailers, once grpc-js has
      // ended the data ('wantTrailers'); otherwise as a trailers-only response, at once.
      const trailersLater = stream.headersSent;
      base.sendStatus({ code, details, metadata: new grpc.Metadata() });
      // After the status (frames leave in order): RST_STREAM(NO_ERROR) tells the client to stop
      // sending, and grpc-js's stream, with the bytes it gathered, is released.
      const reset = (): void => {
        setImmediate(() => {
          if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
        });
      };
      if (trailersLater) {
        stream.once('wantTrailers', reset); // after grpc-js's own listener, which sends the trailers
        setTimeout(reset, 1_000).unref(); // a peer that never takes the data would hold it otherwise
      } else {
        reset();
      }
    };
    const arm = (): void => {
      if (config.requestIdleTimeoutMs === 0) return;
      disarm();
      timer = setTimeout(() => {
        refuse(
          grpc.status.DEADLINE_EXCEEDED,
          `no bytes of the request message came for ${config.requestIdleTimeoutMs} ms (--request-idle-timeout-ms); it was dropped with the ${reserved} bytes announced`,
        );
      }, config.requestIdleTimeoutMs);
      timer.unref();
    };
    const onData = (chunk: Buffer): void => {
      if (refused) return;
      let at = 0;
      while (at < chunk.length) {
        if (remaining === 0) {
          const take = Math.min(GRPC_FRAME_HEADER_BYTES - header.length, chunk.length - at);
          header = Buffer.concat([header, chunk.subarray(at, at + take)]);
          at += take;
          if (header.length < GRPC_FRAME_HEADER_BYTES) break;
          const length = header.readUInt32BE(1);
          header = Buffer.alloc(0);
          if (length > config.maxRequestBytes) {
            refuse(
              grpc.status.RESOURCE_EXHAUSTED,
              `request message of ${length} bytes is over the limit max-request-bytes=${config.maxRequestBytes} (--max-request-bytes)`,
            );
            return;
          }
          if (arriving + length > config.maxArrivingRequestBytes) {
            refuse(
              grpc.status.RESOURCE_EXHAUSTED,
              `the server already receives ${arriving} bytes of requests; ${length} more would go over max-arriving-request-bytes=${config.maxArrivingRequestBytes} (--max-arriving-request-bytes); retry later`,
            );
            return;
          }
          remaining = length;
          reserved = length;
          arriving += length;
          if (remaining === 0) release();
        } else {
          const take = Math.min(remaining, chunk.length - at);
          remaining -= take;
          at += take;
          if (remaining === 0) release();
        }
      }
      if (remaining > 0 || header.length > 0) arm();
      else disarm();
    };
    stream.prependListener('data', onData);
    stream.once('close', () => {
      disarm();
      release();
    });
    return call as grpc.ServerInterceptingCall;
  };
  return { interceptor, arrivingBytes: () => arriving };
}

/** Bytes of gRPC's message framing (compressed flag, length) before a message in its buffer. */
const GRPC_FRAME_HEADER_BYTES = 5;

/**
 * The request's memory, for transfer to a worker. grpc-js gathers each message larger than a few
 * KiB into a buffer of its own (the framed message: 5 header bytes, then the message to the end)
 * and keeps no use for it once the handler has it: that buffer is given away as it is, with no
 * copy. Anything else (a small message in Buffer's shared pool, any other layout) is copied once
 * into memory of its own.
 */
export function handOver(request: Buffer): BatchBytes {
  const memory = request.buffer;
  const ownsItsMemory =
    memory instanceof ArrayBuffer &&
    memory.byteLength > Buffer.poolSize &&
    request.byteOffset <= GRPC_FRAME_HEADER_BYTES &&
    request.byteOffset + request.byteLength === memory.byteLength;
  if (ownsItsMemory) return { request: memory, offset: request.byteOffset, length: request.byteLength };
  const copy = new ArrayBuffer(request.byteLength);
  new Uint8Array(copy).set(request);
  return { request: copy, offset: 0, length: copy.byteLength };
}

function serverCredentials(config: SidecarConfig): grpc.ServerCredentials {
  if (config.tlsCert === null || config.tlsKey === null) return grpc.ServerCredentials.createInsecure();
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read ${flag} ${file}: ${(error as Error).message}`);
    }
  };
  const pair = { cert_chain: read(config.tlsCert, '--tls-cert'), private_key: read(config.tlsKey, '--tls-key') };
  const clientCa = config.tlsClientCa === null ? null : read(config.tlsClientCa, '--tls-client-ca');
  return grpc.ServerCredentials.createSsl(clientCa, [pair], clientCa !== null);
}

/**
 * A Node readable in object mode reads ahead up to 16 messages on its own, whatever pause()
 * says; with requests of up to max-request-bytes each that is a lot of memory per stream. One
 * is enough: flow control is ours (the stream window) and HTTP/2's.
 */
function limitReadAhead(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
  const state = (call as unknown as { _readableState?: { highWaterMark?: number } })._readableState;
  if (state !== undefined && typeof state.highWaterMark === 'number') state.highWaterMark = 1;
}

function drained(call: grpc.ServerDuplexStream<Buffer, Buffer>): Promise<void> {
  return new Promise<void>((resolve) => {
    const settle = (): void => {
      call.off('drain', settle);
      call.off('cancelled', settle);
      call.off('close', settle);
      resolve();
    };
    call.on('drain', settle);
    call.on('cancelled', settle);
    call.on('close', settle);
  });
}
