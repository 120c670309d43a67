/** Which cassandra-driver errors are worth a retry after a pause (the node or network, never the request). */
import cassandra from 'cassandra-driver';
import { isTransientNetworkError } from '../../pipeline/retry.js';

const codes = cassandra.types.responseErrorCodes;
const TRANSIENT_RESPONSE_CODES = new Set<number>([
  codes.unavailableException,
  codes.overloaded,
  codes.isBootstrapping,
  codes.truncateError,
  codes.writeTimeout,
  codes.readTimeout,
]);

export function isTransientCassandraError(error: unknown): boolean {
  const { errors } = cassandra;
  if (error instanceof errors.NoHostAvailableError) return true;
  if (error instanceof errors.OperationTimedOutError) return true;
  if (error instanceof errors.BusyConnectionError) return true;
  if (error instanceof errors.ResponseError) return TRANSIENT_RESPONSE_CODES.has(error.code);
  const message = error instanceof Error ? error.message : String(error);
  // Driver errors of a connection that went away under a request.
  if (/socket was closed|connection (was )?closed|not connected|pool .*shutting down/i.test(message)) return true;
  return isTransientNetworkError(error);
}
