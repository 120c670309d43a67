/**
 * The handlers of SenderJidService's two methods: a unary batch, and a stream of batches answered
 * in order with flow control. Decoding itself is `dispatch` (the pool); these only move buffers,
 * keep order and map outcomes to statuses.
 */
import * as grpc from '@grpc/grpc-js';
import type { AnswerKind } from './batch-protocol.js';
import type { CallFailure, CallTracker } from './call-tracker.js';

export type Dispatched = { ok: true; response: Buffer; startedAt: number } | { ok: false; failure: CallFailure; startedAt: number };

export interface HandlerDeps {
  /** Decodes one request on the pool; `flow` groups a stream's batches so that they take turns with other calls as one. */
  dispatch(request: Buffer, signal: AbortSignal, flow?: object, answer?: AnswerKind): Promise<Dispatched>;
  /** Counts a finished batch in the metrics. */
  record(rpc: Rpc, result: Dispatched, code: grpc.status): void;
  /** The limits every call announces first, so that clients cut their batches to fit. */
  readonly limitsMetadata: grpc.Metadata;
  readonly calls: CallTracker;
  /** Batches of one stream in work before the stream is paused. */
  readonly streamWindowBatches: number;
}

/** The `rpc` label of the batch metrics. */
export type Rpc = 'unary' | 'stream' | 'fields';

export function serviceHandlers(deps: HandlerDeps): grpc.UntypedServiceImplementation {
  return {
    extractSenderJid(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      answerUnary(call, callback, deps, 'unary', 'sender');
    },
    extractSenderJidStream(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      answerStream(call, deps);
    },
    extractMessageFields(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      answerUnary(call, callback, deps, 'fields', 'fields');
    },
  };
}

/** One batch, one answer: the same limits, cancellation and statuses for every unary RPC. */
function answerUnary(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>, deps: HandlerDeps, rpc: Rpc, answer: AnswerKind): void {
  const { dispatch, record, limitsMetadata, calls } = deps;
  // The limits, as a stream announces them: a balanced client probes them with an empty request.
  call.sendMetadata(limitsMetadata.clone());
  const abort = new AbortController();
  let answered = false;
  const done = calls.answering((failure) => {
    answered = true;
    abort.abort();
    callback({ code: failure.code, details: failure.details });
  });
  call.on('cancelled', () => abort.abort());
  dispatch(call.request, abort.signal, undefined, answer).then(
    (result) => {
      done();
      if (answered) return;
      if (result.ok) {
        record(rpc, result, grpc.status.OK);
        callback(null, result.response);
      } else {
        record(rpc, result, result.failure.code);
        callback({ code: result.failure.code, details: result.failure.details });
      }
    },
    (error: unknown) => {
      done();
      callback({ code: grpc.status.INTERNAL, details: String(error) });
    },
  );
}

/**
 * Batches in, answers out in the same order. Flow control: at most streamWindowBatches batches
 * of this stream are in work or waiting to be written; at that point the stream is paused, so
 * grpc stops reading it and HTTP/2 flow control holds the producer back. A write that grpc
 * cannot take at once (backpressure) also stops the answering until 'drain'.
 */
function answerStream(call: grpc.ServerDuplexStream<Buffer, Buffer>, deps: HandlerDeps): void {
  const { dispatch, record, limitsMetadata, calls, streamWindowBatches } = deps;
  // Before anything else: the client waits for these limits to cut its first batch.
  call.sendMetadata(limitsMetadata.clone());
  const done = calls.answering((failure) => finish(failure));
  limitReadAhead(call);
  const abort = new AbortController();
  const inWork: Promise<Dispatched>[] = [];
  let paused = false;
  let writing = false;
  let finished = false;
  let requestsEnded = false;

  const finish = (failure: CallFailure | null): void => {
    if (finished) return;
    finished = true;
    done();
    if (failure === null) {
      call.end();
    } else {
      abort.abort(); // batches still in work for this stream are abandoned
      call.emit('error', { code: failure.code, details: failure.details });
    }
  };
  call.on('cancelled', () => {
    abort.abort();
    finished = true;
    done();
  });
  call.on('error', () => {
    /* grpc-js turns the emitted error into the call's status */
  });
  call.on('data', (request: Buffer) => {
    if (finished) return;
    inWork.push(dispatch(request, abort.signal, call)); // one flow: the stream's batches take turns with other calls as one
    if (inWork.length >= streamWindowBatches && !paused) {
      paused = true;
      call.pause();
    }
    void writeAnswers();
  });
  call.on('end', () => {
    requestsEnded = true;
    if (inWork.length === 0 && !writing) finish(null);
  });

  async function writeAnswers(): Promise<void> {
    if (writing) return;
    writing = true;
    try {
      while (inWork.length > 0 && !finished) {
        const result = await (inWork[0] as Promise<Dispatched>);
        if (finished) return;
        if (!result.ok) {
          record('stream', result, result.failure.code);
          finish(result.failure);
          return;
        }
        record('stream', result, grpc.status.OK);
        const accepted = call.write(result.response);
        if (!accepted) await drained(call);
        inWork.shift();
        if (paused && inWork.length < streamWindowBatches && !finished) {
          paused = false;
          call.resume();
        }
      }
    } finally {
      writing = false;
    }
    if (requestsEnded && inWork.length === 0) finish(null);
  }
}

/**
 * A Node readable in object mode reads ahead up to 16 messages on its own, whatever pause()
 * says; with requests of up to max-request-bytes each that is a lot of memory per stream. One
 * is enough: flow control is ours (the stream window) and HTTP/2's.
 */
function limitReadAhead(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
  const state = (call as unknown as { _readableState?: { highWaterMark?: number } })._readableState;
  if (state !== undefined && typeof state.highWaterMark === 'number') state.highWaterMark = 1;
}

function drained(call: grpc.ServerDuplexStream<Buffer, Buffer>): Promise<void> {
  return new Promise<void>((resolve) => {
    const settle = (): void => {
      call.off('drain', settle);
      call.off('cancelled', settle);
      call.off('close', settle);
      resolve();
    };
    call.on('drain', settle);
    call.on('cancelled', settle);
    call.on('close', settle);
  });
}
