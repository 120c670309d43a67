/**
 * Which failures are worth another try, and how long to pause before it. The backend knows its
 * driver's errors; the decoding side is recognised here by gRPC status codes. The pause itself is
 * clients/common/backoff.ts.
 */
import type { BackoffPolicy } from '../common/backoff.js';

const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN', 'ECONNABORTED']);

/** gRPC: CANCELLED (1), DEADLINE_EXCEEDED (4), RESOURCE_EXHAUSTED (8), ABORTED (10), UNAVAILABLE (14). */
const TRANSIENT_GRPC_CODES = new Set([1, 4, 8, 10, 14]);

export function isTransientNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : String(error);
  // pg: "Connection terminated unexpectedly", "Client has encountered a connection error and is
  // not queryable" (a pooled client whose server went away between two queries).
  return /Connection terminated|connection lost|socket hang up|read ECONNRESET|closed the connection|is not queryable/i.test(message);
}

export function isTransientDecodeError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && TRANSIENT_GRPC_CODES.has(code)) return true;
  return isTransientNetworkError(error);
}

/** The walk's pauses between its retries (`--max-retries`). */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 15_000 });
