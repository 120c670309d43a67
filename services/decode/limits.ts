/**
 * Bounds on everything a payload can make the decoder do. Every payload comes from outside
 * (a database written by another program, a gRPC caller), so none of it is trusted.
 */
export interface DecodeLimits {
  /** Largest payload accepted, in bytes (before any inflation). */
  readonly maxPayloadBytes: number;
  /** Largest uncompressed size a compressed term may declare or produce. */
  readonly maxDecompressedBytes: number;
  /** Deepest nesting of terms (tuples, lists, maps) or XML elements. */
  readonly maxDepth: number;
  /** Most attributes on one XML element. */
  readonly maxXmlAttributes: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxPayloadBytes: 1024 * 1024,
  maxDecompressedBytes: 16 * 1024 * 1024,
  maxDepth: 512,
  maxXmlAttributes: 256,
});
