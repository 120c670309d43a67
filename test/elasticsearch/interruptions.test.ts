/**
 * 100,000 MongooseIM-shaped documents on a real OpenSearch 2.19.6: the CLI is killed with
 * SIGKILL five times, each time a seeded moment after its checkpoints were seen to advance, then
 * the server is stopped (SIGTERM) and started again on the same data and port under a running
 * migration, which must carry on and reach the end by itself. Every document must then equal the
 * same archive migrated in one uninterrupted run (a second index on the same server).
 *
 * Progress goes to stderr as `# ...` lines, so a slow step shows where it is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { PARTITION_COUNT, partitionName } from '../../clients/backends/elasticsearch/partition-plan.js';
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess, type MigrateProcess } from '../support/migrate-process.js';
import { startSearchServer, type SearchServer } from '../support/search-server.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { buildArchive, loadArchive, mismatches, readFromJids, searchCall, type ArchiveDocument } from './archive-dataset.js';

const DOCUMENTS = 100_000;
/** Payloads Erlang makes; the documents cycle through them (see buildArchive). */
const DISTINCT_PAYLOADS = 10_000;
const KILLS = 5;
/** Generous bounds on a shared machine; only there so that a hang fails instead of hanging. */
const PROGRESS_WAIT_MS = 180_000;
const RUN_WAIT_MS = 600_000;

const t0 = Date.now();
const note = (line: string): void => void process.stderr.write(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);

/** Partition -> checkpoint (`mam_id`, or `mam_id.` when done) of index muc_messages, read by id (real-time). */
async function checkpoints(url: string): Promise<Map<string, string>> {
  const ids = Array.from({ length: PARTITION_COUNT }, (_, i) => `muc_messages:${partitionName(i)}`);
  const out = new Map<string, string>();
  let body: { docs: { _id: string; found?: boolean; _source?: { mam_id: string; room: string; done: boolean } }[] };
  try {
    body = (await searchCall(url, 'POST', '/mim_sender_jid_checkpoint/_mget', JSON.stringify({ ids }))) as typeof body;
  } catch {
    return out; // no checkpoint index yet
  }
  for (const d of body.docs) if (d.found && d._source) out.set(d._id.split(':')[1], `${d._source.mam_id}${d._source.done ? '.' : ''}`);
  return out;
}

const describeState = (state: Map<string, string>): string =>
  `${state.size} partitions checkpointed, ${[...state.values()].filter((v) => v.endsWith('.')).length} done`;

/** Partitions whose checkpoint moved (or appeared) since `before`. */
function advanced(before: Map<string, string>, now: Map<string, string>): string[] {
  return [...now].filter(([p, v]) => before.get(p) !== v).map(([p]) => p);
}

