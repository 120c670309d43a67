/**
 * Which buckets and keys exist. Two ways, both documented by Riak:
 * - `stream`: `?buckets=stream` / `?keys=stream`, a chunked sequence of `{"keys":[...]}` objects
 *   (a listing that times out on the server ends with `{"error":"timeout"}`). Works on every
 *   storage backend; a full scan per bucket, in no stable order.
 * - `2i`: the `$bucket` secondary index, in pages of `max_results` keys sorted by key, each page
 *   naming the `continuation` of the next. Needs LevelDB or the memory backend; stateless on the
 *   server, so a page can be asked for again after any failure.
 * Neither ever holds a whole bucket's key list in memory.
 */
import type { IncomingMessage } from 'node:http';
import { jsonObjects } from './json-object-stream.js';
import { isTransientRiakError, RiakHttpError, RiakTimeoutError, statusError, type RiakHttp } from './riak-http.js';

export type ListingMode = 'stream' | '2i';

const enc = encodeURIComponent;

/** Every bucket of the type that holds keys, sorted (stable partition names and shard split). */
export async function listBuckets(http: RiakHttp, bucketType: string): Promise<string[]> {
  const buckets = new Set<string>();
  for await (const part of streamedParts(http, `/types/${enc(bucketType)}/buckets?buckets=stream`, 'buckets', `listing the buckets of type '${bucketType}'`)) {
    for (const name of part) buckets.add(name);
  }
  return [...buckets].sort();
}

/** One bucket's keys in batches, pulled on demand; `null` once the listing is complete. */
export interface KeyWalk {
  next(): Promise<string[] | null>;
  close(): void;
}

/** The `?keys=stream` walk: one long response, read as far as the pipeline has asked. */
export function streamKeyWalk(http: RiakHttp, bucketType: string, bucket: string): KeyWalk {
  const parts = streamedParts(http, `/types/${enc(bucketType)}/buckets/${enc(bucket)}/keys?keys=stream`, 'keys', `listing the keys of bucket '${bucket}'`);
  return {
    async next() {
      const step = await parts.next();
      return step.done ? null : step.value;
    },
    close() {
      void parts.return(undefined);
    },
  };
}

export interface IndexPage {
  readonly keys: string[];
  /** Where the next page starts; undefined after the last page. */
  readonly continuation?: string;
}

/** One page of the `$bucket` index: `max_results` keys after `continuation`. */
export async function indexPage(http: RiakHttp, bucketType: string, bucket: string, maxResults: number, continuation?: string): Promise<IndexPage> {
  const query = `max_results=${maxResults}${continuation === undefined ? '' : `&continuation=${enc(continuation)}`}`;
  const what = `listing bucket '${bucket}' by its $bucket index`;
  const response = await http.request('GET', `/types/${enc(bucketType)}/buckets/${enc(bucket)}/index/$bucket/_?${query}`);
  if (response.status === 500 && /indexes_not_supported/.test(response.body.toString('utf8'))) {
    throw new RiakHttpError(`${what}: this cluster's storage backend has no secondary indexes (bitcask?): use --listing stream`, 500, false);
  }
  if (response.status !== 200) throw statusError(what, response);
  const body = JSON.parse(response.body.toString('utf8')) as { keys?: unknown; continuation?: unknown };
  if (!Array.isArray(body.keys) || !body.keys.every((k) => typeof k === 'string')) throw new Error(`${what}: answer without a "keys" list`);
  return { keys: body.keys as string[], ...(typeof body.continuation === 'string' ? { continuation: body.continuation } : {}) };
}

/** A listing that began and did not end: another try may well succeed. */
function cutError(what: string, parts: number, names: number, cause: unknown): RiakHttpError {
  const why = cause === null ? 'the answer ended before its last chunk' : cause instanceof Error ? cause.message : String(cause);
  return new RiakHttpError(`${what}: the listing was cut after ${parts} parts (${names} names): ${why}`, 0, true, cause === null ? undefined : { cause });
}

/** A listing that could not begin (no connection, no answer): transient as its cause is. */
function openError(what: string, cause: unknown): unknown {
  if (!(cause instanceof Error) || cause instanceof RiakHttpError) return cause;
  // The cause stays attached: the CLI names a connection refused from it in one line.
  return new RiakHttpError(`${what}: ${cause.message}`, 0, isTransientRiakError(cause), { cause });
}

/** The response's chunks, each awaited at most `timeoutMs` (a stalled listing is a transient failure). */
async function* withReadDeadline(response: IncomingMessage, timeoutMs: number): AsyncGenerator<Buffer> {
  const chunks = response[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new RiakTimeoutError(`a streamed listing sent nothing for ${timeoutMs} ms`);
        response.destroy(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      const step = await Promise.race([chunks.next(), deadline]);
      if (step.done) return;
      yield step.value as Buffer;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The lists of a streamed listing, one per JSON object. An in-stream error, or an answer cut
 * before its end (connection reset, a proxy's timeout, a stall), is thrown as a transient
 * RiakHttpError that says what was cut and how far it had come; an answer that is complete but
 * not a listing is not transient.
 */
async function* streamedParts(http: RiakHttp, path: string, field: 'keys' | 'buckets', what: string): AsyncGenerator<string[]> {
  let response: IncomingMessage;
  try {
    response = await http.stream(path);
  } catch (error) {
    throw openError(what, error);
  }
  let parts = 0;
  let names = 0;
  try {
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      throw statusError(what, { status: response.statusCode ?? 0, contentType: String(response.headers['content-type'] ?? ''), body: Buffer.concat(chunks) });
    }
    try {
      for await (const object of jsonObjects(withReadDeadline(response, http.timeoutMs))) {
        const part = object as Record<string, unknown>;
        if ('error' in part) {
          throw new RiakHttpError(`${what}: Riak ended the listing with error ${JSON.stringify(part.error)} after ${parts} parts (${names} names)`, 503, true);
        }
        const list = part[field];
        if (!Array.isArray(list) || !list.every((k) => typeof k === 'string')) throw new Error(`${what}: a streamed part without a "${field}" list`);
        parts++;
        names += list.length;
        if (list.length > 0) yield list as string[];
      }
    } catch (error) {
      if (error instanceof RiakHttpError || response.complete) throw error;
      throw cutError(what, parts, names, error);
    }
    // Riak's last part is an empty list; an answer that stops before its final chunk was cut.
    if (!response.complete) throw cutError(what, parts, names, null);
  } finally {
    // Abandoned early (stop, failure): free the socket rather than let it drain a whole bucket.
    if (!response.complete) response.destroy();
  }
}
