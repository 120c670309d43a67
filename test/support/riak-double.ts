/**
 * A double of Riak KV 2.x's HTTP API, for exactly the endpoints the Riak backend uses. No Riak
 * server can run on our machines, so this is what the Riak suites talk to. It is written from
 * Riak's own documentation and webmachine resources, not from our client; where they differ from
 * what we assumed, they win. Sources (basho/riak_kv and basho/yokozuna, 2.x):
 *
 * - bucket listing: docs "HTTP List Buckets", src/riak_kv_wm_buckets.erl (`buckets=true` one JSON
 *   object; `buckets=stream` chunked, one `{"buckets":[...]}` object per chunk, the last one
 *   `{"buckets":[]}`, or `{"error":"timeout"}` when the listing timed out);
 * - key listing: docs "HTTP List Keys", src/riak_kv_wm_keylist.erl (the same framing with "keys");
 * - `$bucket` index: docs "HTTP Secondary Indexes", src/riak_kv_wm_index.erl (`max_results` must
 *   be a positive integer, else 400; results sorted when paginated; `continuation` present only
 *   when the page is full, so the last page may be a full one followed by an empty one; 2i only
 *   on the LevelDB and memory backends: other backends answer 500);
 * - data types: docs "HTTP Data Types", src/riak_kv_wm_crdt.erl and src/riak_kv_crdt_json.erl
 *   (fetch `{"type":"map","value":{...},"context":"<base64>"}`, `include_context=false` drops the
 *   context; 404 `{"type":"map","error":"notfound"}`; unknown bucket type 404 text; POST needs
 *   `Content-Type: application/json` else 406 with no body; a bad body 400 text/plain; success 204
 *   without body, 200 with the value when `returnbody=true`; a register op is a string or
 *   `{"assign":"..."}`; map field names must match `^(.*)_(counter|set|register|flag|map)$`);
 * - timeouts and failed quorums: 503 text/plain (`handle_common_error/3`);
 * - a node whose local Riak client cannot be had: every resource's service_available/2 answers
 *   503 text/plain "Unable to connect to Riak: ..." before anything else, listings included;
 * - security: every resource's is_authorized/2: plain HTTP while security is on is 426 with
 *   "Security is enabled and Riak does not accept credentials over HTTP. Try HTTPS instead.";
 *   missing or wrong credentials 401 with `WWW-Authenticate: Basic realm="Riak"`;
 * - schemas: docs "HTTP Search Schema", yokozuna src/yz_wm_schema.erl (PUT with
 *   `Content-Type: application/xml`, else 415 as webmachine answers an unaccepted type; 204 on
 *   success, 400 "Error storing schema" when it cannot be parsed; GET answers application/xml or
 *   404).
 *
 * Not modelled (the backend never sends them): sets, counters, flags and nested maps inside maps,
 * quorum parameters beyond syntax, search queries and indexing, the protocol buffers API. Reloading
 * an index is a console command on a Riak node (yz_index:reload/1), not HTTP: nothing to model.
 *
 * Failure modes, all seeded: 503 answers, slow answers, connections reset before an answer, key
 * and bucket streams reset or ended by `{"error":"timeout"}` after some chunks. Scripted ones for
 * one object's next updates: a 503, an update applied whose answer is lost, an answer held back.
 * Counters say what was served, so tests can wait for observed progress instead of time.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { seededRandom, type Rand } from '../../cli/demo/seeded-random.js';
import { mochiEncode, NotUtf8Error, registerText } from './riak-json.js';
import { stopAtExit } from './stop-at-exit.js';

export interface RiakDoubleSecurity {
  readonly username: string;
  readonly password: string;
  /** PEM key and certificate of the HTTPS listener. */
  readonly key: Buffer;
  readonly cert: Buffer;
}

export interface RiakDoubleFaults {
  /** Share of datatype fetches and updates answered 503 "request timed out". */
  unavailable: number;
  /** Share of datatype fetches and updates delayed by `slowMs`. */
  slow: number;
  slowMs: number;
  /** Share of datatype fetches and updates whose connection is reset without an answer. */
  reset: number;
  /** Share of streamed listings reset after at least one chunk. */
  streamReset: number;
  /** Share of streamed listings ended with `{"error":"timeout"}` after at least one chunk. */
  streamTimeout: number;
  /** Share of listings (buckets, keys, `$bucket` pages) answered 503 before any chunk (service_available/2). */
  listingUnavailable: number;
}

