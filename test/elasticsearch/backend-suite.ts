/**
 * The Elasticsearch/OpenSearch backend against one real server, started once for the file:
 * schema step, a full migration through the pipeline (every document asserted, every failure
 * reported with its `_id`, the walk ends), a re-run that reports the failures again and writes
 * nothing, the CLI (exit 0, no password anywhere), verify, and 429s provoked with a tiny write queue.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { CHECKPOINT_INDEX } from '../../clients/backends/elasticsearch/checkpoint-store.js';
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError } from '../../clients/pipeline/run-migration.js';
import { runVerify } from '../../clients/pipeline/run-verify.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startSearchServer, type SearchProduct, type SearchServer } from '../support/search-server.js';
import {
  buildArchive,
  loadArchive as loadWithMapping,
  type CreateOptions,
  mismatches,
  readFromJids,
  searchCall,
  type ArchiveDocument,
} from './archive-dataset.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Short pauses between re-sends of items refused for load: the 429 test sees many rounds. */
const TEST_BULK_RETRY = { rounds: 40, firstPauseMs: 5, longestPauseMs: 200 };
/** Short pauses between the pipeline's retries too. */
const TEST_BACKOFF = { baseMs: 20, maxMs: 500 };

/** MongooseIM's mapping type on Elasticsearch 6 (`--type muc`), undefined on typeless servers. */
let mappingType: string | undefined;

function backendFor(server: SearchServer, index: string): ElasticsearchBackend {
  return new ElasticsearchBackend(
    new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }),
    { index, ...(mappingType === undefined ? {} : { type: mappingType }) },
    TEST_BULK_RETRY,
  );
}

interface Snapshot {
  /** `_id` -> `_version`/`_seq_no`/`_primary_term` and the `_source` as stored. */
  readonly docs: Map<string, string>;
  /** Index and delete operations the primaries have seen since the node started. */
  readonly operations: string;
}

/** Every document of a (small) index with its version and sequence number, and the index's write counters. */
async function snapshot(url: string, index: string): Promise<Snapshot> {
  await searchCall(url, 'POST', `/${index}/_refresh`);
  const body = (await searchCall(
    url,
    'POST',
    `/${index}/_search`,
    JSON.stringify({ size: 10_000, version: true, seq_no_primary_term: true, query: { match_all: {} } }),
  )) as {
    hits: { hits: { _id: string; _version: number; _seq_no: number; _primary_term: number; _source: unknown }[] };
  };
  assert.ok(body.hits.hits.length < 10_000, 'snapshot: index small enough for one page');
  const docs = new Map(body.hits.hits.map((h) => [h._id, `${h._version}/${h._seq_no}/${h._primary_term} ${JSON.stringify(h._source)}`]));
  const stats = (await searchCall(url, 'GET', `/${index}/_stats/indexing`)) as {
    indices: Record<string, { primaries: { indexing: { index_total: number; delete_total: number } } }>;
  };
  const indexing = stats.indices[index].primaries.indexing;
  return { docs, operations: `index_total ${indexing.index_total}, delete_total ${indexing.delete_total}` };
}

function expectedFailures(docs: readonly ArchiveDocument[]): Map<string, string> {
  return new Map(docs.flatMap((d) => ('reason' in d.expected ? [[d.id, d.expected.reason] as [string, string]] : [])));
}

