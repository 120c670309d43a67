/**
 * The gRPC sidecar: SenderJidService on a piscina pool, with health, reflection, limits, TLS,
 * metrics and a graceful shutdown. This module puts the rooms together: the request guard
 * (request-guard.ts), call tracking (call-tracker.ts), the two methods' handlers
 * (call-handlers.ts), the raw service (raw-service.ts) and the transport (server-credentials.ts).
 *
 * Requests stay raw bytes on the main thread (identity (de)serializers): a worker decodes the
 * protobuf, answers every item and encodes the response, so the main thread only moves buffers
 * and the event loop stays responsive under load.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { pino, type Logger } from 'pino';
import { configFrom, decodeLimitsOf, isLoopbackHost, parseHostPort, type SidecarConfig } from './config.js';
import { startDecodingPool } from './decoding-pool.js';
import { FILE_DESCRIPTOR_SET_BASE64 } from './gen/descriptor-set.js';
import { SidecarMetrics } from './metrics.js';
import { requestLimitsHeaders } from './request-limits.js';
import type { PlanSettings } from './request-scan.js';
import { OUTCOMES, type AnswerKind, type WorkerSettings } from './batch-protocol.js';
import { serviceHandlers, type Dispatched, type Rpc } from './call-handlers.js';
import { CallFailure, CallTracker } from './call-tracker.js';
import { handOver } from './hand-over.js';
import { RAW_SERVICE, SERVICE_NAME } from './raw-service.js';
import { requestGuard } from './request-guard.js';
import { serverCredentials } from './server-credentials.js';

export { SERVICE_NAME };

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

export type StartOptions = Partial<SidecarConfig> & {
  listen?: string;
  logger?: Logger;
  /**
   * The module the workers answer batches with (default ./worker.js; another must answer as its
   * default export does). Never from flags: it lets a test's own module crash or stall a worker
   * on a chosen key without such code in the worker that ships.
   */
  workerModule?: URL;
};

/**
 * Starts a sidecar. Unlike `mim-sender-jid serve`, an in-process sidecar serves metrics only when
 * `metricsListen` is given (tests and pipelines start several in one process).
 */
export async function startSidecar(options: StartOptions = {}): Promise<RunningSidecar> {
  const { logger: givenLogger, workerModule, ...settings } = options;
  const config = configFrom({ metricsListen: null, ...settings });
  const log = givenLogger ?? pino({ level: config.logLevel, base: { service: 'mim-sender-jid' } });
  const limits = decodeLimitsOf(config);

  const workerSettings: WorkerSettings = {
    limits,
    maxItemsPerBatch: config.maxItemsPerBatch,
  };
  const pool = await startDecodingPool({
    settings: workerSettings,
    plan: planSettingsOf(config),
    poolSize: config.poolSize,
    maxQueuedBatches: config.maxQueuedBatches,
    workerMaxHeapMb: config.workerMaxHeapMb,
    log,
    ...(workerModule === undefined ? {} : { workerModule }),
  });
  /**
   * Sent as the initial metadata of every call (stream or unary), so that clients cut their
   * batches to fit; a client balancing unary calls over several sidecars learns them from one.
   */
  const limitsMetadata = new grpc.Metadata();
  for (const [name, value] of requestLimitsHeaders(config)) limitsMetadata.set(name, value);

  const calls = new CallTracker();
  const metrics = new SidecarMetrics({
    queuedBatches: () => pool.queueSize,
    busyWorkers: () => pool.busyWorkers,
    callsInFlight: () => calls.inFlight,
    arrivingRequestBytes: () => guard.arrivingBytes(),
    workersStarted: () => pool.workersStarted,
  });
  const guard = requestGuard(config, log);

  async function dispatch(request: Buffer, signal: AbortSignal, flow?: object, answer: AnswerKind = 'sender'): Promise<Dispatched> {
    const startedAt = performance.now();
    const result = await pool.run(handOver(request), flow === undefined ? { signal, answer } : { signal, flow, answer });
    if (!result.ok) return { ok: false, startedAt, failure: new CallFailure(grpc.status[result.status], result.message) };
    const { outcomes, response } = result.answered;
    for (let i = 0; i < OUTCOMES.length; i++) {
      if (outcomes[i] > 0) metrics.items.inc({ outcome: OUTCOMES[i] }, outcomes[i]);
    }
    return { ok: true, startedAt, response: Buffer.from(response.buffer, response.byteOffset, response.byteLength) };
  }

  function record(rpc: Rpc, result: Dispatched, code: grpc.status): void {
    metrics.batches.inc({ rpc, status: grpc.status[code] });
    metrics.batchLatency.observe({ rpc }, (performance.now() - result.startedAt) / 1000);
  }

  const handlers = serviceHandlers({ dispatch, record, limitsMetadata, calls, streamWindowBatches: config.streamWindowBatches });

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxRequestBytes,
    'grpc.max_send_message_length': -1,
    'grpc.max_concurrent_streams': config.maxConcurrentStreams,
    'grpc-node.max_session_memory': config.maxSessionMemoryMb,
    // The guard comes first: it is handed grpc-js's own call, whose HTTP/2 stream it watches.
    interceptors: [guard.interceptor, calls.interceptor],
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
    throw new Error(`cannot listen on ${config.listen} (--listen): ${(error as Error).message}`, { cause: error });
  }
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;

  let metricsServer: { address: string; close(): Promise<void> } | null = null;
  if (config.metricsListen !== null) {
    try {
      metricsServer = await metrics.serve(config.metricsListen);
    } catch (error) {
      server.forceShutdown();
      await pool.destroy();
      throw new Error(`cannot serve metrics on ${config.metricsListen} (--metrics-listen): ${(error as Error).message}`, { cause: error });
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
      log.info({ callsInFlight: calls.inFlight, graceMs }, 'shutting down: health NOT_SERVING, finishing calls in flight');
      // Two signals, for two audiences. NOT_SERVING is for whoever polls the health service
      // (Kubernetes readiness probes drop the pod from a headless Service's DNS answers, so that
      // dns:/// targets stop resolving to it); grpc-js 1.14 clients do not watch it (no
      // client-side health checking). What keeps a grpc-js round_robin client's new calls off
      // this sidecar is tryShutdown(): it stops listening and closes each HTTP/2 session with
      // GOAWAY, on which the client's subchannel leaves READY and round_robin stops picking it
      // (its reconnect is refused); calls already here go on until they end or the grace is over.
      // See clients/decoder-client/sidecar-client.ts.
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const allCallsDone = calls.allDone();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const how = await Promise.race([allCallsDone.then(() => 'done' as const), graceOver]);
      clearTimeout(timer);
      if (how === 'grace-over') {
        // UNAVAILABLE, not a bare cancel: it tells clients to retry, elsewhere or after the restart.
        log.warn({ callsInFlight: calls.inFlight }, 'grace period over: ending calls still in flight with UNAVAILABLE');
        calls.endAll(new CallFailure(grpc.status.UNAVAILABLE, 'the sidecar is shutting down and its grace period is over; retry'));
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
