/**
 * The one way to decode batches: `openDecoder()` gives decoding streams, either straight from a
 * pool of decoding workers in this process (the default), or over gRPC from a running sidecar
 * (`--sidecar HOST:PORT`, e.g. several behind a load balancer). Both run the same worker on the
 * same encoded batches and answer alike; both cut a batch of any size into requests that fit.
 *
 *   in-process.ts      the pool path (no socket)
 *   remote-stream.ts   SidecarClient: the gRPC path, also for direct use from TypeScript
 *   request-sizing.ts  cutting batches into requests, joining the answers
 *   batch-codec.ts     a batch as the workers read it, their answer as results
 */
import { InProcessDecoder } from './in-process.js';
import { SidecarClient } from './remote-stream.js';
import type { ExtractStream, PayloadFormat } from './types.js';

export type { ErrorCodeName, ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './types.js';
export { SidecarClient, type SidecarClientOptions } from './remote-stream.js';
export { InProcessDecoder, type InProcessDecoderOptions } from './in-process.js';

export interface Decoder {
  /** A fresh decoding stream (again after a failure). */
  openStream(format: PayloadFormat): ExtractStream;
  /** `in-process decoding pool (N workers)` or `sidecar at HOST:PORT`. */
  readonly description: string;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /** HOST:PORT of a running sidecar; undefined decodes in this process. */
  readonly sidecar?: string;
  /** Requests in flight on one stream. */
  readonly maxInFlightBatches: number;
  /** Decoding threads in this process (default: the core count); not used with a sidecar. */
  readonly workers?: number;
  /** TLS to the sidecar (omit for plaintext). */
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
}

export async function openDecoder(options: DecoderOptions): Promise<Decoder> {
  if (options.sidecar === undefined) {
    const pool = await InProcessDecoder.start({
      maxInFlightBatches: options.maxInFlightBatches,
      ...(options.workers === undefined ? {} : { workers: options.workers }),
    });
    return {
      openStream: (format) => pool.openStream(format),
      description: `in-process decoding pool (${pool.workers} workers)`,
      close: () => pool.close(),
    };
  }
  const address = options.sidecar;
  const client = new SidecarClient({ address, maxInFlightBatches: options.maxInFlightBatches, tls: options.tls });
  return {
    openStream: (format) => client.openStream(format),
    description: `sidecar at ${address}`,
    async close() {
      client.close();
    },
  };
}