/**
 * A fault for one coming listing, in order (`failNextListings`): 503 before any chunk, or a
 * stream cut (connection reset) or ended by `{"error":"timeout"}` after its first chunk.
 */
export type ListingFault = '503' | 'cut' | 'timeout';

/**
 * A fault for one coming update of one object, in order (`failNextUpdates`): `503` answered before
 * anything is applied; `lost-answer` applied, then the connection reset without an answer (a node
 * that wrote and went down before answering, or an answer lost to the client's deadline); a hold:
 * no answer until `until` resolves, then a 503 or the update applied.
 */
export type UpdateFault = '503' | 'lost-answer' | { readonly until: Promise<unknown>; readonly then: '503' | 'apply' };

export interface RiakDoubleOptions {
  readonly seed: number;
  /** Bucket types that exist (Riak: `riak-admin bucket-type create/activate`). */
  readonly bucketTypes?: readonly string[];
  /** Null: security off (HTTP only). Else HTTPS with basic auth, and plain HTTP answers 426. */
  readonly security?: RiakDoubleSecurity | null;
  /** False: a backend without 2i (bitcask), `$bucket` queries answer 500. */
  readonly secondaryIndexes?: boolean;
  /** Most keys per streamed chunk (Riak sends one chunk per vnode batch). */
  readonly keysPerChunk?: number;
  readonly faults?: Partial<RiakDoubleFaults>;
}

export interface RiakDoubleStats {
  fetches: number;
  /** Updates applied (POSTs answered 204/200). */
  updates: number;
  listings: number;
  schemaPuts: number;
  injected503: number;
  injectedResets: number;
  injectedStreamResets: number;
  injectedStreamTimeouts: number;
  /** Listings answered 503 before any chunk. */
  injectedListing503: number;
  /** Requests answered 426 (plain HTTP while security is on). */
  refusedPlainHttp: number;
  /** Requests answered 406 (a POST without Content-Type: application/json). */
  refusedContentType: number;
  /** Updates applied whose answer was lost (`lost-answer`): the client saw a reset. */
  lostAnswers: number;
}

interface StoredMap {
  readonly registers: Map<string, Buffer>;
  context: string;
}

const FIELD_PATTERN = /^(.*)_(counter|set|register|flag|map)$/s;
const WEBMACHINE_404 =
  '<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY><H1>Not Found</H1>The requested document was not found on this server.<P><HR><ADDRESS>mochiweb+webmachine web server</ADDRESS></BODY></HTML>';
const INSECURE_MESSAGE = 'Security is enabled and Riak does not accept credentials over HTTP. Try HTTPS instead.';

export class RiakDouble {
  readonly stats: RiakDoubleStats = {
    fetches: 0,
    updates: 0,
    listings: 0,
    schemaPuts: 0,
    injected503: 0,
    injectedResets: 0,
    injectedStreamResets: 0,
    injectedStreamTimeouts: 0,
    injectedListing503: 0,
    refusedPlainHttp: 0,
    refusedContentType: 0,
    lostAnswers: 0,
  };
  /** Scripted faults of the next listings, per kind (see failNextListings). */
  private readonly scripted = { buckets: [] as ListingFault[], keys: [] as ListingFault[] };
  /** Scripted faults of the next updates, per object (see failNextUpdates). */
  private readonly scriptedUpdates = new Map<string, UpdateFault[]>();
  /** Who waits for the next update of an object (see updateArrives). */
  private readonly updateWaiters = new Map<string, (() => void)[]>();
  readonly faults: RiakDoubleFaults;
  /** bucket type -> bucket -> key -> map */
  private readonly store = new Map<string, Map<string, Map<string, StoredMap>>>();
  private readonly schemas = new Map<string, Buffer>();
  private readonly rand: Rand;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private forgetAtExit: () => void = () => {};
  private httpUrlValue = '';
  private httpsUrlValue = '';

