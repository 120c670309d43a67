/**
 * The Elasticsearch/OpenSearch backend against others on the same store, on one real OpenSearch
 * 2.19.6: a document changed between the walk's read and its write (409 on the conditional
 * update), two migrations on one index, four `--shard K/4` processes storing the partition plan
 * while the node refuses writes with 429, and pages of multi-MB messages bounded by bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { CHECKPOINT_INDEX } from '../../clients/backends/elasticsearch/checkpoint-store.js';
import { SearchHttp, type SearchResponse } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { migrationExitStatus, runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startSearchServer, type SearchServer } from '../support/search-server.js';
import { mucMapping, readFromJids, searchCall } from './archive-dataset.js';
import { startSearchProxy, type SearchProxy } from './search-proxy.js';

const TEST_BULK_RETRY = { rounds: 40, firstPauseMs: 5, longestPauseMs: 200 };
const TEST_BACKOFF = { baseMs: 20, maxMs: 500 };

interface Doc {
  readonly id: string;
  readonly mamId: number;
  readonly room: string;
  /** Undefined: an undecodable message. */
  readonly sender?: string;
  /** Characters of filler in the body (multi-MB messages). */
  readonly filler?: number;
}

function message(d: Doc): string {
  if (d.sender === undefined) return `<message from='${d.room}/nick' type='groupchat'><body>${'y'.repeat(d.filler ?? 2)}`;
  return `<message from='${d.room}/nick' to='${d.room}' type='groupchat' id='m'><body>${'x'.repeat(d.filler ?? 2)}</body><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' jid='${d.sender}/res' role='participant'/></x></message>`;
}

async function load(url: string, index: string, docs: readonly Doc[]): Promise<void> {
  await searchCall(url, 'PUT', `/${index}`, JSON.stringify({ settings: { number_of_shards: 3, number_of_replicas: 0 }, mappings: mucMapping(false) }));
  for (let start = 0; start < docs.length; start += 200) {
    const lines: string[] = [];
    for (const d of docs.slice(start, start + 200)) {
      lines.push(JSON.stringify({ index: { _id: d.id } }));
      lines.push(JSON.stringify({ mam_id: d.mamId, room: d.room, source_jid: `${d.room}/nick`, message: message(d), body: 'hi' }));
    }
    const answer = (await searchCall(url, 'POST', `/${index}/_bulk`, lines.join('\n') + '\n', 'application/x-ndjson')) as { errors: boolean };
    assert.equal(answer.errors, false);
  }
  await searchCall(url, 'POST', `/${index}/_refresh`);
}

function smallDocs(prefix: string, count: number): Doc[] {
  const docs: Doc[] = [];
  for (let i = 0; i < count; i++)
    docs.push({ id: `${prefix}${i}`, mamId: 1000 + i, room: `r${i % 3}@muc.example.com`, ...(i % 13 === 7 ? {} : { sender: `${prefix}${i}@example.com` }) });
  return docs;
}

/** Differences from "each document holds its own sender, or is undecodable and reported". */
function wrong(docs: readonly Doc[], stored: Map<string, string | undefined>, reported: ReadonlySet<string>, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const d of docs) {
    if (skip.has(d.id)) continue;
    if (d.sender !== undefined && stored.get(d.id) !== d.sender) out.push(`${d.id}: from_jid ${JSON.stringify(stored.get(d.id))}, expected ${d.sender}`);
    if (d.sender === undefined && (stored.get(d.id) !== undefined || !reported.has(d.id))) out.push(`${d.id}: undecodable, not reported or written`);
  }
  return out;
}

/** Plays another writer once, on the first `_bulk` to the archive, before it is sent. */
class HookedHttp extends SearchHttp {
  private fired = false;
  constructor(
    url: string,
    private readonly index: string,
    private readonly hook: (ndjson: readonly unknown[]) => Promise<void>,
  ) {
    super({ nodes: [new URL(url)], maxSockets: 8 });
  }

  override async request<T = unknown>(method: string, path: string, body?: unknown, ndjson?: readonly unknown[]): Promise<SearchResponse<T>> {
    // The first bulk of four documents or more (the run's first page holds one).
    if (!this.fired && ndjson !== undefined && ndjson.length >= 8 && path === `/${this.index}/_bulk`) {
      this.fired = true;
      await this.hook(ndjson);
    }
    return super.request<T>(method, path, body, ndjson);
  }
}

/**
 * Gives up one bulk part-way, as a node going away does: the first bulk of four updates or more
 * sends only its first half to the node (answered as the node answers) and answers the rest 429,
 * refused for load; the re-send of that rest is answered 503. Everything else goes to the node.
 */
