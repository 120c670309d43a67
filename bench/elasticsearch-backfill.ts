/**
 * Elasticsearch/OpenSearch backfill benchmark, per server, same run, same documents:
 * (a) baseline: our own walk (search_after pages of documents without from_jid) + `_bulk`
 *     partial updates setting a constant from_jid, no decoding;
 * (b) the migration end to end: the same walk, decoding in the in-process pool (piscina workers),
 *     the backend's decisions, `_bulk` updates, checkpoints.
 * Each on its own fresh copy of the archive. Prints docs/s of both and the ratio b/a (target >= 0.8).
 *
 *   npm run build && node dist/bench/elasticsearch-backfill.js [--docs 100000] [--servers opensearch,elasticsearch] [--seed 7]
 */
import { parseArgs } from 'node:util';
import { ElasticsearchBackend } from '../clients/backends/elasticsearch/elasticsearch-backend.js';
import { SearchHttp } from '../clients/backends/elasticsearch/search-http.js';
import { openDecoder } from '../clients/decoder-client/index.js';
import { MemoryReport } from '../clients/pipeline/report.js';
import { runMigration } from '../clients/pipeline/run-migration.js';
import type { ExtractStream, OpenExtractStream } from '../clients/pipeline/types.js';
import { buildArchive, loadArchive } from '../test/elasticsearch/archive-dataset.js';
import { SEARCH_SERVER_VERSION, startSearchServer, type SearchProduct } from '../test/support/search-server.js';

const { values } = parseArgs({ options: { docs: { type: 'string', default: '100000' }, servers: { type: 'string', default: 'opensearch,elasticsearch' }, seed: { type: 'string', default: '7' } } });
const count = Number(values.docs);
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
    return summary.processed / seconds;
  } finally {
    await backend.close();
  }
}

console.log(`seed ${seed}, ${count} documents (Erlang-made XML), batch ${BATCH}, concurrency ${CONCURRENCY}`);
const docs = buildArchive(count, seed, 200);
for (const product of values.servers!.split(',') as SearchProduct[]) {
  const server = await startSearchServer(product);
  try {
    const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
    await loadArchive(server.url, docs, { index: 'baseline', shards: 3, bodyAnalyzer });
    await loadArchive(server.url, docs, { index: 'migration', shards: 3, bodyAnalyzer });
    const baseline = await timed(server.url, 'baseline', constantStream);
    const decoder = await openDecoder({ maxInFlightBatches: CONCURRENCY });
    let migration: number;
    try {
      migration = await timed(server.url, 'migration', (format) => decoder.openStream(format));
    } finally {
      await decoder.close();
    }
    console.log(`${product} ${SEARCH_SERVER_VERSION[product]}: baseline ${baseline.toFixed(0)} docs/s, migration ${migration.toFixed(0)} docs/s, ratio ${(migration / baseline).toFixed(2)} (target >= 0.8)`);
  } finally {
    await server.stop();
  }
}