  constructor(private readonly options: RiakDoubleOptions) {
    this.rand = seededRandom(options.seed);
    this.faults = { unavailable: 0, slow: 0, slowMs: 0, reset: 0, streamReset: 0, streamTimeout: 0, listingUnavailable: 0, ...options.faults };
    for (const type of options.bucketTypes ?? ['mam_yz']) this.store.set(type, new Map());
  }

  /** `http://127.0.0.1:PORT` (with security on, every request there answers 426). */
  get httpUrl(): string {
    return this.httpUrlValue;
  }

  /** `https://127.0.0.1:PORT` when security is on, else ''. */
  get httpsUrl(): string {
    return this.httpsUrlValue;
  }

  /** The URL a client should use: HTTPS when security is on. */
  get url(): string {
    return this.httpsUrlValue || this.httpUrlValue;
  }

  async start(): Promise<this> {
    const plain = createHttpServer((req, res) => void this.handle(req, res, false));
    this.httpUrlValue = `http://127.0.0.1:${await this.listen(plain)}`;
    const security = this.options.security;
    if (security) {
      const secure = createHttpsServer({ key: security.key, cert: security.cert }, (req, res) => void this.handle(req, res, true));
      this.httpsUrlValue = `https://127.0.0.1:${await this.listen(secure)}`;
    }
    this.forgetAtExit = stopAtExit(() => this.destroyAll());
    return this;
  }

  async stop(): Promise<void> {
    this.forgetAtExit();
    this.destroyAll();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  // ------------------------------------------------------------------------------------------
  // The store, for loading and asserting (MongooseIM would have written these objects).

  /** Writes a map's registers directly (names without the `_register` suffix), as MongooseIM would. */
  putMap(bucket: string, key: string, registers: Record<string, string | Uint8Array>, type = 'mam_yz'): void {
    const buckets = this.bucketsOf(type);
    let keys = buckets.get(bucket);
    if (keys === undefined) buckets.set(bucket, (keys = new Map()));
    const map = keys.get(key) ?? { registers: new Map(), context: '' };
    for (const [name, value] of Object.entries(registers)) map.registers.set(name, Buffer.from(value));
    map.context = this.newContext();
    keys.set(key, map);
  }

  /** A map's registers as text (names without suffix), or undefined. */
  getMap(bucket: string, key: string, type = 'mam_yz'): Record<string, string> | undefined {
    const map = this.store.get(type)?.get(bucket)?.get(key);
    if (map === undefined) return undefined;
    return Object.fromEntries([...map.registers].map(([name, value]) => [name, value.toString('utf8')]));
  }

  /** Every (bucket, key) of a type, for assertions. */
  *entries(type = 'mam_yz'): Generator<{ bucket: string; key: string; registers: Record<string, string> }> {
    for (const [bucket, keys] of this.bucketsOf(type)) {
      for (const key of keys.keys()) yield { bucket, key, registers: this.getMap(bucket, key, type)! };
    }
  }

  /** The next listings of `kind` (bucket listings, or key listings and `$bucket` pages) meet these faults, in order. */
  failNextListings(kind: 'buckets' | 'keys', faults: readonly ListingFault[]): void {
    this.scripted[kind].push(...faults);
  }

  /** The next updates of this object meet these faults, in order (then updates are answered as usual). */
  failNextUpdates(bucket: string, key: string, faults: readonly UpdateFault[], type = 'mam_yz'): void {
    const id = JSON.stringify([type, bucket, key]);
    this.scriptedUpdates.set(id, [...(this.scriptedUpdates.get(id) ?? []), ...faults]);
  }

  /** Resolves when the next update of this object arrives (before any fault or answer). */
  updateArrives(bucket: string, key: string, type = 'mam_yz'): Promise<void> {
    const id = JSON.stringify([type, bucket, key]);
    return new Promise((resolve) => this.updateWaiters.set(id, [...(this.updateWaiters.get(id) ?? []), resolve]));
  }

  /** Removes registers of a map (names without suffix), as if they had never been written. */
  removeRegisters(bucket: string, key: string, names: readonly string[], type = 'mam_yz'): void {
    const map = this.store.get(type)?.get(bucket)?.get(key);
    if (map === undefined) throw new Error(`riak double: no object ${bucket} ${key}`);
    for (const name of names) map.registers.delete(name);
    map.context = this.newContext();
  }

  /** Removes an object, as a delete by MongooseIM (or anyone) would. */
  deleteMap(bucket: string, key: string, type = 'mam_yz'): boolean {
    return this.store.get(type)?.get(bucket)?.delete(key) ?? false;
  }

  schema(name: string): Buffer | undefined {
    return this.schemas.get(name);
  }

  // ------------------------------------------------------------------------------------------

  private listen(server: Server): Promise<number> {
    this.servers.push(server);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  }

  private destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    for (const server of this.servers) server.close();
  }

