/** Handing a request's bytes to a decoding worker, without a copy where grpc-js allows it. */
import type { BatchBytes } from './batch-protocol.js';

/** Bytes of gRPC's message framing (compressed flag, length) before a message in its buffer. */
export const GRPC_FRAME_HEADER_BYTES = 5;

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
