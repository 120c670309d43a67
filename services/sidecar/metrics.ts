/**
 * Prometheus metrics of one sidecar, on their own registry (two sidecars in one process, as in
 * tests, do not mix their numbers), served as GET /metrics on --metrics-listen.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseHostPort } from './config.js';
import { OUTCOMES } from './batch-protocol.js';

export interface PoolGauges {
  queuedBatches(): number;
  busyWorkers(): number;
  callsInFlight(): number;
  /** Bytes (as announced) of request messages still arriving. */
  arrivingRequestBytes(): number;
  /** Worker threads started so far (a replaced worker counts again). */
  workersStarted(): number;
}

export class SidecarMetrics {
  readonly registry = new Registry();
  /** Items answered, by outcome (jid, malformed, not_groupchat, ...). */
  readonly items: Counter<'outcome'>;
  /** Batches by rpc and grpc status code name. */
  readonly batches: Counter<'rpc' | 'status'>;
  /** From a batch's arrival to its answer being handed to grpc. */
  readonly batchLatency: Histogram<'rpc'>;

  constructor(pool: PoolGauges) {
    const registers = [this.registry];
    this.items = new Counter({
      name: 'mim_sender_jid_items_total',
      help: 'Items answered, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of OUTCOMES) this.items.inc({ outcome }, 0);
    this.batches = new Counter({
      name: 'mim_sender_jid_batches_total',
      help: 'Batches, by rpc and grpc status',
      labelNames: ['rpc', 'status'],
      registers,
    });
    this.batchLatency = new Histogram({
      name: 'mim_sender_jid_batch_duration_seconds',
      help: 'Time from a batch arriving to its answer being sent',
      labelNames: ['rpc'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Gauge({
      name: 'mim_sender_jid_queue_depth',
      help: 'Batches waiting for a free worker',
      registers,
      collect() {
        this.set(pool.queuedBatches());
      },
    });
    new Gauge({
      name: 'mim_sender_jid_busy_workers',
      help: 'Workers decoding a batch right now',
      registers,
      collect() {
        this.set(pool.busyWorkers());
      },
    });
    new Gauge({
      name: 'mim_sender_jid_calls_in_flight',
      help: 'SenderJidService calls begun and not yet finished (requests still arriving included)',
      registers,
      collect() {
        this.set(pool.callsInFlight());
      },
    });
    new Gauge({
      name: 'mim_sender_jid_arriving_request_bytes',
      help: 'Request messages still arriving, at their announced size (bounded by --max-arriving-request-bytes)',
      registers,
      collect() {
        this.set(pool.arrivingRequestBytes());
      },
    });
    new Gauge({
      name: 'mim_sender_jid_workers_started',
      help: 'Decoding worker threads started since the start: the pool size, plus one for each worker replaced',
      registers,
      collect() {
        this.set(pool.workersStarted());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'mim_sender_jid_' });
  }

  /** Serves GET /metrics on host:port; resolves with the address bound. */
  async serve(listen: string): Promise<{ address: string; close(): Promise<void> }> {
    const { host, port } = parseHostPort(listen, '--metrics-listen');
    const server: Server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address() as AddressInfo;
    const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
    return {
      address,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
}
