/**
 * 100,000 MongooseIM-shaped documents on a real OpenSearch 2.19.6: the CLI is killed with
 * SIGKILL five times, each time after its checkpoints were seen to advance, then the server is
 * restarted under a running migration; runs are repeated until one ends. Every document must then
 * equal the same archive migrated in one uninterrupted run (a second index on the same server).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { startSearchServer, type SearchServer } from '../support/search-server.js';
import { seededRandom } from '../support/seeded-random.js';
import { buildArchive, loadArchive, mismatches, readFromJids, searchCall, type ArchiveDocument } from './archive-dataset.js';

const DOCUMENTS = 100_000;
const KILLS = 5;
const PROGRESS_WAIT_MS = 120_000;

async function checkpointState(url: string): Promise<string> {
  try {
    const body = (await searchCall(url, 'POST', '/mim_sender_jid_checkpoint/_search', JSON.stringify({ size: 100, query: { term: { 'index.keyword': 'muc_messages' } } }))) as {
      hits: { hits: { _id: string; _source: { mam_id: string; done: boolean } }[] };
    };
    return body.hits.hits.filter((h) => !h._id.startsWith('plan:')).map((h) => `${h._id}=${h._source.mam_id}${h._source.done ? '.' : ''}`).sort().join(' ');
  } catch {
    return ''; // no checkpoint index yet
  }
}

/** Resolves once the checkpoints differ from `before` (they are real-time reads after a refresh). */
async function progressBeyond(url: string, before: string): Promise<string> {
  const deadline = Date.now() + PROGRESS_WAIT_MS;
  while (Date.now() < deadline) {
    await searchCall(url, 'POST', '/mim_sender_jid_checkpoint/_refresh').catch(() => {});
    const now = await checkpointState(url);
    if (now !== '' && now !== before) return now;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no checkpoint progress within ${PROGRESS_WAIT_MS / 1000} s`);
}

describe('opensearch: kill -9 and a server restart during a 100,000-document run', () => {
  const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
  let server: SearchServer;
  let docs: ArchiveDocument[];

  before(async () => {
    console.log(`seed ${seed} (TEST_SEED=${seed} repeats this run)`);
    server = await startSearchServer('opensearch');
    docs = buildArchive(DOCUMENTS, seed, 200);
    await loadArchive(server.url, docs, { index: 'muc_messages', shards: 3 });
    await loadArchive(server.url, docs, { index: 'muc_reference', shards: 3 });
  });
  after(async () => {
    await server?.stop();
  });

  it('ends with every document equal to an uninterrupted run', async () => {
    const reference = new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }), { index: 'muc_reference' });
    const uninterrupted = await runMigration({ backend: reference, openStream: openInProcessStream, report: new MemoryReport(), applySchema: true, batchSize: 1000 });
    await reference.close();
    assert.equal(uninterrupted.reachedEnd, true);
    assert.deepEqual(mismatches(docs, await readFromJids(server.url, 'muc_reference')), []);

    const rand = seededRandom(seed);
    const args = ['elasticsearch', '--url', server.url, '--apply-schema', '--batch-size', '500', '--concurrency', '4', '--max-rate', '4000', '--report', '/dev/null'];
    let state = await checkpointState(server.url);
    let kills = 0;
    for (let attempt = 0; attempt < KILLS * 2 && kills < KILLS; attempt++) {
      const run = startMigrateProcess(args);
      state = await progressBeyond(server.url, state);
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 400)));
      run.kill9();
      const { status } = await run.done;
      if (status === 'SIGKILL') kills++;
      state = await checkpointState(server.url);
    }
    assert.equal(kills, KILLS, 'each kill hit a running migration after its checkpoints advanced');
    const partlyDone = await readFromJids(server.url, 'muc_messages');
    const written = [...partlyDone.values()].filter((v) => v !== undefined).length;
    assert.ok(written > 0 && written < docs.length - 1000, `the kills left work to do (${written} written)`);

    // A server restart while a migration runs: it retries and carries on.
    const during = startMigrateProcess(args);
    await progressBeyond(server.url, state);
    await server.restart();
    let final = await during.done;
    for (let rerun = 0; rerun < 3 && final.status !== 0; rerun++) final = await startMigrateProcess(args).done;
    assert.equal(final.status, 0, `a run reached the end:\n${final.stderr.slice(-3000)}`);

    const interrupted = await readFromJids(server.url, 'muc_messages');
    const expected = await readFromJids(server.url, 'muc_reference');
    const differing = [...expected].filter(([id, jid]) => interrupted.get(id) !== jid).map(([id]) => id);
    assert.deepEqual(differing.slice(0, 10), [], `${differing.length} documents differ from the uninterrupted run`);
    assert.equal(interrupted.size, expected.size);
  });
});