  private bucketsOf(type: string): Map<string, Map<string, StoredMap>> {
    const buckets = this.store.get(type);
    if (buckets === undefined) throw new Error(`riak double: bucket type '${type}' does not exist`);
    return buckets;
  }

  /** An opaque context that changes with every update (Riak's is a base64 version vector). */
  private newContext(): string {
    return randomBytes(12).toString('base64');
  }

  private async handle(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    try {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://double');
      // Riak decodes each path segment itself (riak_kv_wm_utils:maybe_decode_uri/2, http_url_encoding on):
      // split first, so an encoded '/' (%2F) stays inside its key.
      const segments = url.pathname
        .split('/')
        .slice(1)
        .map((s) => decodeURIComponent(s));
      if (!this.authorized(req, res, secure)) return;
      await this.route(req.method ?? 'GET', segments, url.searchParams, req, body, res);
    } catch (error) {
      if (!res.headersSent) text(res, 500, `Error:\n${(error as Error).message}\n`);
      else res.destroy();
    }
  }

  /** riak_api_web_security:is_authorized/1 as every resource uses it. */
  private authorized(req: IncomingMessage, res: ServerResponse, secure: boolean): boolean {
    const security = this.options.security;
    if (!security) return true;
    if (!secure) {
      this.stats.refusedPlainHttp++;
      res.writeHead(426, { 'Content-Type': 'text/plain' }).end(INSECURE_MESSAGE);
      return false;
    }
    const header = req.headers.authorization ?? '';
    const match = /^Basic\s+(.+)$/i.exec(header);
    const given = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    if (given === `${security.username}:${security.password}`) return true;
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="Riak"', 'Content-Type': 'text/html' }).end();
    return false;
  }

  private async route(method: string, s: string[], query: URLSearchParams, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    if (s[0] === 'search' && s[1] === 'schema' && s.length === 3) return this.schemaResource(method, s[2], req, body, res);
    if (s[0] !== 'types' || s[2] !== 'buckets') return html404(res);
    const type = s[1];
    if (s.length === 3) return this.onlyGet(method, res, () => this.listBuckets(type, query, res));
    const bucket = s[3];
    if (s.length === 5 && s[4] === 'keys') return this.onlyGet(method, res, () => this.listKeys(type, bucket, query, res));
    if (s.length >= 6 && s[4] === 'index') return this.onlyGet(method, res, () => this.index(type, bucket, s.slice(5), query, res));
    if (s.length === 6 && s[4] === 'datatypes') return this.datatype(method, type, bucket, s[5], query, req, body, res);
    return html404(res);
  }

