/**
 * The one way to decode batches: `openDecoder()` gives decoding streams, either straight from a
 * pool of decoding workers in this process (the default), or over gRPC from a running sidecar
 * (`--sidecar HOST:PORT`; or several sidecars, `HOST:PORT,HOST:PORT` or `dns:///NAME:PORT`,
 * balanced by grpc-js's round_robin). Both run the same worker on the same encoded batches and
 * answer alike; both cut a batch of any size into requests that fit.
 *
 *   in-process.ts      the pool path (no socket)
 *   sidecar-client.ts   SidecarClient: the gRPC path, also for direct use from TypeScript
 *   balanced-stream.ts the gRPC path over several sidecars: one balanced unary call per request
 *   sidecar-target.ts  what --sidecar may name, and the grpc-js target it becomes
 *   sidecar-probe.ts   faults no retry cures (silent port, TLS mismatch), every sidecar's limits
 *   request-sizing.ts  cutting batches into requests, joining the answers
 *   batch-codec.ts     a batch as the workers read it, their answer as results
 */
import { InProcessDecoder } from './in-process.js';
import { SidecarClient } from './sidecar-client.js';
import type { DecodeLimits } from '../../services/decode/index.js';
import { checkSidecars, smallestAnnouncedLimits } from './sidecar-probe.js';
import type { AnswerKind, ExtractStream, FieldsResult, PayloadFormat } from './types.js';

export type {
  AnswerKind,
  ErrorCodeName,
  ExtractItem,
  ExtractResult,
  ExtractStream,
  FieldAnswer,
  FieldErrorCode,
  FieldsResult,
  PayloadFormat,
} from './types.js';
export { SidecarClient, type SidecarClientOptions } from './sidecar-client.js';
export { parseSidecarTarget, resolveSidecarTarget, SidecarTargetError, type SidecarTarget } from './sidecar-target.js';
export { InProcessDecoder, type InProcessDecoderOptions } from './in-process.js';
export { SidecarFaultError } from './sidecar-probe.js';

export interface Decoder {
  /** A fresh decoding stream (again after a failure). */
  openStream(format: PayloadFormat): ExtractStream;
  /** A fresh stream answering origin_id and is_groupchat (ExtractMessageFields), batched, limited and retried as `openStream`'s. */
  openFieldsStream(format: PayloadFormat): ExtractStream<FieldsResult>;
  /** `in-process decoding pool (N workers)`, `sidecar at HOST:PORT` or `N sidecars at ... (round_robin)`. */
  readonly description: string;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /**
   * HOST:PORT of a running sidecar, or several (`HOST:PORT,HOST:PORT,...`, whose host names are
   * looked up once here, or `dns:///NAME:PORT`); undefined decodes in this process.
   */
  readonly sidecar?: string;
  /** Requests in flight on one stream (with several sidecars: across all of them). */
  readonly maxInFlightBatches: number;
  /** Decoding threads in this process (default: the core count); not used with a sidecar. */
  readonly workers?: number;
  /** TLS to the sidecar (omit for plaintext). */
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Decoding limits in this process (default: the decoder's); a sidecar keeps its own. */
  readonly decodeLimits?: DecodeLimits | undefined;
}

export async function openDecoder(options: DecoderOptions): Promise<Decoder> {
  if (options.sidecar === undefined) {
    const pool = await InProcessDecoder.start({
      maxInFlightBatches: options.maxInFlightBatches,
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      ...(options.decodeLimits === undefined ? {} : { decodeLimits: options.decodeLimits }),
    });
    return {
      openStream: (format) => pool.openStream(format),
      openFieldsStream: (format) => pool.openFieldsStream(format),
      description: `in-process decoding pool (${pool.workers} workers)`,
      close: () => pool.close(),
    };
  }
  const address = options.sidecar;
  const client = await SidecarClient.open({ address, maxInFlightBatches: options.maxInFlightBatches, tls: options.tls });
  const { target } = client;
  try {
    // Faults no retry cures (a silent port, TLS spoken on one side only, a certificate not
    // trusted) end the run here, with what to fix, instead of being retried as load.
    await checkSidecars(target, { tls: options.tls });
    if (target.balanced) {
      const smallest = await smallestAnnouncedLimits(target, { tls: options.tls });
      if (smallest !== null) client.ceilingLimits = smallest.limits;
    }
  } catch (error) {
    client.close();
    throw error;
  }
  let description = `sidecar at ${address}`;
  if (target.balanced) {
    description =
      target.addresses === null
        ? `sidecars at ${address} (every address grpc-js resolves, round_robin)`
        : `${target.addresses.length} sidecars at ${target.addresses.join(',')} (round_robin)`;
  }
  return {
    openStream: (format) => client.openStream(format),
    openFieldsStream: (format) => client.openFieldsStream(format),
    description,
    async close() {
      client.close();
    },
  };
}

/** What a walk decodes with: the sender stream, or the fields stream for a backend whose `decide` takes field answers. */
export function streamOpener(decoder: Decoder, answers: AnswerKind | undefined): (format: PayloadFormat) => ExtractStream<{ readonly key: string }> {
  return answers === 'fields' ? (format) => decoder.openFieldsStream(format) : (format) => decoder.openStream(format);
}
