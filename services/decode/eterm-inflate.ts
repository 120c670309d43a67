/**
 * Tag 80: `131, 80, Size:32/big, ZlibStream`. binary_to_term inflates the stream and insists that
 * it yields exactly Size bytes (one more or one less is badarg); a bad Adler-32 or a cut stream
 * is badarg; bytes after the end of the zlib stream are ignored, and so are inflated bytes after
 * the end of the term.
 *
 * We inflate with the zlib built into Node (the same library Erlang links, so broken streams are
 * judged alike) into a buffer of Size + 1 bytes: a stream that fills it is longer than declared,
 * and inflation never goes further than that, whatever the stream holds (zlib bombs).
 *
 * Speed: zlib.inflateSync builds and tears down a zlib handle per call, which costs more than
 * inflating a 500-byte message. So one zlib handle is kept and reset between payloads, driven
 * through its synchronous writeSync, the call Node's own inflateSync makes. That handle is
 * Node-internal (zlib.Inflate's _handle and _writeState); if a Node version lacks it, every payload
 * goes through zlib.inflateSync with maxOutputLength instead: same answers, slower.
 */
import { constants, createInflate, inflateSync } from 'node:zlib';
import { fail, type Failure } from './answer.js';
import { readU32 } from './eterm-tags.js';
import type { DecodeLimits } from './limits.js';

/** Bytes before the zlib stream: version, tag, declared size. */
export const COMPRESSED_HEADER_BYTES = 6;

/** Output buffers up to this size are kept and reused; larger ones are allocated per payload. */
const REUSED_OUTPUT_BYTES = 1024 * 1024;

interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

interface ReusableInflater {
  readonly handle: ZlibHandle;
  /** [avail_out, avail_in] after each writeSync. */
  readonly state: Uint32Array;
  /** Kept referenced so that the handle is not collected and closed. */
  readonly owner: object;
  error: string | undefined;
}

let reusable: ReusableInflater | undefined | null;
let reusedOutput: Uint8Array = Buffer.allocUnsafeSlow(64 * 1024);

function reusableInflater(): ReusableInflater | null {
  if (reusable !== undefined) return reusable;
  try {
    const owner = createInflate() as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: Uint32Array };
    const handle = owner._handle;
    const state = owner._writeState;
    if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array)) {
      reusable = null;
      return null;
    }
    const inflater: ReusableInflater = { handle: handle as ZlibHandle, state, owner, error: undefined };
    inflater.handle.onerror = (message: string) => {
      inflater.error = message;
    };
    reusable = inflater;
  } catch {
    reusable = null;
  }
  return reusable;
}

/** @returns the inflated term bytes (without a version byte; valid until the next call), or why they cannot be had. */
export function inflateCompressedTerm(payload: Uint8Array, limits: DecodeLimits): Uint8Array | Failure {
  if (payload.length < COMPRESSED_HEADER_BYTES) return fail('malformed', `compressed term cut inside its ${COMPRESSED_HEADER_BYTES}-byte header`);
  const declared = readU32(payload, 2);
  if (declared > limits.maxDecompressedBytes) {
    return fail('payload_too_large', `compressed term declares ${declared} bytes, over the limit of ${limits.maxDecompressedBytes} (maxDecompressedBytes)`);
  }
  if (declared === 0) return fail('malformed', 'compressed term declares 0 bytes');
  const inflater = reusableInflater();
  return inflater === null ? inflateOnce(payload, declared) : inflateReusing(inflater, payload, declared);
}

function inflateReusing(inflater: ReusableInflater, payload: Uint8Array, declared: number): Uint8Array | Failure {
  const room = declared + 1;
  let out: Uint8Array;
  if (room <= REUSED_OUTPUT_BYTES) {
    if (reusedOutput.length < room) reusedOutput = Buffer.allocUnsafeSlow(Math.min(REUSED_OUTPUT_BYTES, Math.max(room, reusedOutput.length * 2)));
    out = reusedOutput;
  } else {
    out = Buffer.allocUnsafeSlow(room);
  }
  inflater.error = undefined;
  inflater.handle.writeSync(constants.Z_FINISH, payload, COMPRESSED_HEADER_BYTES, payload.length - COMPRESSED_HEADER_BYTES, out, 0, room);
  const error = inflater.error;
  const produced = room - inflater.state[0];
  inflater.handle.reset();
  if (error !== undefined) return fail('malformed', `broken zlib stream in compressed term: ${error}`);
  if (produced > declared) return fail('malformed', `compressed term inflates to more than the ${declared} bytes it declares`);
  if (produced !== declared) return fail('malformed', `compressed term inflates to ${produced} bytes but declares ${declared}`);
  return out.subarray(0, declared);
}

function inflateOnce(payload: Uint8Array, declared: number): Uint8Array | Failure {
  let inflated: Buffer;
  try {
    inflated = inflateSync(payload.subarray(COMPRESSED_HEADER_BYTES), { maxOutputLength: declared });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') return fail('malformed', `compressed term inflates to more than the ${declared} bytes it declares`);
    return fail('malformed', `broken zlib stream in compressed term: ${(error as Error).message}`);
  }
  if (inflated.length !== declared) return fail('malformed', `compressed term inflates to ${inflated.length} bytes but declares ${declared}`);
  return inflated;
}

/**
 * For tests: false forces the per-payload zlib.inflateSync path, true goes back to the reused
 * handle. It stays here, not in a test seam: the fallback is only taken on a Node without the
 * internal handle, so on any Node a test runs on it is reachable through this switch alone, and the
 * test must drive it through the whole decoder (extractSenderJid), which holds no injection point.
 */
export function useReusableInflater(enabled: boolean): void {
  reusable = enabled ? undefined : null;
}
