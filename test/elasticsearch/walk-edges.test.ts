/**
 * Edges of the Elasticsearch/OpenSearch walk, on one real OpenSearch 2.19.6: documents without
 * `mam_id`, documents sharing (`mam_id`, `room`) under different `_id`s, checkpoints that are
 * corrupt, outside their partition or of another partition plan, store-wide faults (blocks,
 * aliases over several indices), index names that are patterns, a conflicting mapping, a dead
 * node among `--url`, the end-of-run accounting (`unwrittenKeys`) and `scanPage`.
 *
 * Documents here are small hand-made MongooseIM-shaped XML messages (each sender its own user,
 * so that each document's `from_jid` says whether it was written from its own message).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { CHECKPOINT_INDEX } from '../../clients/backends/elasticsearch/checkpoint-store.js';
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError } from '../../clients/pipeline/run-migration.js';
import type { Partition, ScannedRecord } from '../../clients/pipeline/types.js';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { startSearchServer, type SearchServer } from '../support/search-server.js';
import { mucMapping, readFromJids, searchCall } from './archive-dataset.js';

const TEST_BULK_RETRY = { rounds: 40, firstPauseMs: 5, longestPauseMs: 200 };
const TEST_BACKOFF = { baseMs: 20, maxMs: 500 };

export interface EdgeDoc {
  readonly id: string;
  /** A decimal string, `null` (stored as JSON null) or undefined (no field). */
  readonly mamId?: string | null;
  readonly room: string;
  /** The sender's bare JID the message names, or undefined for an undecodable message. */
  readonly sender?: string;
}

export function edgeMessage(room: string, sender: string | undefined): string {
  if (sender === undefined) return `<message from='${room}/nick' type='groupchat'><body>cut`;
  return `<message from='${room}/nick' to='${room}' type='groupchat' id='m'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' jid='${sender}/res' role='participant'/></x></message>`;
}

/** Creates `index` with MongooseIM's mapping and loads the documents (mam_id spliced in exactly). */
export async function loadEdgeDocs(url: string, index: string, docs: readonly EdgeDoc[], shards = 3, create = true): Promise<void> {
  if (create) {
    await searchCall(url, 'PUT', `/${index}`, JSON.stringify({ settings: { number_of_shards: shards, number_of_replicas: 0 }, mappings: mucMapping(false) }));
  }
  const lines: string[] = [];
  for (const d of docs) {
    lines.push(JSON.stringify({ index: { _id: d.id } }));
    const source = JSON.stringify({ room: d.room, source_jid: `${d.room}/nick`, message: edgeMessage(d.room, d.sender), body: 'hi' });
    lines.push(d.mamId === undefined ? source : `{"mam_id":${d.mamId === null ? 'null' : d.mamId},${source.slice(1)}`);
  }
  for (let start = 0; start < lines.length; start += 4000) {
    const answer = (await searchCall(url, 'POST', `/${index}/_bulk?refresh=true`, lines.slice(start, start + 4000).join('\n') + '\n', 'application/x-ndjson')) as { errors: boolean; items: unknown[] };
    if (answer.errors) throw new Error(`bulk: ${JSON.stringify(answer.items.find((i) => JSON.stringify(i).includes('error')))}`);
  }
}

/** Every document written with its own sender, or reported (undecodable ones): the differences. */
export function wrongDocs(docs: readonly EdgeDoc[], stored: Map<string, string | undefined>, reported: ReadonlySet<string>): string[] {
  const wrong: string[] = [];
  for (const d of docs) {
    if (!stored.has(d.id)) wrong.push(`${d.id}: missing from the index`);
    else if (d.sender !== undefined && stored.get(d.id) !== d.sender) wrong.push(`${d.id}: from_jid ${JSON.stringify(stored.get(d.id))}, expected ${d.sender}${reported.has(d.id) ? ' (reported)' : ' (not reported)'}`);
    else if (d.sender === undefined && (stored.get(d.id) !== undefined || !reported.has(d.id))) wrong.push(`${d.id}: undecodable, from_jid ${JSON.stringify(stored.get(d.id))}, ${reported.has(d.id) ? 'reported' : 'not reported'}`);
  }
  return wrong;
}

