/**
 * The SenderJidService calls not yet finished, for a graceful shutdown: it waits for these (not for
 * health watches, which never end by themselves) and, once its grace period is over, ends each call
 * still being answered with a status of its own.
 */
import * as grpc from '@grpc/grpc-js';
import { SERVICE_NAME } from './raw-service.js';

/** A call's failure, as the grpc status it ends with. */
export class CallFailure extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
  }
}

export class CallTracker {
  private count = 0;
  private whenNone: (() => void) | null = null;
  /** How to end each call being answered with a status. */
  private readonly enders = new Set<(failure: CallFailure) => void>();

  /**
   * Counts calls from their first byte to their status (or cancellation), so that a shutdown also
   * waits for a call whose request is still arriving (its handler has not run yet).
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    if (!method.path.startsWith(`/${SERVICE_NAME}/`)) return new grpc.ServerInterceptingCall(call);
    let counted = false;
    const finished = (): void => {
      if (!counted) return;
      counted = false;
      this.count--;
      if (this.count === 0 && this.whenNone !== null) this.whenNone();
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        counted = true;
        this.count++;
        next({ onCancel: finished });
      },
      sendStatus: (status, next) => {
        next(status);
        finished();
      },
    });
  };

  get inFlight(): number {
    return this.count;
  }

  /** A handler started answering; `endWith` ends it with a status. Returns what to call once it is answered. */
  answering(endWith: (failure: CallFailure) => void): () => void {
    this.enders.add(endWith);
    return () => this.enders.delete(endWith);
  }

  /** Resolves once no call is in flight (at once when none is). */
  allDone(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.whenNone = resolve;
      if (this.count === 0) resolve();
    });
  }

  /** Ends every call still being answered with `failure`. */
  endAll(failure: CallFailure): void {
    for (const endWith of [...this.enders]) endWith(failure);
  }
}
