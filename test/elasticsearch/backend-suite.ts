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
import { SearchHttp } from '../../clients/backends/elasticsearch/search-http.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError } from '../../clients/pipeline/run-migration.js';
import { runVerify } from '../../clients/pipeline/run-verify.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startSearchServer, type SearchProduct, type SearchServer } from '../support/search-server.js';
import { buildArchive, loadArchive as loadWithMapping, type CreateOptions, mismatches, readFromJids, searchCall, type ArchiveDocument } from './archive-dataset.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function backendFor(server: SearchServer, index: string): ElasticsearchBackend {
  return new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }), { index });
}

function expectedFailures(docs: readonly ArchiveDocument[]): Map<string, string> {
  return new Map(docs.flatMap((d) => ('reason' in d.expected ? [[d.id, d.expected.reason] as [string, string]] : [])));
}

export function backendSuite(product: SearchProduct): void {
  const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
  const loadArchive = (url: string, docs: readonly ArchiveDocument[], options: CreateOptions): Promise<void> => loadWithMapping(url, docs, { bodyAnalyzer, ...options });
  const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
  describe(`${product} backend (seed ${seed})`, () => {
    let server: SearchServer;
    let docs: ArchiveDocument[];
    const tmp = mkdtempSync(join(tmpdir(), `mim-${product}-suite-`));

    before(async () => {
      console.log(`seed ${seed} (TEST_SEED=${seed} repeats this run)`);
      // A write queue of 4 with 4 bulks of 3 shards in flight: some bulk items are refused with 429.
      server = await startSearchServer(product, { settings: { 'thread_pool.write.queue_size': '4' } });
      docs = buildArchive(4000, seed, 25);
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
          (e: unknown) => e instanceof SchemaNotReadyError && e.message.includes('PUT /schema_check/_mapping {"properties":{"from_jid":{"type":"keyword"}}}'),
        );
        assert.deepEqual(await backend.applySchema(), ['PUT /schema_check/_mapping {"properties":{"from_jid":{"type":"keyword"}}}']);
        assert.deepEqual(await backend.applySchema(), [], 'a second apply changes nothing');
        assert.equal((await backend.checkSchema()).ready, true);
        const mapping = (await searchCall(server.url, 'GET', '/schema_check/_mapping')) as Record<string, { mappings: { properties: Record<string, { type: string }> } }>;
        assert.equal(mapping.schema_check.mappings.properties.from_jid.type, 'keyword');
      } finally {
        await backend.close();
      }
    });

    it('a missing index and a wrong --type are clear errors', async () => {
      const missing = backendFor(server, 'no_such_index');
      await assert.rejects(missing.checkSchema(), /index 'no_such_index' does not exist/);
      await missing.close();
      const typed = new ElasticsearchBackend(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 2 }), { index: 'schema_check', type: 'muc' });
      await assert.rejects(typed.checkSchema(), /no mapping type 'muc'.*drop --type/);
      await typed.close();
    });

    it('migrates every document, reports every failure by _id, ends; a re-run reports them again and writes nothing', async () => {
      await loadArchive(server.url, docs, { index: 'muc_messages', shards: 3 });
      const backend = backendFor(server, 'muc_messages');
      try {
        const report = new MemoryReport<string>();
        const summary = await runMigration({ backend, openStream: openInProcessStream, report, applySchema: true, batchSize: 300, concurrency: 4 });
        assert.equal(summary.reachedEnd, true);
        const failures = expectedFailures(docs);
        assert.ok(failures.size > 50, `the dataset has failures of every kind (${failures.size})`);
        assert.deepEqual(new Map(report.rows.map((r) => [r.fields._id, r.reason])), failures);
        assert.equal(report.rows.length, failures.size, 'each failure reported once');
        // A batch retried after a transient failure re-reads only what is still without from_jid,
        // so the count can fall short of the documents written; the documents themselves are exact.
        assert.ok(summary.written > 0 && summary.written <= docs.length - failures.size, `written ${summary.written}`);
        assert.deepEqual(mismatches(docs, await readFromJids(server.url, 'muc_messages')), []);
        console.log(`${product}: ${backend.bulkStats.itemsRetried} bulk items re-sent after 429/503`);
        assert.ok(backend.bulkStats.itemsRetried > 0, 'the tiny write queue refused some items with 429, and they were re-sent');

        const again = new MemoryReport<string>();
        const second = await runMigration({ backend, openStream: openInProcessStream, report: again, batchSize: 300 });
        assert.equal(second.reachedEnd, true);
        assert.equal(second.written, 0);
        assert.deepEqual(new Map(again.rows.map((r) => [r.fields._id, r.reason])), failures);
        assert.deepEqual(mismatches(docs, await readFromJids(server.url, 'muc_messages')), []);
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
        await searchCall(server.url, 'POST', `/muc_messages/_update/${encodeURIComponent(victim.id)}?refresh=true`, JSON.stringify({ doc: { from_jid: 'mallory@evil.example' } }));
        const all = await runVerify({ backend, openStream: openInProcessStream, sample: docs.length });
        assert.deepEqual(all.mismatches.map((m) => [m.fields._id, m.kind]), [[victim.id, 'from_jid_differs']]);
        await searchCall(server.url, 'POST', `/muc_messages/_update/${encodeURIComponent(victim.id)}?refresh=true`, JSON.stringify({ doc: { from_jid: (victim.expected as { fromJid: string }).fromJid } }));
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
      const run = spawnSync(process.execPath, ['bin/mim-sender-jid.js', 'migrate', 'elasticsearch', '--url', `${server.url},${server.url}/`, '--index', 'cli_archive',
        '--apply-schema', '--username', 'admin', '--password-file', passwordFile, '--report', reportPath, '--batch-size', '100'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 });
      assert.equal(run.status, 0, `exit 0 expected:\n${run.stdout}\n${run.stderr}`);
      const reportText = readFileSync(reportPath, 'utf8');
      for (const text of [run.stdout, run.stderr, reportText]) assert.ok(!text.includes(secret), 'password not printed');
      const reported = reportText.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { _id: string; reason: string });
      assert.deepEqual(new Map(reported.map((r) => [r._id, r.reason])), expectedFailures(subset));
      assert.deepEqual(mismatches(subset, await readFromJids(server.url, 'cli_archive')), []);

      const verify = spawnSync(process.execPath, ['bin/mim-sender-jid.js', 'verify', 'elasticsearch', '--url', server.url, '--index', 'cli_archive'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
      assert.equal(verify.status, 0, `verify exit 0 expected:\n${verify.stdout}\n${verify.stderr}`);
    });
  });
}