describe('opensearch: edges of the walk', () => {
  let server: SearchServer;
  const backends: ElasticsearchBackend[] = [];
  const backendFor = (index: string, nodes?: string[]): ElasticsearchBackend => {
    const backend = new ElasticsearchBackend(new SearchHttp({ nodes: (nodes ?? [server.url]).map((u) => new URL(u)), maxSockets: 8 }), { index }, TEST_BULK_RETRY);
    backends.push(backend);
    return backend;
  };
  const migrate = async (index: string, options: { batchSize?: number; concurrency?: number; limit?: number; reset?: boolean; maxRetries?: number; log?: (l: string) => void } = {}) => {
    const backend = backendFor(index);
    const report = new MemoryReport<string>();
    const summary = await runMigration({ backend, openStream: openInProcessStream, report, applySchema: true, backoff: TEST_BACKOFF, batchSize: 5, concurrency: 2, ...options });
    await backend.close();
    return { summary, reported: new Set(report.rows.map((r) => r.fields._id)), report };
  };

  before(async () => {
    server = await startSearchServer('opensearch');
  });
  after(async () => {
    for (const b of backends) await b.close().catch(() => {});
    await server?.stop();
  });

  it('walks documents without mam_id (missing or null): written or reported, never skipped', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 30; i++) docs.push({ id: `r${i % 3}@muc.example.com$${1000 + i * 7}`, mamId: String(1000 + i * 7), room: `r${i % 3}@muc.example.com`, sender: `user${i}@example.com` });
    for (let i = 0; i < 7; i++) docs.push({ id: `nomam-${i}`, ...(i % 2 === 0 ? {} : { mamId: null }), room: `r${i % 2}@muc.example.com`, ...(i === 3 ? {} : { sender: `nomam${i}@example.com` }) });
    await loadEdgeDocs(server.url, 'no_mam_id', docs);
    const { summary, reported } = await migrate('no_mam_id', { batchSize: 2 });
    assert.equal(summary.reachedEnd, true);
    assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, 'no_mam_id'), reported), []);
    assert.deepEqual([...reported], ['nomam-3']);
  });

  it('documents sharing (mam_id, room) under different _ids are all walked, whatever the page size', async () => {
    const docs: EdgeDoc[] = [];
    let n = 0;
    for (let g = 0; g < 20; g++) {
      const room = `tie${g % 2}@muc.example.com`;
      const mamId = String(500 + Math.floor(g / 2));
      for (let c = 0; c < 1 + (g % 4); c++) docs.push({ id: `gen-${g}-${c}`, mamId, room, ...(n++ % 11 === 5 ? {} : { sender: `tie${n}@example.com` }) });
    }
    for (const batchSize of [1, 2, 3, 4]) {
      const index = `ties_${batchSize}`;
      await loadEdgeDocs(server.url, index, docs);
      const { summary, reported } = await migrate(index, { batchSize });
      assert.equal(summary.reachedEnd, true);
      assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, index), reported), [], `batch size ${batchSize}`);
    }
  });

  const checkpointDoc = async (id: string, source: object): Promise<void> => {
    await searchCall(server.url, 'PUT', `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent(id)}?refresh=true`, JSON.stringify(source));
  };
  const readCheckpoint = async (id: string): Promise<Record<string, unknown>> =>
    ((await searchCall(server.url, 'GET', `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent(id)}`)) as { _source: Record<string, unknown> })._source;

  it('a corrupt checkpoint or one outside its partition is refused, naming it and --reset; --reset walks again', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 160; i++) docs.push({ id: `c${i}`, mamId: String(10_000 + i * 10), room: 'c@muc.example.com', sender: `c${i}@example.com` });
    await loadEdgeDocs(server.url, 'corrupt', docs);
    await migrate('corrupt', { limit: 20, concurrency: 1 });
    const plan = await readCheckpoint('plan:corrupt');
    const p00 = await readCheckpoint('corrupt:p00');
    await checkpointDoc('corrupt:p00', { ...p00, mam_id: 'abc', done: false });
    await assert.rejects(migrate('corrupt'), /mim_sender_jid_checkpoint.*corrupt:p00.*--reset/s);
    // Above its range: p00 ends at the first cut.
    const cuts = plan.cuts as string[];
    await checkpointDoc('corrupt:p00', { ...p00, mam_id: cuts[8], done: false });
    await assert.rejects(migrate('corrupt'), /mim_sender_jid_checkpoint.*corrupt:p00.*outside.*--reset/s);
    const { summary, reported } = await migrate('corrupt', { reset: true });
    assert.equal(summary.reachedEnd, true);
    assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, 'corrupt'), reported), []);
  });

  it('checkpoints of an older partition plan are not applied to a new plan', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 100; i++) docs.push({ id: `o${i}`, mamId: String(100_000 + i * 100), room: 'o@muc.example.com', sender: `o${i}@example.com` });
    await loadEdgeDocs(server.url, 'old_plan', docs);
    // A walk that gets part of the way, then the plan is deleted (as the tool used to advise for
    // an unreadable plan) while the archive grows below the old lowest id.
    await migrate('old_plan', { limit: 40, concurrency: 4, batchSize: 3 });
    await searchCall(server.url, 'DELETE', `/${CHECKPOINT_INDEX}/_doc/${encodeURIComponent('plan:old_plan')}?refresh=true`);
    const more: EdgeDoc[] = [];
    for (let i = 0; i < 100; i++) more.push({ id: `n${i}`, mamId: String(1 + i * 500), room: 'o@muc.example.com', sender: `n${i}@example.com` });
    await loadEdgeDocs(server.url, 'old_plan', more, 3, false);
    const { summary, reported } = await migrate('old_plan');
    assert.equal(summary.reachedEnd, true);
    assert.deepEqual(wrongDocs([...docs, ...more], await readFromJids(server.url, 'old_plan'), reported), []);
  });

  it('an unreadable partition plan is cut again (also with --reset), never applied', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 40; i++) docs.push({ id: `u${i}`, mamId: String(7_000 + i), room: 'u@muc.example.com', sender: `u${i}@example.com` });
    await loadEdgeDocs(server.url, 'unreadable_plan', docs);
    await checkpointDoc('plan:unreadable_plan', { index: 'unreadable_plan', cuts: 'garbage' });
    const { summary, reported } = await migrate('unreadable_plan', { reset: true });
    assert.equal(summary.reachedEnd, true);
    assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, 'unreadable_plan'), reported), []);
    assert.ok(Array.isArray((await readCheckpoint('plan:unreadable_plan')).cuts));
  });
});
