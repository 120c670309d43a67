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
import fc from 'fast-check';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { CHECKPOINT_INDEX } from '../../clients/backends/elasticsearch/checkpoint-store.js';
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { formatSummary, migrationExitStatus, runMigration, SchemaNotReadyError } from '../../clients/pipeline/run-migration.js';
import { completeExitStatus, runVerifyComplete, type CompleteFinding } from '../../clients/pipeline/run-verify.js';
import { reportLine } from '../../clients/pipeline/report.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScannedRecord } from '../../clients/pipeline/types.js';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { dryRunsLeaveTheRealRun, limitRunsReachTheEnd } from '../support/cli-walk-contract.js';
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
    const answer = (await searchCall(
      url,
      'POST',
      `/${index}/_bulk?refresh=true`,
      lines.slice(start, start + 4000).join('\n') + '\n',
      'application/x-ndjson',
    )) as { errors: boolean; items: unknown[] };
    if (answer.errors) throw new Error(`bulk: ${JSON.stringify(answer.items.find((i) => JSON.stringify(i).includes('error')))}`);
  }
}

/** Every document written with its own sender, or reported (undecodable ones): the differences. */
export function wrongDocs(docs: readonly EdgeDoc[], stored: Map<string, string | undefined>, reported: ReadonlySet<string>): string[] {
  const wrong: string[] = [];
  for (const d of docs) {
    if (!stored.has(d.id)) wrong.push(`${d.id}: missing from the index`);
    else if (d.sender !== undefined && stored.get(d.id) !== d.sender)
      wrong.push(`${d.id}: from_jid ${JSON.stringify(stored.get(d.id))}, expected ${d.sender}${reported.has(d.id) ? ' (reported)' : ' (not reported)'}`);
    else if (d.sender === undefined && (stored.get(d.id) !== undefined || !reported.has(d.id)))
      wrong.push(`${d.id}: undecodable, from_jid ${JSON.stringify(stored.get(d.id))}, ${reported.has(d.id) ? 'reported' : 'not reported'}`);
  }
  return wrong;
}