  private async onlyGet(method: string, res: ServerResponse, body: () => Promise<void> | void): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    await body();
  }

  // --- listings ------------------------------------------------------------------------------

  /** The fault this listing meets: scripted first, else drawn; a 503 is answered here. */
  private listingFault(kind: 'buckets' | 'keys', res: ServerResponse): ListingFault | null {
    const fault = this.scripted[kind].shift() ?? (this.rand() < this.faults.listingUnavailable ? '503' : null);
    if (fault === '503') {
      this.stats.injectedListing503++;
      text(res, 503, 'Unable to connect to Riak: {error,timeout}\n');
    }
    return fault;
  }

  private listBuckets(type: string, query: URLSearchParams, res: ServerResponse): Promise<void> | void {
    const buckets = this.store.get(type);
    if (buckets === undefined) return html404(res);
    const fault = this.listingFault('buckets', res);
    if (fault === '503') return;
    this.stats.listings++;
    const names = [...buckets].filter(([, keys]) => keys.size > 0).map(([name]) => name);
    const mode = query.get('buckets');
    if (mode === 'stream') return this.stream(res, 'buckets', shuffle(names, this.rand), fault);
    json(res, 200, { buckets: mode === 'true' ? shuffle(names, this.rand) : [] });
  }

  private listKeys(type: string, bucket: string, query: URLSearchParams, res: ServerResponse): Promise<void> | void {
    const buckets = this.store.get(type);
    if (buckets === undefined) return html404(res);
    const fault = this.listingFault('keys', res);
    if (fault === '503') return;
    this.stats.listings++;
    // A snapshot, in no particular order: Riak gathers keys from every vnode as they come.
    const keys = shuffle([...(buckets.get(bucket)?.keys() ?? [])], this.rand);
    const mode = query.get('keys');
    if (mode === 'stream') return this.stream(res, 'keys', keys, fault);
    json(res, 200, mode === 'true' ? { keys } : {});
  }

  /** Chunked: one JSON object per chunk, then the empty one (or a timeout error, or a reset). */
  private async stream(res: ServerResponse, field: 'keys' | 'buckets', items: string[], scripted: ListingFault | null = null): Promise<void> {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const chunkSize = this.options.keysPerChunk ?? 50;
    const breakAt =
      scripted === 'cut'
        ? 'reset'
        : scripted === 'timeout'
          ? 'timeout'
          : this.rand() < this.faults.streamReset
            ? 'reset'
            : this.rand() < this.faults.streamTimeout
              ? 'timeout'
              : null;
    let sent = 0;
    for (let i = 0; i < items.length || (scripted !== null && sent === 0);) {
      const n = 1 + Math.floor(this.rand() * chunkSize);
      // A scripted fault cuts after the first chunk, which then holds at most half of the list.
      const chunk = items.slice(i, i + (scripted !== null && sent === 0 ? Math.min(n, Math.floor(items.length / 2)) : n));
      i += chunk.length;
      const flushed = res.write(mochiEncode({ [field]: chunk }));
      sent++;
      if (!flushed) await new Promise((resolve) => res.once('drain', resolve));
      if (breakAt !== null && sent >= 1 && (scripted !== null || this.rand() < 0.3)) {
        if (breakAt === 'reset') {
          this.stats.injectedStreamResets++;
          // Cut after what was sent reached the client, as a node dying mid-listing does.
          await new Promise<void>((resolve) => res.write('', () => resolve()));
          await new Promise((resolve) => setTimeout(resolve, 10));
          res.socket?.destroy();
          return;
        }
        this.stats.injectedStreamTimeouts++;
        res.end(mochiEncode({ error: 'timeout' }));
        return;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.end(mochiEncode({ [field]: [] }));
  }

  private index(type: string, bucket: string, args: string[], query: URLSearchParams, res: ServerResponse): void {
    const buckets = this.store.get(type);
    if (buckets === undefined) return html404(res);
    if (args[0] !== '$bucket') return text(res, 400, 'riak double: only the $bucket index is modelled\n');
    const maxRaw = query.get('max_results');
    let max = Infinity;
    if (maxRaw !== null) {
      max = Number(maxRaw);
      if (!/^-?\d+$/.test(maxRaw) || max <= 0) return text(res, 400, `Invalid "max_results". "${maxRaw}" is not a positive integer`);
    }
    if (this.options.secondaryIndexes === false) {
      return text(res, 500, 'Error:\n{error,{indexes_not_supported,riak_kv_bitcask_backend}}\n');
    }
    const fault = this.listingFault('keys', res);
    if (fault === '503') return;
    if (fault === 'cut') {
      this.stats.injectedStreamResets++;
      res.socket?.destroy();
      return;
    }
    // A query that timed out on the server: riak_kv_wm_index answers 503 (handle_common_error/3).
    if (fault === 'timeout') return text(res, 503, 'request timed out\n');
    this.stats.listings++;
    const sorted = [...(buckets.get(bucket)?.keys() ?? [])].sort(compareBinary);
    const continuation = query.get('continuation');
    let from = 0;
    if (continuation !== null) {
      const last = decodeContinuation(continuation);
      if (last === undefined) return text(res, 400, `Invalid query: {error,{invalid_continuation,"${continuation}"}}\n`);
      from = sorted.findIndex((k) => compareBinary(k, last) > 0);
      if (from < 0) from = sorted.length;
    }
    const page = sorted.slice(from, from + max);
    // riak_kv_wm_index:make_continuation/3: only when the page holds exactly max_results keys.
    const next = page.length === max ? { continuation: encodeContinuation(page[page.length - 1]) } : {};
    json(res, 200, { keys: page, ...next });
  }

  // --- data types ----------------------------------------------------------------------------

  private async datatype(
    method: string,
    type: string,
    bucket: string,
    key: string,
    query: URLSearchParams,
    req: IncomingMessage,
    body: Buffer,
    res: ServerResponse,
  ): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, HEAD, POST' }).end();
      return;
    }
    if (method === 'POST') {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (contentType !== 'application/json') {
        this.stats.refusedContentType++;
        res.writeHead(406).end();
        return;
      }
    }
    for (const name of ['include_context', 'returnbody']) {
      const v = query.get(name);
      if (v !== null && !['true', 'false', 'default'].includes(v.toLowerCase())) return text(res, 400, `${name} query parameter must be true or false\n`);
    }
    const buckets = this.store.get(type);
    if (buckets === undefined) return text(res, 404, `Unknown bucket type: ${type}\n`);
    if (method === 'POST') {
      const id = JSON.stringify([type, bucket, key]);
      const waiters = this.updateWaiters.get(id) ?? [];
      this.updateWaiters.delete(id);
      for (const wake of waiters) wake();
      let fault = this.scriptedUpdates.get(id)?.shift();
      if (fault !== undefined) {
        if (typeof fault === 'object') {
          const held = fault;
          await held.until;
          fault = held.then === '503' ? '503' : undefined;
        }
        if (fault === '503') {
          this.stats.injected503++;
          return text(res, 503, 'request timed out\n');
        }
        return this.update(buckets, bucket, key, query, body, res, fault === 'lost-answer');
      }
    }
    if (await this.injectFault(res)) return;
    if (method === 'POST') return this.update(buckets, bucket, key, query, body, res);
    this.stats.fetches++;
    const map = buckets.get(bucket)?.get(key);
    if (map === undefined) return json(res, 404, { type: 'map', error: 'notfound' });
    const includeContext = (query.get('include_context') ?? 'true').toLowerCase() !== 'false';
    this.sendMap(res, map, includeContext);
  }

  private sendMap(res: ServerResponse, map: StoredMap, includeContext: boolean): void {
    let value: Record<string, string>;
    try {
      value = Object.fromEntries([...map.registers].map(([name, bytes]) => [`${name}_register`, registerText(bytes)]));
    } catch (error) {
      if (!(error instanceof NotUtf8Error)) throw error;
      // mochijson2 exits on such a binary; webmachine answers 500 with its error page.
      return text(
        res,
        500,
        '<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1>The server encountered an error while processing this request:<br><pre>{error,{exit,{ucs,{bad_utf8_character_code}}}}</pre></body></html>',
        'text/html',
      );
    }
    json(res, 200, { type: 'map', value, ...(includeContext && map.context ? { context: map.context } : {}) });
  }

  /** riak_kv_crdt_json:update_request_from_json/3 for a map of registers. */
  private update(
    buckets: Map<string, Map<string, StoredMap>>,
    bucket: string,
    key: string,
    query: URLSearchParams,
    body: Buffer,
    res: ServerResponse,
    loseAnswer = false,
  ): void {
    let request: unknown;
    try {
      request = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    } catch (error) {
      return text(res, 400, `Couldn't decode JSON: ${(error as Error).message}\n`);
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return text(res, 400, `Invalid operation on datatype 'map': ${mochiEncode(request)}\n`);
    }
    const { context, ...ops } = request as Record<string, unknown>;
    if (context !== undefined && (typeof context !== 'string' || !isBase64(context))) {
      return text(res, 400, `Couldn't decode JSON: {invalid_context,${mochiEncode(context)}}\n`);
    }
    const assigns = new Map<string, Buffer>();
    const removes: string[] = [];
    for (const [verb, arg] of Object.entries(ops)) {
      if (verb === 'update') {
        if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return text(res, 400, `Couldn't decode JSON: update is not an object\n`);
        for (const [field, op] of Object.entries(arg)) {
          const parsed = FIELD_PATTERN.exec(field);
          if (!parsed) return text(res, 400, `Invalid map field name '${field}'\n`);
          if (parsed[2] !== 'register') return text(res, 400, `riak double: only registers are modelled, not '${field}'\n`);
          const value = typeof op === 'string' ? op : registerAssign(op);
          if (value === undefined) return text(res, 400, `Invalid operation on datatype 'register': ${mochiEncode(op)}\n`);
          assigns.set(parsed[1], Buffer.from(value, 'utf8'));
        }
      } else if (verb === 'remove' || verb === 'add') {
        const fields = typeof arg === 'string' ? [arg] : Array.isArray(arg) ? arg : null;
        if (fields === null) return text(res, 400, `Invalid operation on datatype 'map': ${mochiEncode(request)}\n`);
        for (const field of fields) {
          const parsed = typeof field === 'string' ? FIELD_PATTERN.exec(field) : null;
          if (!parsed) return text(res, 400, `Invalid map field name '${String(field)}'\n`);
          if (verb === 'remove') removes.push(parsed[1]);
        }
      } else {
        return text(res, 400, `Invalid operation on datatype 'map': ${mochiEncode(request)}\n`);
      }
    }
    let keys = buckets.get(bucket);
    if (keys === undefined) buckets.set(bucket, (keys = new Map()));
    const map = keys.get(key) ?? { registers: new Map<string, Buffer>(), context: '' };
    for (const name of removes) map.registers.delete(name);
    for (const [name, value] of assigns) map.registers.set(name, value);
    map.context = this.newContext();
    keys.set(key, map);
    this.stats.updates++;
    if (loseAnswer) {
      this.stats.lostAnswers++;
      res.socket?.destroy();
      return;
    }
    if ((query.get('returnbody') ?? 'false').toLowerCase() === 'true') return this.sendMap(res, map, true);
    res.writeHead(204).end();
  }

  /** True when a fault was injected and the request is answered (or dropped) already. */
  private async injectFault(res: ServerResponse): Promise<boolean> {
    if (this.rand() < this.faults.slow) await new Promise((resolve) => setTimeout(resolve, this.faults.slowMs));
    if (this.rand() < this.faults.reset) {
      this.stats.injectedResets++;
      res.socket?.destroy();
      return true;
    }
    if (this.rand() < this.faults.unavailable) {
      this.stats.injected503++;
      text(res, 503, 'request timed out\n');
      return true;
    }
    return false;
  }

  // --- schemas -------------------------------------------------------------------------------

  private schemaResource(method: string, name: string, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    if (method === 'PUT') {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (contentType !== 'application/xml') {
        res.writeHead(415).end();
        return;
      }
      // yz_schema:store/2 parses the schema first; a body that is no Solr schema is refused.
      if (!/<schema[\s>]/.test(body.toString('utf8'))) return text(res, 400, 'Error storing schema {error,"failed to parse schema"}\n');
      this.schemas.set(name, body);
      this.stats.schemaPuts++;
      res.writeHead(204).end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, PUT' }).end();
      return;
    }
    const schema = this.schemas.get(name);
    if (schema === undefined) return html404(res);
    res.writeHead(200, { 'Content-Type': 'application/xml' }).end(schema);
  }
}

function registerAssign(op: unknown): string | undefined {
  if (typeof op !== 'object' || op === null || Array.isArray(op)) return undefined;
  const entries = Object.entries(op);
  if (entries.length !== 1 || entries[0][0] !== 'assign' || typeof entries[0][1] !== 'string') return undefined;
  return entries[0][1];
}

function isBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

/** Riak compares keys as binaries: byte order of their UTF-8. */
function compareBinary(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Opaque to clients, as Riak's (base64 of term_to_binary of the last result). */
function encodeContinuation(lastKey: string): string {
  return Buffer.from(JSON.stringify(['$bucket', lastKey]), 'utf8').toString('base64');
}

function decodeContinuation(token: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
    return Array.isArray(parsed) && parsed[0] === '$bucket' && typeof parsed[1] === 'string' ? parsed[1] : undefined;
  } catch {
    return undefined;
  }
}

function shuffle<T>(items: T[], rand: Rand): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = mochiEncode(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function html404(res: ServerResponse): void {
  text(res, 404, WEBMACHINE_404, 'text/html');
}

export async function startRiakDouble(options: RiakDoubleOptions): Promise<RiakDouble> {
  return new RiakDouble(options).start();
}
