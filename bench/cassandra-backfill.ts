/**
 * Cassandra backfill throughput on a real Cassandra 5.0.9 node started here: 100,000 messages
 * (200,000 rows, both copies, payloads made by Erlang) loaded into two identical keyspaces, then
 *   baseline  the same pipeline, token-range reader and UPDATE writer, answering a constant
 *             from_jid for every '' copy without decoding anything;
 *   backfill  the real thing: payloads decoded by the in-process decoding pool (as `migrate`).
 * Prints rows/s of both (rows scanned = both copies) and the ratio; the target is >= 0.8.
 *
 *   npm run build && node dist/bench/cassandra-backfill.js [--messages N] [--batch-size N] [--concurrency N] [--seed S]
 */
import { parseArgs } from 'node:util';
import definition from '../clients/backends/cassandra/definition.js';
import { openDecoder } from '../clients/decoder-client/index.js';
import { MemoryReport } from '../clients/pipeline/report.js';
import { runMigration } from '../clients/pipeline/run-migration.js';
import type { AnyBackend, ExtractStream, OpenExtractStream } from '../clients/pipeline/types.js';
import { connectTestClient, createMongooseIm33Keyspace, loadMessages } from '../test/cassandra/archive.js';
import { buildRandomMessages } from '../test/cassandra/dataset.js';
import { startCassandra } from '../test/support/cassandra.js';
import { seededRandom } from '../cli/demo/seeded-random.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    'batch-size': { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1130' },
  },
});
const messages = Number(values.messages);
const batchSize = Number(values['batch-size']);
const concurrency = Number(values.concurrency);
const seed = Number(values.seed);

/** Answers every record with one constant sender: the pipeline's cost without the decoder's. */
const constantAnswers: OpenExtractStream = (): ExtractStream => ({
  async extract(items) {
    return items.map((item) => ({ key: item.key, ok: true as const, bareJid: 'bench@example.com', user: 'bench', server: 'example.com' }));
  },
  async end() {},
});

async function timedRun(backend: AnyBackend, openStream: OpenExtractStream): Promise<{ seconds: number; records: number }> {
  const summary = await runMigration({ backend, openStream, report: new MemoryReport(), batchSize, concurrency, applySchema: true });
  if (!summary.reachedEnd) throw new Error('the run did not reach its end');
  return { seconds: summary.durationMs / 1000, records: summary.records };
}

const node = await startCassandra();
try {
  console.log(`cassandra-backfill bench: ${messages} messages (${2 * messages} rows), batch ${batchSize}, concurrency ${concurrency}, seed ${seed}`);
  const data = buildRandomMessages(messages, seed, 300, seededRandom(seed));
  const client = await connectTestClient(node.contactPoint);
  for (const keyspace of ['bench_baseline', 'bench_backfill']) {
    await createMongooseIm33Keyspace(client, keyspace);
    await loadMessages(client, keyspace, data);
  }
  await client.shutdown();
  const open = (keyspace: string) => definition.open({ 'contact-points': node.contactPoint, keyspace }, { command: 'migrate', concurrency, log: () => {} });

  const baselineBackend = await open('bench_baseline');
  const baseline = await timedRun(baselineBackend, constantAnswers);
  await baselineBackend.close();

  const decoder = await openDecoder({ maxInFlightBatches: concurrency });
  const backfillBackend = await open('bench_backfill');
  const backfill = await timedRun(backfillBackend, decoder.openStream);
  await backfillBackend.close();
  await decoder.close();

  const rate = (r: { seconds: number }): number => (2 * messages) / r.seconds;
  console.log(
    `baseline (constant from_jid, no decoding): ${rate(baseline).toFixed(0)} rows/s (${baseline.records} '' copies written in ${baseline.seconds.toFixed(1)} s)`,
  );
  console.log(
    `backfill (${decoder.description}): ${rate(backfill).toFixed(0)} rows/s (${backfill.records} '' copies decoded in ${backfill.seconds.toFixed(1)} s)`,
  );
  console.log(`ratio backfill / baseline: ${(rate(backfill) / rate(baseline)).toFixed(2)} (target >= 0.80)`);
} finally {
  await node.stop();
}
