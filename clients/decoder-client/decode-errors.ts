/**
 * How a decoding stream fails: with a grpc ServiceError (`.code` a grpc status number, `.details`),
 * whether the failure came over the wire or from the in-process pool, so that the pipeline's
 * retry policy (clients/pipeline/retry.ts, by status code) needs no second vocabulary.
 */
import * as grpc from '@grpc/grpc-js';

export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number';
}

/** The server is gone, restarting or shutting down: the same request may go again (decoding is pure). */
export function isUnavailable(error: unknown): boolean {
  return isServiceError(error) && error.code === grpc.status.UNAVAILABLE;
}

export function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}
