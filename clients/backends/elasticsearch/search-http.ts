/**
 * The HTTP side of the Elasticsearch/OpenSearch backend: JSON and NDJSON requests over Node's own
 * keep-alive agents, to one of several nodes. No search client library: Elastic's 7.14+ clients
 * refuse OpenSearch and OpenSearch's speaks only to OpenSearch, while the handful of REST calls
 * we make are the same on Elasticsearch 6/7 and OpenSearch 1/2 (not measured against those
 * clients: see the README). A password only ever goes into the Authorization header, never into a message.
 */
import http from 'node:http';
import https from 'node:https';
import type { Credentials, TlsFiles } from '../credentials.js';

/** A request that waits longer is abandoned (and counts as transient). */
const REQUEST_TIMEOUT_MS = 120_000;

export class SearchHttpError extends Error {
  override readonly name = 'SearchHttpError';
  constructor(
    readonly status: number,
    /** The server's error type, e.g. `index_not_found_exception`, or '' when none. */
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A search or count answered 200 from only some of the index's shards: a shard still starting
 * after a node restart, or one that failed. Its hits are not the whole truth (a walk that took
 * them for it would mark unfinished partitions done), so it is transient: asked again later.
 */
export class IncompleteSearchError extends Error {
  override readonly name = 'IncompleteSearchError';
}

/** The connection failed (refused, reset, timed out) before any answer. */
export class SearchConnectionError extends Error {
  override readonly name = 'SearchConnectionError';
}

export interface SearchResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

export interface SearchHttpOptions {
  readonly nodes: readonly URL[];
  readonly credentials?: Credentials;
  readonly tls?: TlsFiles;
  /** Sockets per node. */
  readonly maxSockets: number;
}

/** Statuses worth a retry: overloaded, restarting, no shard available yet. */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/**
 * A block of the index or the cluster (`index.blocks.write`, `read_only_allow_delete` at the disk
 * flood stage, ...): a fault of the whole store, not load, even when answered with 429.
 */
export function isBlock(type: string | undefined, reason?: string): boolean {
  return type === 'cluster_block_exception' || (reason ?? '').includes('cluster_block_exception');
}

/** A response worth sending again after a pause (load, restart), never a block. */
export function isTransientResponse(response: SearchResponse): boolean {
  if (!isTransientStatus(response.status)) return false;
  const error = (response.body as ErrorBody | undefined)?.error;
  return !(typeof error === 'object' && error !== null && (isBlock(error.type) || (error.root_cause ?? []).some((c) => isBlock(c.type))));
}

/** A block of the index or cluster: the run stops (the checkpoint does not move). */
export class StoreBlockedError extends Error {
  override readonly name = 'StoreBlockedError';
}

/** A node that could not be reached is tried last for this long. */
const NODE_DOWN_MS = 10_000;

export class SearchHttp {
  private next = 0;
  /** Per node: until when it counts as down (0: up). */
  private readonly downUntil: number[];
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly authorization: string | undefined;

  constructor(private readonly options: SearchHttpOptions) {
    if (options.nodes.length === 0) throw new Error('no node URL');
    this.downUntil = options.nodes.map(() => 0);
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets, ...options.tls });
    this.authorization =
      options.credentials === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString('base64')}`;
  }

  /** The nodes, without any user information, for logs. */
  describeNodes(): string {
    return this.options.nodes.map((u) => u.origin).join(',');
  }

  /**
   * Sends one request, trying the next node when a node cannot be reached; answers with any
   * HTTP status (callers read per-status meanings, e.g. 404). `body` is JSON, or NDJSON lines.
   */
  async request<T = unknown>(method: string, path: string, body?: unknown, ndjson?: readonly unknown[]): Promise<SearchResponse<T>> {
    const payload =
      ndjson !== undefined
        ? Buffer.from(ndjson.map((line) => JSON.stringify(line)).join('\n') + '\n', 'utf8')
        : body === undefined
          ? undefined
          : Buffer.from(JSON.stringify(body), 'utf8');
    const contentType = ndjson !== undefined ? 'application/x-ndjson' : 'application/json';
    let lastError: Error | undefined;
    // Each request tries every node once, from its own start (not a counter shared with the
    // requests in flight, which could send its second attempt to the node that just failed),
    // nodes that failed lately last.
    for (const n of this.nodeOrder()) {
      try {
        const response = await this.send<T>(this.options.nodes[n], method, path, payload, contentType);
        this.downUntil[n] = 0;
        return response;
      } catch (error) {
        if (!(error instanceof SearchConnectionError)) throw error;
        this.downUntil[n] = Date.now() + NODE_DOWN_MS;
        lastError = error;
      }
    }
    throw lastError!;
  }

  private nodeOrder(): number[] {
    const count = this.options.nodes.length;
    const start = this.next++ % count;
    const order = Array.from({ length: count }, (_, i) => (start + i) % count);
    const now = Date.now();
    return [...order.filter((n) => this.downUntil[n] <= now), ...order.filter((n) => this.downUntil[n] > now)];
  }

  /** As `request`, but any status >= 300 is thrown as a `SearchHttpError`. */
  async ok<T = unknown>(method: string, path: string, body?: unknown, ndjson?: readonly unknown[]): Promise<T> {
    const response = await this.request<T>(method, path, body, ndjson);
    if (response.status >= 300) throw errorOf(method, path, response);
    return response.body;
  }

  /**
   * A `_search` or `_count` whose answer must cover every shard. `_search` asks the server not to
   * answer from part of the shards (Elasticsearch >= 6.3, OpenSearch); the `_shards` header is
   * checked as well, because `_count` has no such flag and a shard not yet allocated after a
   * restart is counted in `total` but neither as successful nor as failed.
   */
  async complete<T>(path: string, body: unknown): Promise<T> {
    const searchPath = path.endsWith('/_search') ? `${path}?allow_partial_search_results=false` : path;
    const answer = await this.ok<T & ShardsHeader>('POST', searchPath, body);
    const shards = answer._shards;
    if (shards !== undefined) {
      const answered = (shards.successful ?? 0) + (shards.skipped ?? 0);
      if ((shards.failed ?? 0) > 0 || answered < (shards.total ?? 0)) {
        const reason = shards.failures?.[0]?.reason;
        const why = typeof reason === 'object' && reason !== null ? `${reason.type ?? ''}${reason.reason ? `: ${reason.reason}` : ''}` : '';
        throw new IncompleteSearchError(
          `POST ${path}: answered by ${shards.successful ?? 0} of ${shards.total ?? 0} shards (${shards.failed ?? 0} failed${why ? `, ${why}` : ''}); a shard is starting or failing, asking again later`,
        );
      }
    }
    if ((answer as ShardsHeader).timed_out === true) throw new IncompleteSearchError(`POST ${path}: the search timed out on the server`);
    return answer;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private send<T>(node: URL, method: string, path: string, payload: Buffer | undefined, contentType: string): Promise<SearchResponse<T>> {
    const secure = node.protocol === 'https:';
    const basePath = node.pathname.replace(/\/$/, '');
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = payload.length;
    }
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    const describe = `${method} ${node.origin}${basePath}${path.split('?')[0]}`;
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        {
          protocol: node.protocol,
          hostname: node.hostname,
          port: node.port,
          method,
          path: basePath + path,
          headers,
          agent: secure ? this.httpsAgent : this.httpAgent,
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(new SearchConnectionError(`${describe}: ${e.message}`)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if (text !== '' && (res.headers['content-type'] ?? '').includes('json')) {
              try {
                body = JSON.parse(text);
              } catch {
                reject(new SearchConnectionError(`${describe}: answer is not JSON (${text.slice(0, 200)})`));
                return;
              }
            }
            resolve({ status: res.statusCode ?? 0, body: body as T });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(new SearchConnectionError(`${describe}: ${e.message}`, { cause: e })));
      req.end(payload);
    });
  }
}

interface ShardsHeader {
  _shards?: { total?: number; successful?: number; skipped?: number; failed?: number; failures?: { reason?: { type?: string; reason?: string } }[] };
  timed_out?: boolean;
}

interface ErrorBody {
  error?: { type?: string; reason?: string; root_cause?: { type?: string; reason?: string }[] } | string;
}

export function errorOf(method: string, path: string, response: SearchResponse): SearchHttpError {
  const body = response.body as ErrorBody | string;
  let type = '';
  let reason = typeof body === 'string' ? body.slice(0, 300) : '';
  if (typeof body === 'object' && body !== null && body.error !== undefined) {
    if (typeof body.error === 'string') reason = body.error;
    else {
      type = body.error.type ?? '';
      reason = body.error.reason ?? '';
      // "all shards failed" / "Partial shards failure" say little: the root cause says why.
      const cause = body.error.root_cause?.[0];
      if (cause?.reason !== undefined && cause.reason !== reason)
        reason = reason === '' ? cause.reason : `${reason} (${cause.type ?? 'cause'}: ${cause.reason})`;
    }
  }
  return new SearchHttpError(
    response.status,
    type,
    `${method} ${path.split('?')[0]}: HTTP ${response.status}${type ? ` ${type}` : ''}${reason ? `: ${reason}` : ''}`,
  );
}

/** Transient: no answer at all, or an answer that says "later". */
export function isTransientSearchError(error: unknown): boolean {
  if (error instanceof SearchConnectionError || error instanceof IncompleteSearchError) return true;
  if (error instanceof SearchHttpError) return isTransientStatus(error.status) && !isBlock(error.type, error.message);
  return false;
}