/** `typed`: MongooseIM's Elasticsearch 5/6 index with mapping type `muc` (Elasticsearch 6.8 only). */
export function backendSuite(product: SearchProduct, { typed = false }: { typed?: boolean } = {}): void {
  const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
  mappingType = typed ? 'muc' : undefined;
  const loadArchive = (url: string, docs: readonly ArchiveDocument[], options: CreateOptions): Promise<void> =>
    loadWithMapping(url, docs, { bodyAnalyzer, typed, ...options });
  const mappingPath = (index: string): string => (typed ? `/${index}/_mapping/muc` : `/${index}/_mapping`);
  const updatePath = (index: string, id: string): string =>
    typed ? `/${index}/muc/${encodeURIComponent(id)}/_update` : `/${index}/_update/${encodeURIComponent(id)}`;
  const typeArgs = typed ? ['--type', 'muc'] : [];
  const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
  describe(`${product} backend${typed ? ' (typed index, --type muc)' : ''} (seed ${seed})`, () => {
    let server: SearchServer;
    let docs: ArchiveDocument[];
    const tmp = mkdtempSync(join(tmpdir(), `mim-${product}-suite-`));

    before(async () => {
      console.log(`seed ${seed} (TEST_SEED=${seed} repeats this run)`);
      // A write queue of 4 with 4 bulks of 3 shards in flight: some bulk items are refused with 429.
      server = await startSearchServer(product, { settings: { 'thread_pool.write.queue_size': '4' } });
      docs = buildArchive(3000, seed, 25);
    });
    after(async () => {
      await server?.stop();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('refuses a mapping without from_jid with the request to send, and --apply-schema adds it once', async () => {
      await loadArchive(server.url, docs.slice(0, 50), { index: 'schema_check', shards: 2 });
      const backend = backendFor(server, 'schema_check');
      try {
        await assert.rejects(
          runMigration({ backend, openStream: openInProcessStream, report: new MemoryReport() }),
          (e: unknown) =>
            e instanceof SchemaNotReadyError && e.message.includes(`PUT ${mappingPath('schema_check')} {"properties":{"from_jid":{"type":"keyword"}}}`),
        );
        assert.deepEqual(await backend.applySchema(), [`PUT ${mappingPath('schema_check')} {"properties":{"from_jid":{"type":"keyword"}}}`]);
        assert.deepEqual(await backend.applySchema(), [], 'a second apply changes nothing');
        assert.equal((await backend.checkSchema()).ready, true);
        const mapping = (await searchCall(server.url, 'GET', '/schema_check/_mapping')) as Record<string, { mappings: Record<string, unknown> }>;
        const properties = (
          typed ? (mapping.schema_check.mappings.muc as { properties: unknown }).properties : mapping.schema_check.mappings.properties
        ) as Record<string, { type: string }>;
        assert.equal(properties.from_jid.type, 'keyword');
      } finally {
        await backend.close();
      }
    });

    it('a missing index and a wrong --type are clear errors', async () => {
      const missing = backendFor(server, 'no_such_index');
      await assert.rejects(missing.checkSchema(), /index 'no_such_index' does not exist/);
      await missing.close();
      const wrongType = (type: string | undefined): ElasticsearchBackend =>
        new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 2 }), {
          index: 'schema_check',
          ...(type === undefined ? {} : { type }),
        });
      if (typed) {
        const typeless = wrongType(undefined);
        await assert.rejects(typeless.checkSchema(), /has mapping type 'muc'.*add --type muc/);
        await typeless.close();
        const other = wrongType('pm');
        await assert.rejects(other.checkSchema(), /no mapping type 'pm'/);
        await other.close();
      } else {
        const other = wrongType('muc');
        await assert.rejects(other.checkSchema(), /no mapping type 'muc'.*drop --type/);
        await other.close();
      }
    });

    it('migrates every document, reports every failure by _id, ends; a re-run reports them again and writes nothing', async () => {
      await loadArchive(server.url, docs, { index: 'muc_messages', shards: 3 });
      const backend = backendFor(server, 'muc_messages');
      try {
        const report = new MemoryReport<string>();
        const summary = await runMigration({
          backend,
          openStream: openInProcessStream,
          report,
          applySchema: true,
          batchSize: 300,
          concurrency: 2,
          backoff: TEST_BACKOFF,
        });
        console.log(
          `${product}: migration of ${summary.records} documents in ${(summary.durationMs / 1000).toFixed(1)} s, ${summary.retries} pipeline retries, ${backend.bulkStats.refusedByStatus[429] ?? 0} items refused with 429`,
        );
        assert.equal(summary.reachedEnd, true);
        const failures = expectedFailures(docs);
        assert.ok(failures.size > 50, `the dataset has failures of every kind (${failures.size})`);
        assert.deepEqual(new Map(report.rows.map((r) => [r.fields._id, r.reason])), failures);
        assert.equal(report.rows.length, failures.size, 'each failure reported once');
        // A message that is no string is reported as what it is, not as an empty payload.
        const detailOf = new Map(report.rows.map((r) => [r.fields._id, r.detail]));
        for (const d of docs) {
          if (typeof d.message === 'number') assert.match(detailOf.get(d.id) ?? '', /message is a number \(42\)/);
          if (Array.isArray(d.message)) assert.match(detailOf.get(d.id) ?? '', /message is an array of 1 items/);
          if (d.message === undefined) assert.match(detailOf.get(d.id) ?? '', /no message field/);
        }
        // Exact also after a batch failed: what it and the later batches of its partition wrote is
        // counted as it lands (the retry's reads pass over it).
        assert.equal(summary.written, docs.length - failures.size);
        assert.deepEqual(mismatches(docs, await readFromJids(server.url, 'muc_messages')), []);

        const archiveBefore = await snapshot(server.url, 'muc_messages');
        const again = new MemoryReport<string>();
        const second = await runMigration({ backend, openStream: openInProcessStream, report: again, batchSize: 300, backoff: TEST_BACKOFF });
        console.log(`${product}: re-run over ${second.records} documents in ${(second.durationMs / 1000).toFixed(1)} s`);
        assert.equal(second.reachedEnd, true);
        assert.equal(second.written, 0);
        assert.deepEqual(new Map(again.rows.map((r) => [r.fields._id, r.reason])), failures);
        assert.equal(again.rows.length, failures.size, 'each failure reported once again');
        assert.deepEqual(await snapshot(server.url, 'muc_messages'), archiveBefore, 'a run after the end changes no document of the archive');
      } finally {
        await backend.close();
      }
    });

    it('a --dry-run after a complete walk changes nothing, not even our checkpoint index', async () => {
      const archiveBefore = await snapshot(server.url, 'muc_messages');
      const checkpointsBefore = await snapshot(server.url, CHECKPOINT_INDEX);
      assert.ok(
        [...checkpointsBefore.docs.keys()].some((id) => id.startsWith('muc_messages:p')),
        'the walk left checkpoints',
      );
      const backend = backendFor(server, 'muc_messages');
      try {
        const report = new MemoryReport<string>();
        const dry = await runMigration({ backend, openStream: openInProcessStream, report, dryRun: true, applySchema: true, batchSize: 300 });
        assert.equal(dry.reachedEnd, true);
        assert.equal(dry.written, 0, 'everything decodable already has from_jid');
        // It walked from the start (the walk had ended), so it sees every failure again.
        assert.deepEqual(new Map(report.rows.map((r) => [r.fields._id, r.reason])), expectedFailures(docs));
      } finally {
        await backend.close();
      }
      assert.deepEqual(await snapshot(server.url, CHECKPOINT_INDEX), checkpointsBefore, 'checkpoint index untouched');
      assert.deepEqual(await snapshot(server.url, 'muc_messages'), archiveBefore, 'archive index untouched');
    });

    it('items refused with 429 by a write queue of 4 are re-sent until the result is exact', async () => {
      const subset = docs.slice(0, 1500);
      await loadArchive(server.url, subset, { index: 'muc_pressure', shards: 3 });
      const backend = backendFor(server, 'muc_pressure');
      try {
        const report = new MemoryReport<string>();
        // 8 bulks of 3 shards each in flight against 2 write threads and a queue of 4.
        const summary = await runMigration({
          backend,
          openStream: openInProcessStream,
          report,
          applySchema: true,
          batchSize: 40,
          concurrency: 8,
          backoff: TEST_BACKOFF,
          maxRetries: 100,
        });
        assert.equal(summary.reachedEnd, true);
        const refused = backend.bulkStats.refusedByStatus[429] ?? 0;
        console.log(`${product}: ${refused} bulk items refused with 429, ${backend.bulkStats.itemsRetried} re-sent, ${summary.retries} pipeline retries`);
        assert.ok(refused > 0, 'the tiny write queue refused some items with 429');
        assert.ok(backend.bulkStats.itemsRetried >= refused, 'every refused item was sent again');
        assert.deepEqual(new Map(report.rows.map((r) => [r.fields._id, r.reason])), expectedFailures(subset));
        assert.equal(report.rows.length, expectedFailures(subset).size, 'each failure reported once');
        assert.deepEqual(mismatches(subset, await readFromJids(server.url, 'muc_pressure')), []);
      } finally {
        await backend.close();
      }
    });

    it('verify re-decodes a sample and finds a from_jid that was tampered with', async () => {
      const backend = backendFor(server, 'muc_messages');
      try {
        const clean = await runVerify({ backend, openStream: openInProcessStream, sample: 200 });
        assert.equal(clean.checked, 200);
        assert.deepEqual(clean.mismatches, []);
        const victim = docs.find((d) => 'fromJid' in d.expected)!;
        await searchCall(
          server.url,
          'POST',
          `${updatePath('muc_messages', victim.id)}?refresh=true`,
          JSON.stringify({ doc: { from_jid: 'mallory@evil.example' } }),
        );
        const all = await runVerify({ backend, openStream: openInProcessStream, sample: docs.length });
        assert.deepEqual(
          all.mismatches.map((m) => [m.fields._id, m.kind]),
          [[victim.id, 'different_sender']],
        );
        await searchCall(
          server.url,
          'POST',
          `${updatePath('muc_messages', victim.id)}?refresh=true`,
          JSON.stringify({ doc: { from_jid: (victim.expected as { fromJid: string }).fromJid } }),
        );
      } finally {
        await backend.close();
      }
    });

    it('never takes an answer from part of the shards for the end of a partition', async () => {
      // After a node restart shards start one by one, and a search answers 200 from those
      // already started: a walk that believed it would mark partitions done with documents left.
      // Made deterministic here with a shard that fails every search: an alias over two
      // one-shard indices, the second mapping `room` (a sort key of the walk) as text.
      const subset = docs.slice(0, 400);
      await loadArchive(server.url, subset.slice(0, 200), { index: 'partial_a', shards: 1 });
      await searchCall(
        server.url,
        'PUT',
        '/partial_b',
        JSON.stringify({
          settings: { number_of_shards: 1, number_of_replicas: 0 },
          mappings: typed
            ? { muc: { properties: { mam_id: { type: 'long' }, room: { type: 'text' } } } }
            : { properties: { mam_id: { type: 'long' }, room: { type: 'text' } } },
        }),
      );
      for (const d of subset.slice(200, 210)) {
        const path = typed ? `/partial_b/muc/${encodeURIComponent(d.id)}` : `/partial_b/_doc/${encodeURIComponent(d.id)}`;
        await searchCall(server.url, 'PUT', path, JSON.stringify({ mam_id: String(d.mamId), room: d.room, message: d.message }));
      }
      await searchCall(server.url, 'POST', '/partial_a,partial_b/_refresh');
      await searchCall(
        server.url,
        'POST',
        '/_aliases',
        JSON.stringify({ actions: ['partial_a', 'partial_b'].map((index) => ({ add: { index, alias: 'partial' } })) }),
      );
      const partial = (await searchCall(server.url, 'POST', '/partial/_search', JSON.stringify({ size: 1, sort: [{ mam_id: 'asc' }, { room: 'asc' }] }))) as {
        _shards: { failed: number };
      };
      assert.equal(partial._shards.failed, 1, 'the server itself answers 200 from one of the two shards');

      const backend = backendFor(server, 'partial');
      try {
        // Each partition either walks to its end having seen every document of its range, those
        // of the failing shard included, or fails naming the shard's cause.
        const stored = [...subset.slice(0, 210)];
        let failures = 0;
        for (const partition of await backend.partitions({ index: 0, count: 1 })) {
          const inRange = stored.filter(
            (d) => (partition.from === undefined || d.mamId >= BigInt(partition.from)) && (partition.to === undefined || d.mamId < BigInt(partition.to)),
          );
          const seen: string[] = [];
          try {
            let after = null;
            for (let pages = 0; ; pages++) {
              assert.ok(pages < 50, 'the walk ends');
              const page = await backend.readPage(partition, after, { records: 40, bytes: 64 << 20 });
              seen.push(...page.records.map((r) => r.key));
              after = page.cursor;
              if (page.end) break;
            }
          } catch (error) {
            assert.match(
              (error as Error).message,
              /Partial shards failure|Text fields|partial_b/,
              `${partition.name}: the error names the failing shard's cause`,
            );
            failures++;
            continue;
          }
          assert.deepEqual(seen.sort(), inRange.map((d) => d.id).sort(), `${partition.name} ended having seen its whole range`);
        }
        assert.ok(failures > 0, 'the failing shard holds documents of some partition');
      } finally {
        await backend.close();
      }
    });

    it('the CLI migrates with --username/--password-file, exits 0, and the password shows nowhere', async () => {
      const subset = docs.slice(0, 600);
      await loadArchive(server.url, subset, { index: 'cli_archive', shards: 2 });
      const secret = `pw-${seed}-never-shown`;
      const passwordFile = join(tmp, 'password');
      writeFileSync(passwordFile, `${secret}\n`);
      const reportPath = join(tmp, 'report.jsonl');
      const run = spawnSync(
        process.execPath,
        [
          'bin/mim-sender-jid.js',
          'migrate',
          'elasticsearch',
          '--url',
          `${server.url},${server.url}/`,
          '--index',
          'cli_archive',
          ...typeArgs,
          '--apply-schema',
          '--username',
          'admin',
          '--password-file',
          passwordFile,
          '--report',
          reportPath,
          '--batch-size',
          '100',
        ],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 },
      );
      assert.equal(run.status, 0, `exit 0 expected:\n${run.stdout}\n${run.stderr}`);
      const reportText = readFileSync(reportPath, 'utf8');
      for (const text of [run.stdout, run.stderr, reportText]) assert.ok(!text.includes(secret), 'password not printed');
      const reported = reportText
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { _id: string; reason: string });
      assert.deepEqual(new Map(reported.map((r) => [r._id, r.reason])), expectedFailures(subset));
      assert.deepEqual(mismatches(subset, await readFromJids(server.url, 'cli_archive')), []);

      const verify = spawnSync(
        process.execPath,
        ['bin/mim-sender-jid.js', 'verify', 'elasticsearch', '--url', server.url, '--index', 'cli_archive', ...typeArgs],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 },
      );
      assert.equal(verify.status, 0, `verify exit 0 expected:\n${verify.stdout}\n${verify.stderr}`);
    });
  });
}
