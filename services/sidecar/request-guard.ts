/**
 * The guard over request messages still arriving: the one place that reads gRPC's framing beside
 * grpc-js, to bound what the server holds before a handler ever runs.
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SidecarConfig } from './config.js';
import { GRPC_FRAME_HEADER_BYTES } from './hand-over.js';
import { SERVICE_NAME } from './raw-service.js';

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
export function requestGuard(config: SidecarConfig, log: Logger): { interceptor: grpc.ServerInterceptor; arrivingBytes(): number } {
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