class BulkGivingUpHttp extends SearchHttp {
  /** `_id`s answered 429 (their re-send is answered 503), once the bulk was cut. */
  private refused: Set<string> | null = null;
  /** Updates of the cut bulk the node answered 2xx, and whether their re-send was refused. */
  landed = 0;
  gaveUp = false;
  constructor(
    url: string,
    private readonly index: string,
  ) {
    super({ nodes: [new URL(url)], maxSockets: 8 });
  }

  override async request<T = unknown>(method: string, path: string, body?: unknown, ndjson?: readonly unknown[]): Promise<SearchResponse<T>> {
    if (ndjson === undefined || path !== `/${this.index}/_bulk`) return super.request<T>(method, path, body, ndjson);
    const idOf = (i: number): string => (ndjson[i] as { update: { _id: string } }).update._id;
    if (this.refused === null && ndjson.length >= 8) {
      const half = Math.floor(ndjson.length / 4) * 2;
      const sent = await super.request<{ items: { update: { status: number } }[] }>(method, path, body, ndjson.slice(0, half));
      this.landed = sent.body.items.filter((item) => item.update.status < 300).length;
      this.refused = new Set();
      const items: unknown[] = [...sent.body.items];
      for (let i = half; i < ndjson.length; i += 2) {
        this.refused.add(idOf(i));
        const error = { type: 'es_rejected_execution_exception', reason: 'rejected execution (queue capacity 4)' };
        items.push({ update: { _id: idOf(i), status: 429, error } });
      }
      return { status: 200, body: { errors: true, items } as T };
    }
    if (!this.gaveUp && this.refused?.has(idOf(0)) === true) {
      this.gaveUp = true;
      return { status: 503, body: { error: { type: 'unavailable_shards_exception', reason: 'the node is leaving' }, status: 503 } as T };
    }
    return super.request<T>(method, path, body, ndjson);
  }
}