/** Resolves once some checkpoint moved beyond `before`; fails if the process exits first or nothing moves. */
async function waitForProgress(url: string, before: Map<string, string>, run: MigrateProcess, exited: () => boolean): Promise<Map<string, string>> {
  const deadline = Date.now() + PROGRESS_WAIT_MS;
  while (Date.now() < deadline) {
    if (exited()) {
      const { status, stderr } = await run.done;
      throw new Error(`the migration exited (${status}) before its checkpoints advanced:\n${stderr.slice(-3000)}`);
    }
    const now = await checkpoints(url);
    if (advanced(before, now).length > 0) return now;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no checkpoint progress within ${PROGRESS_WAIT_MS / 1000} s`);
}

function track(run: MigrateProcess): () => boolean {
  let exited = false;
  void run.done.then(() => (exited = true));
  return () => exited;
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function countWithFromJid(url: string): Promise<number> {
  await searchCall(url, 'POST', '/muc_messages/_refresh');
  const body = (await searchCall(url, 'POST', '/muc_messages/_count', JSON.stringify({ query: { exists: { field: 'from_jid' } } }))) as { count: number };
  return body.count;
}

describe('opensearch: kill -9 and a server restart during a 100,000-document run', () => {
  const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
  let server: SearchServer;
  let docs: ArchiveDocument[];

  before(async () => {
    console.log(`seed ${seed} (TEST_SEED=${seed} repeats this run)`);
    note(`seed ${seed}; starting OpenSearch`);
    server = await startSearchServer('opensearch');
    note(`OpenSearch ready at ${server.url}; making ${DISTINCT_PAYLOADS} XML payloads in Erlang for ${DOCUMENTS} documents`);
    docs = buildArchive(DOCUMENTS, seed, 200, DISTINCT_PAYLOADS);
    note(`loading them twice (muc_messages, muc_reference)`);
    await loadArchive(server.url, docs, { index: 'muc_messages', shards: 3 });
    await loadArchive(server.url, docs, { index: 'muc_reference', shards: 3 });
    note('loaded');
  });
  after(async () => {
    await server?.stop();
  });

  it('ends with every document equal to an uninterrupted run', async () => {
    note('uninterrupted reference run on muc_reference');
    const reference = new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }), { index: 'muc_reference' });
    const uninterrupted = await runMigration({
      backend: reference,
      openStream: openInProcessStream,
      report: new MemoryReport(),
      applySchema: true,
      batchSize: 1000,
    });
    await reference.close();
    note(`reference run: ${uninterrupted.records} documents in ${(uninterrupted.durationMs / 1000).toFixed(1)} s, ${uninterrupted.retries} retries`);
    assert.equal(uninterrupted.reachedEnd, true);
    assert.deepEqual(mismatches(docs, await readFromJids(server.url, 'muc_reference')), []);

    const rand = seededRandom(seed);
    const args = [
      'elasticsearch',
      '--url',
      server.url,
      '--apply-schema',
      '--batch-size',
      '500',
      '--concurrency',
      '4',
      '--max-rate',
      '4000',
      '--report',
      '/dev/null',
      '--progress-interval',
      '5',
    ];
    const kills: { moved: string[]; delayMs: number }[] = [];
    for (let k = 1; k <= KILLS; k++) {
      const before = await checkpoints(server.url);
      const run = startMigrateProcess(args);
      const exited = track(run);
      const seen = await waitForProgress(server.url, before, run, exited);
      const moved = advanced(before, seen);
      const delayMs = Math.floor(rand() * 400);
      await new Promise((r) => setTimeout(r, delayMs));
      run.kill9();
      const { status, stderr } = await run.done;
      assert.equal(status, 'SIGKILL', `run ${k} was still running when killed (exit ${status}):\n${stderr.slice(-2000)}`);
      kills.push({ moved, delayMs });
      note(
        `kill ${k}: checkpoints of ${moved.join(',')} had advanced (${describeState(seen)}); killed ${delayMs} ms later; ${await countWithFromJid(server.url)} documents with from_jid`,
      );
    }
    assert.equal(kills.length, KILLS);
    for (const [i, kill] of kills.entries()) assert.ok(kill.moved.length > 0, `kill ${i + 1} came after observed progress`);
    const written = await countWithFromJid(server.url);
    assert.ok(written > 0 && written < docs.length - 10_000, `the kills left work to do (${written} written)`);

    // A server restart under a running migration: it retries and carries on to the end by itself.
    const before = await checkpoints(server.url);
    const during = startMigrateProcess(args);
    const exited = track(during);
    await waitForProgress(server.url, before, during, exited);
    note('migration running; restarting OpenSearch (SIGTERM, same data dir and port)');
    await server.restart();
    assert.equal(exited(), false, 'the migration was still running when the server came back');
    note(`OpenSearch back (${describeState(await checkpoints(server.url))}); waiting for the migration to end`);
    const final = await withDeadline(during.done, RUN_WAIT_MS, () => `the migration did not end within ${RUN_WAIT_MS / 1000} s after the restart`);
    note(`migration ended: exit ${final.status}`);
    assert.equal(final.status, 0, `the run that saw the restart reached the end:\n${final.stderr.slice(-3000)}`);
    assert.match(final.stdout, /done \(end reached\)/);
    assert.match(final.stderr, /retry \d+\/\d+ in \d+ ms after/, 'the run saw the server go away and retried');

    const interrupted = await readFromJids(server.url, 'muc_messages');
    const expected = await readFromJids(server.url, 'muc_reference');
    const differing = [...expected].filter(([id, jid]) => interrupted.get(id) !== jid).map(([id]) => id);
    assert.deepEqual(differing.slice(0, 10), [], `${differing.length} documents differ from the uninterrupted run`);
    assert.equal(interrupted.size, expected.size);
    assert.deepEqual(mismatches(docs, interrupted), []);
    note('every document equals the uninterrupted run');
  });
});
