/**
 * Elasticsearch/OpenSearch backfill benchmark, per server, same run, same documents:
 * (a) baseline: our own walk (search_after pages of documents without from_jid) + `_bulk`
 *     partial updates setting a constant from_jid, no decoding;
 * (b) the migration end to end: the same walk, decoding in the in-process pool (piscina workers),
 *     the backend's decisions, `_bulk` updates, checkpoints.
 * Each on its own fresh copy of the archive (all copies force-merged first), after an untimed warm-up walk, in the order baseline,
 * migration, baseline again. Prints docs/s of each and the ratio b / mean(a) (target >= 0.8),
 * and (c) the decoding pool alone on the same payloads, which says how much of a shortfall is
 * decoding competing with the server for the same cores.
 *
 *   npm run build && node dist/bench/elasticsearch-backfill.js [--docs 100000] [--distinct 20000] [--warmup DOCS] [--servers opensearch,elasticsearch] [--seed 7]
 *
 * `--distinct`: payloads Erlang makes; documents cycle through them (100,000 take Erlang minutes).
 */
import { parseArgs } from 'node:util';
import { ElasticsearchBackend } from '../clients/backends/elasticsearch/elasticsearch-backend.js';
import { SearchHttp } from '../clients/backends/elasticsearch/search-http.js';
import { openDecoder } from '../clients/decoder-client/index.js';
import { MemoryReport } from '../clients/pipeline/report.js';
import { runMigration } from '../clients/pipeline/run-migration.js';
import type { ExtractStream, OpenExtractStream } from '../clients/pipeline/types.js';
import { buildArchive, loadArchive, searchCall } from '../test/elasticsearch/archive-dataset.js';
import { SEARCH_SERVER_VERSION, startSearchServer, type SearchProduct } from '../test/support/search-server.js';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '100000' },
    distinct: { type: 'string', default: '20000' },
    // Default: as many as --docs (shorter warm-ups left the first timed walk of a server slowest).
    warmup: { type: 'string' },
    servers: { type: 'string', default: 'opensearch,elasticsearch' },
    seed: { type: 'string', default: '7' },
  },
});
const count = Number(values.docs);
const distinct = Number(values.distinct);
const warmup = Math.max(1, Math.min(count, Number(values.warmup ?? count)));
const seed = Number(values.seed);
const BATCH = 2000;
const CONCURRENCY = 4;

/** Answers every payload with the same sender, without looking at it. */
const constantStream: OpenExtractStream = (): ExtractStream => ({
  async extract(items) {
    return items.map((item) => ({ key: item.key, ok: true, bareJid: 'bench@example.com', user: 'bench', server: 'example.com' }));
  },
  async end() {},
});

async function timed(url: string, index: string, openStream: OpenExtractStream): Promise<number> {
  const backend = new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(url)], maxSockets: 16 }), { index });
  try {
    const started = performance.now();
    const summary = await runMigration({ backend, openStream, report: new MemoryReport(), applySchema: true, batchSize: BATCH, concurrency: CONCURRENCY });
    const seconds = (performance.now() - started) / 1000;
    if (!summary.reachedEnd) throw new Error(`${index}: the walk did not reach its end`);
    return summary.records / seconds;
  } finally {
    await backend.close();
  }
}

/** The decoding pool alone: every payload, in batches of BATCH, CONCURRENCY batches in flight. */
async function decodeOnly(payloads: readonly Uint8Array[]): Promise<number> {
  const decoder = await openDecoder({ maxInFlightBatches: CONCURRENCY });
  try {
    const stream = await decoder.openStream('xml');
    const started = performance.now();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < payloads.length) {
        const from = next;
        next += BATCH;
        await stream.extract(payloads.slice(from, from + BATCH).map((payload, i) => ({ key: String(i), payload })));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const rate = payloads.length / ((performance.now() - started) / 1000);
    await stream.end();
    return rate;
  } finally {
    await decoder.close();
  }
}

console.log(
  `seed ${seed}, ${count} documents (Erlang-made XML, ${Math.min(count, distinct)} distinct payloads), warm-up walk of ${warmup}, batch ${BATCH}, concurrency ${CONCURRENCY}`,
);
const docs = buildArchive(count, seed, 200, distinct);
const payloads = docs.map((d) => Buffer.from(typeof d.message === 'string' ? d.message : '', 'utf8'));
for (const product of values.servers!.split(',') as SearchProduct[]) {
  const server = await startSearchServer(product);
  try {
    const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
    // A fresh JVM and fresh indices favour whatever runs second: a warm-up walk first, then
    // baseline, migration, baseline again, each on its own copy; the ratio is against the mean.
    for (const index of ['warmup', 'baseline', 'migration', 'baseline_again']) {
      await loadArchive(server.url, index === 'warmup' ? docs.slice(0, warmup) : docs, { index, shards: 3, bodyAnalyzer });
    }
    // Background merges of the freshly loaded copies would slow whichever run comes first.
    await searchCall(server.url, 'POST', '/warmup,baseline,migration,baseline_again/_forcemerge?max_num_segments=1');
    await timed(server.url, 'warmup', constantStream);
    const baseline = await timed(server.url, 'baseline', constantStream);
    const decoder = await openDecoder({ maxInFlightBatches: CONCURRENCY });
    let migration: number;
    try {
      migration = await timed(server.url, 'migration', (format) => decoder.openStream(format));
    } finally {
      await decoder.close();
    }
    const baselineAgain = await timed(server.url, 'baseline_again', constantStream);
    const floor = (baseline + baselineAgain) / 2;
    // With the server idle but running, as during the runs.
    const decoding = await decodeOnly(payloads);
    console.log(
      `${product} ${SEARCH_SERVER_VERSION[product]}: baseline ${baseline.toFixed(0)} then ${baselineAgain.toFixed(0)} docs/s (mean ${floor.toFixed(0)}), ` +
        `migration ${migration.toFixed(0)} docs/s, ratio ${(migration / floor).toFixed(2)} (target >= 0.8); decoding alone ${decoding.toFixed(0)} docs/s`,
    );
  } finally {
    await server.stop();
  }
}