describe('opensearch: other writers on the same store', () => {
  let server: SearchServer;
  const proxies: SearchProxy[] = [];
  const backends: ElasticsearchBackend[] = [];
  const backendOn = (http: SearchHttp, index: string): ElasticsearchBackend => {
    const backend = new ElasticsearchBackend(http, { index }, TEST_BULK_RETRY);
    backends.push(backend);
    return backend;
  };
  const plainHttp = (url: string): SearchHttp => new SearchHttp({ nodes: [new URL(url)], maxSockets: 8 });

  before(async () => {
    server = await startSearchServer('opensearch');
  });
  after(async () => {
    for (const b of backends) await b.close().catch(() => {});
    for (const p of proxies) await p.close().catch(() => {});
    await server?.stop();
  });

  it('a document changed between read and write: our value meanwhile is skipped, another kept and reported, a deletion reported', async () => {
    const index = 'conflicts';
    const docs = smallDocs('c', 40);
    // One outlier far above, so that the first partition holds the other 40.
    docs.push({ id: 'far', mamId: 100_000, room: 'r0@muc.example.com', sender: 'far@example.com' });
    await load(server.url, index, docs);
    const touched: string[] = [];
    const http = new HookedHttp(server.url, index, async (ndjson) => {
      for (let i = 0; i + 1 < ndjson.length && touched.length < 4; i += 2) {
        const id = (ndjson[i] as { update: { _id: string } }).update._id;
        const jid = (ndjson[i + 1] as { doc: { from_jid: string } }).doc.from_jid;
        const path = `/${index}/_update/${encodeURIComponent(id)}`;
        const n = touched.push(id);
        if (n === 1) await searchCall(server.url, 'POST', path, JSON.stringify({ doc: { from_jid: jid } }));
        if (n === 2) await searchCall(server.url, 'POST', path, JSON.stringify({ doc: { from_jid: 'someone.else@example.com' } }));
        if (n === 3) await searchCall(server.url, 'POST', path, JSON.stringify({ doc: { body: 'edited' } }));
        if (n === 4) await searchCall(server.url, 'DELETE', `/${index}/_doc/${encodeURIComponent(id)}`);
      }
    });
    const backend = backendOn(http, index);
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend,
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      batchSize: 10,
      concurrency: 1,
    });
    assert.equal(touched.length, 4);
    const [same, other, edited, deleted] = touched;
    const stored = await readFromJids(server.url, index);
    const lines = new Map(report.rows.map((r) => [r.fields._id, r]));
    assert.deepEqual(wrong(docs, stored, new Set(lines.keys()), new Set([other, deleted])), []);
    assert.equal(stored.get(other), 'someone.else@example.com', 'a value written meanwhile by someone else is not overwritten');
    assert.match(lines.get(other)?.detail ?? '', /someone\.else@example\.com.*left as it is/);
    assert.equal(lines.get(other)?.reason, 'write_refused');
    assert.equal(stored.has(deleted), false);
    assert.match(lines.get(deleted)?.detail ?? '', /deleted meanwhile/);
    assert.equal(lines.has(same), false, 'our own value written meanwhile is not reported');
    assert.equal(lines.has(edited), false);
    assert.equal(summary.skipped, 1, 'the document that already held our value counts as written meanwhile by someone else');
    assert.ok(backend.bulkStats.conflicts >= 3, `conflicts ${backend.bulkStats.conflicts}`);
    assert.equal(summary.reachedEnd, true);
    assert.equal(migrationExitStatus(summary), 0);
  });

  it('two migrations on one index and shard: every document written once, by one of them, nothing refused', async () => {
    const index = 'two_writers';
    const docs = smallDocs('t', 400);
    await load(server.url, index, docs);
    const run = async () => {
      const report = new MemoryReport<string>();
      const summary = await runMigration({
        backend: backendOn(plainHttp(server.url), index),
        openStream: openInProcessStream,
        report,
        applySchema: true,
        backoff: TEST_BACKOFF,
        batchSize: 7,
        concurrency: 3,
      });
      return { summary, report };
    };
    const [a, b] = await Promise.all([run(), run()]);
    const reported = new Set([...a.report.rows, ...b.report.rows].map((r) => r.fields._id));
    assert.deepEqual(wrong(docs, await readFromJids(server.url, index), reported), []);
    assert.deepEqual(
      [...a.report.rows, ...b.report.rows].filter((r) => r.reason === 'write_refused').map((r) => r.fields._id),
      [],
    );
    const decodable = docs.filter((d) => d.sender !== undefined).length;
    assert.equal(a.summary.written + b.summary.written, decodable, 'each document is written by exactly one of the two');
  });

  it('a bulk giving up part-way while later batches land: written counts each document once', async () => {
    const index = 'gave_up';
    const docs = smallDocs('g', 120);
    await load(server.url, index, docs);
    const http = new BulkGivingUpHttp(server.url, index);
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend: backendOn(http, index),
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      batchSize: 10,
      concurrency: 2,
    });
    assert.equal(summary.reachedEnd, true);
    assert.ok(http.gaveUp && http.landed > 0, `a bulk gave up after ${http.landed} updates landed`);
    assert.ok(summary.retries >= 1);
    const reported = new Set(report.rows.map((r) => r.fields._id));
    assert.deepEqual(wrong(docs, await readFromJids(server.url, index), reported), []);
    // The updates that landed before the bulk gave up, and the batches written while it failed, are
    // passed over by the retry's reads: counted when they landed, once. (A search not yet refreshed
    // may still hand one out: its write then meets our own value and counts it skipped, not written.)
    const decodable = docs.filter((d) => d.sender !== undefined).length;
    assert.equal(summary.written, decodable);
    assert.equal(summary.reported, docs.length - decodable);
  });

  it('four --shard K/4 processes on a fresh index, the plan create answered 429: each retries, all share one plan', async () => {
    const index = 'plan_busy';
    const docs = smallDocs('p', 200);
    await load(server.url, index, docs);
    let refused = 0;
    const proxy = await startSearchProxy(server.url, (method, path) => {
      if (method === 'PUT' && path.startsWith(`/${CHECKPOINT_INDEX}/_doc/plan%3A${index}?`) && refused < 8) {
        refused++;
        return {
          status: 429,
          body: {
            error: {
              root_cause: [{ type: 'rejected_execution_exception', reason: 'rejected execution (queue capacity 1)' }],
              type: 'rejected_execution_exception',
              reason: 'rejected execution (queue capacity 1)',
            },
            status: 429,
          },
        };
      }
      return undefined;
    });
    proxies.push(proxy);
    const reports = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const report = new MemoryReport<string>();
        const summary = await runMigration({
          backend: backendOn(plainHttp(proxy.url), index),
          openStream: openInProcessStream,
          report,
          applySchema: true,
          backoff: TEST_BACKOFF,
          shard: { index: k, count: 4 },
          batchSize: 9,
          concurrency: 2,
        });
        assert.equal(summary.reachedEnd, true, `shard ${k}/4`);
        return report;
      }),
    );
    assert.equal(refused, 8);
    const reported = new Set(reports.flatMap((r) => r.rows.map((row) => row.fields._id)));
    assert.deepEqual(wrong(docs, await readFromJids(server.url, index), reported), []);
    const plan = (await searchCall(server.url, 'GET', `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent(`plan:${index}`)}`)) as { _source: { id: string } };
    // A search sees the checkpoints only after a refresh.
    await searchCall(server.url, 'POST', `/${CHECKPOINT_INDEX}/_refresh`);
    const saved = (await searchCall(
      server.url,
      'POST',
      `/${CHECKPOINT_INDEX}/_search`,
      JSON.stringify({ size: 100, query: { term: { 'index.keyword': index } } }),
    )) as { hits: { hits: { _id: string; _source: { plan?: string } }[] } };
    const checkpoints = saved.hits.hits.filter((h) => h._id !== `plan:${index}`);
    assert.ok(checkpoints.length > 0);
    assert.deepEqual(
      checkpoints.filter((h) => h._source.plan !== plan._source.id).map((h) => h._id),
      [],
      'every shard saved its checkpoints under the one stored plan',
    );
  });

  it('large messages: no search answer holds more than --max-batch-bytes and one message, every document written or reported', async () => {
    const index = 'big_messages';
    // Just under the decoder's 1 MB payload limit, so that each one is written.
    const megabytes = 1000 * 1024;
    const docs: Doc[] = [];
    for (let i = 0; i < 10; i++)
      docs.push({ id: `b${i}`, mamId: 1000 + i, room: 'big@muc.example.com', filler: megabytes, ...(i === 6 ? {} : { sender: `b${i}@example.com` }) });
    docs.push({ id: 'far', mamId: 100_000, room: 'big@muc.example.com', sender: 'far@example.com' });
    await load(server.url, index, docs);
    const proxy = await startSearchProxy(server.url);
    proxies.push(proxy);
    const maxBatchBytes = 2 * 1024 * 1024 + 512 * 1024;
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend: backendOn(plainHttp(proxy.url), index),
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      batchSize: 100,
      maxBatchBytes,
      concurrency: 2,
    });
    assert.equal(summary.reachedEnd, true);
    assert.deepEqual(wrong(docs, await readFromJids(server.url, index), new Set(report.rows.map((r) => r.fields._id))), []);
    const searches = proxy.exchanges.filter((e) => e.path.startsWith(`/${index}/_search`));
    assert.ok(searches.length > 0);
    const bound = maxBatchBytes + megabytes + 64 * 1024;
    assert.deepEqual(
      searches.filter((e) => e.responseBytes > bound).map((e) => `${e.path}: ${e.responseBytes} bytes`),
      [],
      `every page answer within ${bound} bytes`,
    );
  });

  it("the node's circuit breaker refusing a page: the next search asks for fewer documents at once, and the walk ends", async () => {
    const index = 'breaker';
    const docs: Doc[] = [];
    for (let i = 0; i < 12; i++) docs.push({ id: `k${i}`, mamId: 1000 + i, room: 'k@muc.example.com', filler: 100 * 1024, sender: `k${i}@example.com` });
    docs.push({ id: 'far', mamId: 100_000, room: 'k@muc.example.com', sender: 'far@example.com' });
    await load(server.url, index, docs);
    // OpenSearch 2.19 guards no fetch with a breaker (see the README), so the proxy answers as a
    // node with a smaller heap does: the parent breaker's 429 to a search of more than 3 documents.
    let refused = 0;
    const proxy = await startSearchProxy(server.url, (method, path, body) => {
      if (method !== 'POST' || !path.startsWith(`/${index}/_search`)) return undefined;
      const size = (JSON.parse(body.toString('utf8')) as { size?: number }).size ?? 10;
      if (size <= 3) return undefined;
      refused++;
      const cause = {
        type: 'circuit_breaking_exception',
        reason: '[parent] Data too large, data for [<http_request>] would be larger than limit',
        durability: 'TRANSIENT',
      };
      return { status: 429, body: { error: { root_cause: [cause], ...cause }, status: 429 } };
    });
    proxies.push(proxy);
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend: backendOn(plainHttp(proxy.url), index),
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      maxRetries: 3,
      batchSize: 100,
      concurrency: 1,
    });
    assert.equal(summary.reachedEnd, true);
    assert.ok(refused > 0, 'the breaker refused some searches');
    assert.deepEqual(wrong(docs, await readFromJids(server.url, index), new Set(report.rows.map((r) => r.fields._id))), []);
  });
});