describe('opensearch: edges of the walk', () => {
  let server: SearchServer;
  const backends: ElasticsearchBackend[] = [];
  const backendFor = (index: string, nodes?: string[]): ElasticsearchBackend => {
    const backend = new ElasticsearchBackend(
      new SearchHttp({ nodes: (nodes ?? [server.url]).map((u) => new URL(u)), maxSockets: 8 }),
      { index },
      TEST_BULK_RETRY,
    );
    backends.push(backend);
    return backend;
  };
  const migrate = async (
    index: string,
    options: { batchSize?: number; concurrency?: number; limit?: number; reset?: boolean; maxRetries?: number; log?: (l: string) => void } = {},
  ) => {
    const backend = backendFor(index);
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend,
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      batchSize: 5,
      concurrency: 2,
      ...options,
    });
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

  /** 300 documents over the whole plan's 16 ranges; every fifth undecodable when `undecodable`. */
  const spreadDocs = (undecodable: boolean): EdgeDoc[] =>
    Array.from({ length: 300 }, (_, i) => ({
      id: `r${i % 7}@muc.example.com$${1000 + i * 7919}`,
      mamId: String(1000 + i * 7919),
      room: `r${i % 7}@muc.example.com`,
      ...(undecodable && i % 5 === 0 ? {} : { sender: `user${i}@example.com` }),
    }));
  const cliWalk = (index: string, dir: string) => ({
    args: ['elasticsearch', '--url', server.url, '--index', index, '--apply-schema', '--batch-size', '5', '--concurrency', '4'],
    report: join(dir, 'report.jsonl'),
  });
  const reportedIds = (path: string): Set<string> =>
    new Set(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { _id: string })._id),
    );

  it('migrate --limit N run again and again, N below what the ranges read at once hold: each run walks N more, to the end', async () => {
    const docs = spreadDocs(false);
    await loadEdgeDocs(server.url, 'cli_limit', docs);
    const dir = mkdtempSync(join(tmpdir(), 'mim-es-limit-'));
    try {
      await limitRunsReachTheEnd(cliWalk('cli_limit', dir), 12, docs.length);
      assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, 'cli_limit'), new Set()), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--dry-run and --dry-run --reset after an interrupted run: the real run's report, checkpoints and documents stay as they were", async () => {
    const docs = spreadDocs(true);
    await loadEdgeDocs(server.url, 'cli_dry_run', docs);
    const dir = mkdtempSync(join(tmpdir(), 'mim-es-dry-run-'));
    const snapshot = async () => {
      await searchCall(server.url, 'POST', `/${CHECKPOINT_INDEX}/_refresh`);
      const saved = (await searchCall(server.url, 'POST', `/${CHECKPOINT_INDEX}/_search`, JSON.stringify({ size: 1000, query: { match_all: {} } }))) as {
        hits: { hits: { _id: string; _source: unknown }[] };
      };
      const checkpoints = saved.hits.hits.map((h) => `${h._id} ${JSON.stringify(h._source)}`).sort();
      return { documents: [...(await readFromJids(server.url, 'cli_dry_run')).entries()].sort(), checkpoints };
    };
    try {
      const walk = cliWalk('cli_dry_run', dir);
      await dryRunsLeaveTheRealRun(walk, 60, snapshot);
      const reported = reportedIds(walk.report);
      assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, 'cli_dry_run'), reported), []);
      assert.equal(readFileSync(walk.report, 'utf8').trim().split('\n').length, reported.size, 'each undecodable document reported once');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('walks documents without mam_id (missing or null): written or reported, never skipped', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 30; i++)
      docs.push({
        id: `r${i % 3}@muc.example.com$${1000 + i * 7}`,
        mamId: String(1000 + i * 7),
        room: `r${i % 3}@muc.example.com`,
        sender: `user${i}@example.com`,
      });
    for (let i = 0; i < 7; i++)
      docs.push({
        id: `nomam-${i}`,
        ...(i % 2 === 0 ? {} : { mamId: null }),
        room: `r${i % 2}@muc.example.com`,
        ...(i === 3 ? {} : { sender: `nomam${i}@example.com` }),
      });
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

  it("unwrittenKeys lists the shard's documents without from_jid (with those without mam_id for shard 0); scanPage visits every document once", async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 48; i++)
      docs.push({
        id: `a${i}/ü`,
        mamId: String(2_000_000 + i * 1000),
        room: `a${i % 2}@muc.example.com`,
        ...(i % 9 === 4 ? {} : { sender: `a${i}@example.com` }),
      });
    for (let i = 0; i < 4; i++) docs.push({ id: `a-nomam-${i}`, room: 'a@muc.example.com', ...(i % 2 === 0 ? {} : { sender: `an${i}@example.com` }) });
    await loadEdgeDocs(server.url, 'accounting', docs);
    const { reported } = await migrate('accounting');
    const undecodable = new Set(docs.filter((d) => d.sender === undefined).map((d) => d.id));
    assert.deepEqual(reported, undecodable);
    const backend = backendFor('accounting');
    const whole = await backend.unwrittenKeys({ index: 0, count: 1 }, 100);
    assert.deepEqual(new Set(whole.keys), undecodable);
    assert.equal(whole.complete, true);
    const cut = await backend.unwrittenKeys({ index: 0, count: 1 }, 2);
    assert.equal(cut.keys.length, 2);
    assert.equal(cut.complete, false);
    const shard0 = await backend.unwrittenKeys({ index: 0, count: 2 }, 100);
    const shard1 = await backend.unwrittenKeys({ index: 1, count: 2 }, 100);
    assert.ok(shard0.keys.includes('a-nomam-0') && shard0.keys.includes('a-nomam-2'), 'shard 0 owns the documents without mam_id');
    assert.equal(shard0.keys.length + shard1.keys.length, undecodable.size);
    assert.deepEqual(new Set([...shard0.keys, ...shard1.keys]), undecodable);

    const seen = new Map<string, ScannedRecord<string>>();
    for (const partition of await backend.partitions({ index: 0, count: 1 })) {
      let after = null;
      for (let round = 0; round < 1000; round++) {
        const page: { records: readonly ScannedRecord<string>[]; cursor: unknown; end: boolean } = await backend.scanPage(partition, after, {
          records: 3,
          bytes: 1 << 20,
        });
        for (const r of page.records) {
          assert.equal(seen.has(r.key), false, `${r.key} scanned twice`);
          seen.set(r.key, r);
        }
        if (page.end) break;
        after = page.cursor as never;
      }
    }
    assert.equal(seen.size, docs.length);
    for (const d of docs) {
      const r = seen.get(d.id)!;
      assert.equal(r.written, d.sender !== undefined, d.id);
      assert.equal(r.stored, d.sender ?? '', d.id);
      assert.equal(Buffer.from(r.payload).toString('utf8'), edgeMessage(d.room, d.sender));
    }
  });

  const checkpointsOf = async (index: string): Promise<string[]> => {
    const ids = [...Array.from({ length: 16 }, (_, i) => `${index}:p${String(i).padStart(2, '0')}`), `${index}:no-mam-id`];
    const body = (await searchCall(server.url, 'POST', `/${CHECKPOINT_INDEX}/_mget`, JSON.stringify({ ids }))) as { docs: { _id: string; found?: boolean }[] };
    return body.docs.filter((d) => d.found).map((d) => d._id);
  };

  it('an index blocked for writes stops the run before any checkpoint moves, and a flood-stage block is not retried as load', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 30; i++) docs.push({ id: `b${i}`, mamId: String(300 + i), room: 'b@muc.example.com', sender: `b${i}@example.com` });
    for (const [index, setting] of [
      ['blocked_write', 'index.blocks.write'],
      ['blocked_flood', 'index.blocks.read_only_allow_delete'],
    ] as const) {
      await loadEdgeDocs(server.url, index, docs);
      await migrate(index, { limit: 0 }); // the schema step and the plan, before the block
      await searchCall(server.url, 'PUT', `/${index}/_settings`, JSON.stringify({ [setting]: true }));
      const logged: string[] = [];
      try {
        await assert.rejects(
          migrate(index, { maxRetries: 3, log: (l) => logged.push(l) }),
          (e: Error) => /refuses writes.*cluster_block_exception.*run the same command again/s.test(e.message),
          setting,
        );
      } finally {
        await searchCall(server.url, 'PUT', `/${index}/_settings`, JSON.stringify({ [setting]: null }));
      }
      assert.deepEqual(
        logged.filter((l) => l.startsWith('retry')),
        [],
        `${setting}: a block is not load`,
      );
      assert.deepEqual(await checkpointsOf(index), [], `${setting}: no checkpoint moved`);
    }
  });

  it('an alias over several indices, or without a write index, is refused before the walk, naming the indices', async () => {
    const docs: EdgeDoc[] = [{ id: 'x1', mamId: '1', room: 'x@muc.example.com', sender: 'x1@example.com' }];
    await loadEdgeDocs(server.url, 'alias_a', docs);
    await loadEdgeDocs(server.url, 'alias_b', docs);
    await searchCall(
      server.url,
      'POST',
      '/_aliases',
      JSON.stringify({
        actions: [
          { add: { index: 'alias_a', alias: 'two_indices' } },
          { add: { index: 'alias_b', alias: 'two_indices' } },
          { add: { index: 'alias_a', alias: 'no_write_index', is_write_index: false } },
        ],
      }),
    );
    await assert.rejects(migrate('two_indices'), /--index 'two_indices' names 2 indices \(alias_a, alias_b\)/);
    await assert.rejects(migrate('no_write_index'), /alias of index 'alias_a' without a write index/);
    const stored = await readFromJids(server.url, 'alias_a');
    assert.equal(stored.get('x1'), undefined, 'nothing written');
  });

  it('--index _all (or any pattern) is bad usage, exit 2, and no mapping changes', async () => {
    await searchCall(server.url, 'PUT', '/bystander', JSON.stringify({ mappings: { properties: { other: { type: 'keyword' } } } }));
    for (const index of ['_all', '*', 'muc_*', 'a,b', '-x', '+x']) {
      const run = startMigrateProcess(['elasticsearch', '--url', server.url, `--index=${index}`, '--apply-schema', '--report', '/dev/null']);
      const { status, stderr } = await run.done;
      assert.equal(status, 2, `--index ${index}: ${stderr}`);
      assert.match(stderr, /--index: .* is not the name of one index/);
    }
    const mapping = (await searchCall(server.url, 'GET', '/bystander/_mapping')) as { bystander: { mappings: { properties: Record<string, unknown> } } };
    assert.deepEqual(Object.keys(mapping.bystander.mappings.properties), ['other']);
  });

  it('from_jid mapped as another type: exit 4 (schema step not done), with the reason', async () => {
    await searchCall(
      server.url,
      'PUT',
      '/conflict',
      JSON.stringify({ mappings: { properties: { ...(mucMapping(false) as { properties: object }).properties, from_jid: { type: 'long' } } } }),
    );
    const run = startMigrateProcess(['elasticsearch', '--url', server.url, '--index', 'conflict', '--apply-schema', '--report', '/dev/null']);
    const { status, stderr } = await run.done;
    assert.equal(status, 4, stderr);
    assert.match(stderr, /maps from_jid as 'long', not keyword.*reindex/);
    await assert.rejects(backendFor('conflict').checkSchema(), (e: unknown) => e instanceof SchemaNotReadyError);
  });

  it('--url dead,live: every request reaches the live node, however many are in flight', async () => {
    const dead = `http://127.0.0.1:${await freeLoopbackPort()}`;
    const http = new SearchHttp({ nodes: [new URL(dead), new URL(server.url)], maxSockets: 16 });
    try {
      const answers = await Promise.allSettled(Array.from({ length: 64 }, () => http.ok('GET', '/_cluster/health')));
      const failed = answers.filter((a) => a.status === 'rejected');
      assert.equal(failed.length, 0, `${failed.length} of 64 requests failed: ${(failed[0] as PromiseRejectedResult | undefined)?.reason}`);
    } finally {
      http.close();
    }
  });

  it('property: mam_ids of every magnitude and sign (equal ones across documents), _ids with Unicode and /: every document written right or reported', async () => {
    const seed = fuzzSeed('ES_WALK_SEED', 'walk-edges property');
    // The whole of a `long`, as the mapping allows: negative ids too (MongooseIM writes none).
    const mamId = fc.oneof(
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
      fc.bigInt({ min: -1000n, max: 1000n }),
      fc.constantFrom(-(1n << 63n), -(1n << 53n) - 1n, -1n, 0n, 1n, (1n << 53n) + 1n, (1n << 63n) - 1n),
    );
    const doc = fc.record({
      mamId: fc.option(mamId, { nil: undefined, freq: 8 }),
      room: fc.constantFrom('a@muc.example.com', 'ß@muc.example.com', 'z/room@muc.example.com'),
      suffix: fc.string({ unit: 'grapheme', maxLength: 6 }),
      decodable: fc.boolean(),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(doc, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 6 }), async (drawn, batchSize) => {
        const index = `prop_${run++}`;
        const docs: EdgeDoc[] = drawn.map((d, i) => ({
          id: `${d.room}$${d.mamId ?? 'none'}/${i}${d.suffix}`,
          ...(d.mamId === undefined ? {} : { mamId: String(d.mamId) }),
          room: d.room,
          ...(d.decodable || i % 7 !== 3 ? { sender: `p${i}@example.com` } : {}),
        }));
        await loadEdgeDocs(server.url, index, docs, 2);
        const { summary, reported } = await migrate(index, { batchSize });
        assert.equal(summary.reachedEnd, true);
        assert.deepEqual(wrongDocs(docs, await readFromJids(server.url, index), reported), []);
        await searchCall(server.url, 'DELETE', `/${index}`);
      }),
      {
        seed,
        numRuns: 6,
        endOnFailure: true,
        // The largest long alone: its double rounds up to 2^63, which a range query refuses as a cut.
        examples: [
          [[{ mamId: (1n << 63n) - 1n, room: 'a@muc.example.com', suffix: '', decodable: true }], 5],
          [
            [
              { mamId: -(1n << 63n), room: 'a@muc.example.com', suffix: '', decodable: true },
              { mamId: -1n, room: 'a@muc.example.com', suffix: '', decodable: true },
              { mamId: 5n, room: 'a@muc.example.com', suffix: '', decodable: true },
            ],
            1,
          ],
        ],
      },
    );
  });

  it('a page reader that drops one document: the accounting names it (exit 5), and verify --complete finds it', async () => {
    const docs: EdgeDoc[] = [];
    for (let i = 0; i < 30; i++)
      docs.push({ id: `d${i}`, mamId: String(40_000 + i * 3), room: 'd@muc.example.com', ...(i % 10 === 2 ? {} : { sender: `d${i}@example.com` }) });
    await loadEdgeDocs(server.url, 'dropped', docs);
    class DroppingBackend extends ElasticsearchBackend {
      override async readPage(...args: Parameters<ElasticsearchBackend['readPage']>) {
        const page = await super.readPage(...args);
        return { ...page, records: page.records.filter((r) => r.key !== 'd7') };
      }
    }
    const dropping = new DroppingBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }), { index: 'dropped' }, TEST_BULK_RETRY);
    backends.push(dropping);
    const report = new MemoryReport<string>();
    const summary = await runMigration({
      backend: dropping,
      openStream: openInProcessStream,
      report,
      applySchema: true,
      backoff: TEST_BACKOFF,
      batchSize: 4,
      concurrency: 2,
    });
    assert.equal(summary.accounting?.kind, 'unaccounted', JSON.stringify(summary.accounting));
    assert.deepEqual(summary.accounting?.kind === 'unaccounted' ? summary.accounting.examples.map((e) => e._id) : [], ['d7']);
    assert.equal(migrationExitStatus(summary), 5);
    assert.match(formatSummary(summary), /d7/);

    const tmp = mkdtempSync(join(tmpdir(), 'es-complete-'));
    try {
      const reportPath = join(tmp, 'report.jsonl');
      writeFileSync(reportPath, report.rows.map((r) => reportLine(r)).join(''));
      const findings: CompleteFinding[] = [];
      const verified = await runVerifyComplete({
        backend: backendFor('dropped'),
        openStream: openInProcessStream,
        reportPaths: [reportPath],
        onFinding: (f) => findings.push(f),
        batchSize: 4,
      });
      assert.equal(verified.scanned, docs.length);
      assert.equal(verified.counts.not_written_unreported, 1);
      assert.equal(verified.counts.not_written_reported, 3);
      assert.equal(verified.counts.written_wrong, 0);
      assert.deepEqual(
        findings.map((f) => [f.fields._id, f.class]),
        [['d7', 'not_written_unreported']],
      );
      assert.equal(completeExitStatus(verified), 3);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
