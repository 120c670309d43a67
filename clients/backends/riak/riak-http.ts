/**
 * Riak's HTTP API, the little we need: requests spread over the given nodes on keep-alive
 * sockets, basic auth over HTTPS, a deadline per request, and errors that say what to do. The
 * password lives only in the Authorization header of our own requests: never in a message.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Credentials, TlsFiles } from '../credentials.js';
import { isTransientNetworkError } from '../../pipeline/retry.js';

export interface RiakHttpOptions {
  /** Base URLs of the nodes (`https://host:8098`), used in turn. */
  readonly nodes: readonly URL[];
  readonly credentials?: Credentials;
  readonly tls?: TlsFiles;
  /** Sockets per node: as many requests may be in flight at once. */
  readonly maxSockets: number;
  /** No byte for this long: the request fails (transient). */
  readonly timeoutMs: number;
}

export interface RiakResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** A Riak answer we did not want; `transient` when another try may well succeed. */
export class RiakHttpError extends Error {
  override readonly name = 'RiakHttpError';
  constructor(
    message: string,
    readonly status: number,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A request without an answer in time: counted as transient, like a reset. */
export class RiakTimeoutError extends Error {
  override readonly name = 'RiakTimeoutError';
  readonly code = 'ETIMEDOUT';
}

export function isTransientRiakError(error: unknown): boolean {
  if (error instanceof RiakHttpError) return error.transient;
  if (error instanceof RiakTimeoutError) return true;
  return isTransientNetworkError(error) || /aborted/i.test(error instanceof Error ? error.message : '');
}

/** What an unwanted status means for an operator; 503 (timeouts, quorum not met) is transient. */
export function statusError(what: string, response: RiakResponse): RiakHttpError {
  const { status } = response;
  const text = response.body.toString('utf8').slice(0, 300).trim();
  if (status === 426) {
    return new RiakHttpError(
      `${what}: Riak answered 426: security is enabled on this cluster and it refuses plain HTTP. ` +
        'Use its HTTPS listener (--url https://HOST:PORT) with --username, --password-file and --tls-ca.',
      status,
      false,
    );
  }
  if (status === 401) return new RiakHttpError(`${what}: Riak answered 401: it did not accept --username and its password`, status, false);
  if (status === 403) return new RiakHttpError(`${what}: Riak answered 403: the user lacks a permission (${text})`, status, false);
  return new RiakHttpError(`${what}: Riak answered ${status}${text ? `: ${text}` : ''}`, status, status === 503);
}

export class RiakHttp {
  private next = 0;
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly authorization: string | undefined;

  constructor(private readonly options: RiakHttpOptions) {
    this.httpAgent = new HttpAgent({ keepAlive: true, maxSockets: options.maxSockets });
    this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: options.maxSockets, ca: options.tls?.ca, cert: options.tls?.cert, key: options.tls?.key });
    const c = options.credentials;
    this.authorization = c ? `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}` : undefined;
  }

  /** One request, its whole answer in memory (maps and pages are small). */
  async request(method: string, path: string, body?: { type: string; bytes: Buffer }): Promise<RiakResponse> {
    const response = await this.open(method, path, body);
    const parts: Buffer[] = [];
    for await (const chunk of response) parts.push(chunk as Buffer);
    return { status: response.statusCode ?? 0, contentType: String(response.headers['content-type'] ?? ''), body: Buffer.concat(parts) };
  }

  /**
   * A streamed GET: the response, to be read chunk by chunk. Its socket has no idle deadline once
   * the headers are in: the reader pauses it while the pipeline catches up, and bounds each of
   * its own reads instead (`timeoutMs`).
   */
  async stream(path: string): Promise<IncomingMessage> {
    const response = await this.open('GET', path, undefined, false);
    response.socket?.setTimeout(0);
    return response;
  }

  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private open(method: string, path: string, body?: { type: string; bytes: Buffer }, idleDeadline = true): Promise<IncomingMessage> {
    const node = this.options.nodes[this.next++ % this.options.nodes.length];
    const secure = node.protocol === 'https:';
    const headers: Record<string, string | number> = { Accept: 'application/json, application/xml;q=0.9, */*;q=0.5' };
    if (this.authorization) headers.Authorization = this.authorization;
    if (body) {
      headers['Content-Type'] = body.type;
      headers['Content-Length'] = body.bytes.length;
    }
    const base = node.pathname.replace(/\/+$/, '');
    return new Promise((resolve, reject) => {
      const request = (secure ? httpsRequest : httpRequest)(
        {
          protocol: node.protocol,
          hostname: node.hostname,
          port: node.port || 8098,
          path: base + path,
          method,
          headers,
          agent: secure ? this.httpsAgent : this.httpAgent,
        },
        (response) => {
          // The deadline also covers every pause while a (small) body comes in.
          if (idleDeadline)
            response.setTimeout(this.options.timeoutMs, () =>
              response.destroy(new RiakTimeoutError(`no answer from ${node.host} for ${this.options.timeoutMs} ms`)),
            );
          resolve(response);
        },
      );
      request.setTimeout(this.options.timeoutMs, () => request.destroy(new RiakTimeoutError(`no answer from ${node.host} for ${this.options.timeoutMs} ms`)));
      request.on('error', reject);
      request.end(body?.bytes);
    });
  }
}
