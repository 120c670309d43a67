/**
 * Tag 80: `131, 80, Size:32/big, ZlibStream`. binary_to_term inflates the stream and insists that
 * it yields exactly Size bytes (one more or one less is badarg); a bad Adler-32 or a cut stream
 * is badarg; bytes after the end of the zlib stream are ignored, and so are inflated bytes after
 * the end of the term. We use the zlib built into Node (the same library Erlang links), so broken
 * streams are judged as Erlang judges them, and stop inflating one chunk past the declared size.
 */
import { inflateSync } from 'node:zlib';
import { fail, type Failure } from './answer.js';
import { readU32 } from './eterm-tags.js';
import type { DecodeLimits } from './limits.js';

/** Bytes before the zlib stream: version, tag, declared size. */
export const COMPRESSED_HEADER_BYTES = 6;

/** @returns the inflated term bytes (without a version byte), or why they cannot be had. */
export function inflateCompressedTerm(payload: Uint8Array, limits: DecodeLimits): Uint8Array | Failure {
  if (payload.length < COMPRESSED_HEADER_BYTES) return fail('malformed', `compressed term cut inside its ${COMPRESSED_HEADER_BYTES}-byte header`);
  const declared = readU32(payload, 2);
  if (declared > limits.maxDecompressedBytes) {
    return fail('payload_too_large', `compressed term declares ${declared} bytes, over the limit of ${limits.maxDecompressedBytes} (maxDecompressedBytes)`);
  }
  if (declared === 0) return fail('malformed', 'compressed term declares 0 bytes');
  let inflated: Buffer;
  try {
    inflated = inflateSync(payload.subarray(COMPRESSED_HEADER_BYTES), { maxOutputLength: declared });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') return fail('malformed', `compressed term inflates to more than the ${declared} bytes it declares`);
    return fail('malformed', `broken zlib stream in compressed term: ${(error as Error).message}`);
  }
  if (inflated.length !== declared) {
    return fail('malformed', `compressed term inflates to ${inflated.length} bytes but declares ${declared}`);
  }
  return inflated;
}
