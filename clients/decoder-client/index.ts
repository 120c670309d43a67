/**
 * Where payloads are decoded: a running sidecar (`--sidecar HOST:PORT`, e.g. several behind a
 * load balancer), or one started in this process on a free loopback port, so that one command
 * does everything.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import type { OpenExtractStream } from './types.js';

export interface Decoder {
  readonly openStream: OpenExtractStream;
  /** `in-process sidecar on 127.0.0.1:PORT` or `sidecar at HOST:PORT`. */
  readonly description: string;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /** HOST:PORT of a running sidecar; undefined starts one in this process. */
  readonly sidecar?: string;
  /** Batches in flight on one stream. */
  readonly maxInFlightBatches: number;
  /** Decoding threads of the in-process sidecar (default: its own, the core count). */
  readonly workers?: number;
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
}

export async function openDecoder(options: DecoderOptions): Promise<Decoder> {
  const { SidecarClient } = await import('../sidecar-client.js');
  let shutdown: () => Promise<void> = async () => {};
  let address = options.sidecar;
  if (address === undefined) {
    const { startSidecar } = await import('../../services/sidecar/server.js');
    const running = await startSidecar({
      listen: '127.0.0.1:0',
      metricsListen: null,
      logLevel: 'warn',
      ...(options.workers === undefined ? {} : { poolSize: options.workers }),
    });
    address = running.address;
    shutdown = () => running.shutdown(1000);
  }
  const client = new SidecarClient({ address, maxInFlightBatches: options.maxInFlightBatches, tls: options.tls });
  return {
    openStream: (format: PayloadFormat) => client.openStream(format),
    description: options.sidecar === undefined ? `in-process sidecar on ${address}` : `sidecar at ${address}`,
    async close() {
      client.close();
      await shutdown();
    },
  };
}
