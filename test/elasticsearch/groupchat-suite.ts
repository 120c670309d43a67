/**
 * `migrate|verify elasticsearch --field is_groupchat` against one real server, started once for
 * the file: MongooseIM 6.2.0-shaped one-to-one archives (pm-dataset.ts) whose answers come from
 * MongooseIM's own is_groupchat/1 run by Erlang; the schema step on exactly one index; a dry run
 * that touches nothing; the walk (every document as MongooseIM answers, the undecodable ones
 * reported and left without the field, documents MongooseIM 6.2.1 wrote left as they are);
 * MongooseIM's own "without groupchat" query answering the right documents; verify and verify
 * --complete; and the CLI killed with SIGKILL and run again. Decoding goes through the real
 * in-process pool's fields stream.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CHECKPOINT_INDEX } from '../../clients/backends/elasticsearch/checkpoint-store.js';
import { ElasticsearchBackend } from '../../clients/backends/elasticsearch/elasticsearch-backend.js';
import { MappingConflictError } from '../../clients/backends/elasticsearch/index-layout.js';
import { SearchHttp, type SearchResponse } from '../../clients/backends/elasticsearch/search-http.js';
import { GROUPCHAT_WALK } from '../../clients/backends/elasticsearch/walk-target.js';
import { openDecoder, type Decoder } from '../../clients/decoder-client/index.js';
import { MemoryReport, reportLine } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError, type MigrationOptions, type MigrationSummary } from '../../clients/pipeline/run-migration.js';
import type { FieldsResult } from '../../clients/pipeline/types.js';
import { runVerify, runVerifyComplete, type CompleteFinding } from '../../clients/pipeline/run-verify.js';
import { runCliBounded } from '../support/bounded-cli.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { startSearchServer, type SearchProduct, type SearchServer } from '../support/search-server.js';
import { searchCall } from './archive-dataset.js';
import { buildPmArchive, createPmIndex, loadPmDocuments, OWNERS, readGroupchats, withoutGroupchat, type PmDocument } from './pm-dataset.js';

const TEST_BACKOFF = { baseMs: 20, maxMs: 500 };

/** Every document of a small index with its version, and the index's write counters. */
async function snapshot(url: string, index: string): Promise<string> {
  await searchCall(url, 'POST', `/${index}/_refresh`);
  const body = (await searchCall(url, 'POST', `/${index}/_search`, JSON.stringify({ size: 10_000, seq_no_primary_term: true, sort: ['_doc'] }))) as {
    hits: { hits: { _id: string; _seq_no: number; _source: unknown }[] };
  };
  const docs = body.hits.hits.map((h) => `${h._id} ${h._seq_no} ${JSON.stringify(h._source)}`).sort();
  const stats = (await searchCall(url, 'GET', `/${index}/_stats/indexing`)) as {
    indices: Record<string, { primaries: { indexing: { index_total: number; delete_total: number } } }>;
  };
  const indexing = stats.indices[index].primaries.indexing;
  return `${docs.join('\n')}\nindex_total ${indexing.index_total}, delete_total ${indexing.delete_total}`;
}

/** The ids of our checkpoint index (none when it does not exist yet). */
async function checkpointIds(url: string): Promise<string[]> {
  const exists = await fetch(`${url}/${CHECKPOINT_INDEX}`, { method: 'HEAD' });
  if (exists.status === 404) return [];
  await searchCall(url, 'POST', `/${CHECKPOINT_INDEX}/_refresh`);
  const body = (await searchCall(url, 'POST', `/${CHECKPOINT_INDEX}/_search`, JSON.stringify({ size: 1000, _source: false }))) as {
    hits: { hits: { _id: string }[] };
  };
  return body.hits.hits.map((h) => h._id).sort();
}

/** Plays MongooseIM 6.2.1 writing documents once, on the first `_bulk` the hook acts on (answers true), before it is sent. */
class HookedHttp extends SearchHttp {
  private fired = false;
  constructor(
    url: string,
    private readonly index: string,
    private readonly hook: (ndjson: readonly unknown[]) => Promise<boolean>,
  ) {
    super({ nodes: [new URL(url)], maxSockets: 8 });
  }

  override async request<T = unknown>(method: string, path: string, body?: unknown, ndjson?: readonly unknown[]): Promise<SearchResponse<T>> {
    if (!this.fired && ndjson !== undefined && path === `/${this.index}/_bulk`) this.fired = await this.hook(ndjson);
    return super.request<T>(method, path, body, ndjson);
  }
}

/** `typed`: an Elasticsearch 5/6 index with MongooseIM's mapping type `pm` (`--type pm`). */
export function groupchatSuite(product: SearchProduct, { typed = false }: { typed?: boolean } = {}): void {
  const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
  const mappingPath = (index: string): string => `/${index}/_mapping${typed ? '/pm' : ''}`;
  const docPath = (index: string, id: string): string => `/${index}${typed ? '/pm' : '/_doc'}/${encodeURIComponent(id)}`;
  const updatePath = (index: string, id: string): string =>
    typed ? `/${index}/pm/${encodeURIComponent(id)}/_update` : `/${index}/_update/${encodeURIComponent(id)}`;
  /** The field mappings of `index` in a `GET _mapping` answer. */
  const propertiesOf = (body: unknown, index: string): Record<string, { type: string } | undefined> => {
    const mappings = (body as Record<string, { mappings: Record<string, unknown> }>)[index].mappings;
    return ((typed ? (mappings.pm as { properties?: unknown }) : mappings).properties ?? {}) as Record<string, { type: string } | undefined>;
  };
  const mappingOf = (properties: object): object => (typed ? { pm: { properties } } : { properties });
  const typeArgs = typed ? ['--type', 'pm'] : [];
  const seed = fuzzSeed('ES_GROUPCHAT_SEED', `${product} is_groupchat walk`);
  describe(`${product}: --field is_groupchat on the one-to-one archive${typed ? ' (typed index, --type pm)' : ''}`, () => {
    let server: SearchServer;
    let decoder: Decoder;
    let docs: PmDocument[];
    /** Written by MongooseIM 6.2.1 after the upgrade: is_groupchat sent as a string, never walked. */
    let fresh: PmDocument[];
    const tmp = mkdtempSync(join(tmpdir(), `mim-${product}-groupchat-`));

    before(async () => {
      server = await startSearchServer(product);
      decoder = await openDecoder({ maxInFlightBatches: 3, workers: 1 });
      docs = buildPmArchive(30, seed % 100_000);
      const last = docs[docs.length - 1].mamId;
      fresh = [true, false].map((g, i) => ({
        id: `${OWNERS[i]}$${last + 1000n + BigInt(i)}`,
        mamId: last + 1000n + BigInt(i),
        owner: OWNERS[i],
        message: `<message from='carol@localhost/phone' to='${OWNERS[i]}' type='${g ? 'groupchat' : 'chat'}'><body>new</body></message>`,
        expected: g,
      }));
    });
    after(async () => {
      await decoder?.close();
      await server?.stop();
      rmSync(tmp, { recursive: true, force: true });
    });

    function backendFor(index: string): ElasticsearchBackend<FieldsResult> {
      return new ElasticsearchBackend<FieldsResult>(new SearchHttp({ nodes: [new URL(server.url)], maxSockets: 8 }), {
        index,
        target: GROUPCHAT_WALK,
        ...(typed ? { type: 'pm' } : {}),
      });
    }

    const createIndex = (index: string, shards?: number): Promise<void> => createPmIndex(server.url, index, bodyAnalyzer, shards, typed);
    const load = (index: string, d: readonly PmDocument[], isGroupchat?: (d: PmDocument) => 'true' | 'false'): Promise<void> =>
      loadPmDocuments(server.url, index, d, isGroupchat, typed);

    async function migrate(index: string, extra: Partial<MigrationOptions> = {}): Promise<MigrationSummary & { report: MemoryReport<string> }> {
      const report = new MemoryReport<string>();
      const backend = backendFor(index);
      try {
        const summary = await runMigration({
          backend,
          openStream: (format) => decoder.openFieldsStream(format),
          report,
          batchSize: 7,
          concurrency: 2,
          backoff: TEST_BACKOFF,
          ...extra,
        });
        return { ...summary, report };
      } finally {
        await backend.close();
      }
    }

    const undecodable = (): Map<string, string> => new Map(docs.filter((d) => d.expected === 'malformed').map((d) => [d.id, 'malformed']));

    /** What each document must hold after the walk: the boolean MongooseIM answers, nothing when undecodable, and 6.2.1's own strings as they were. */
    function expectedValues(): Map<string, unknown> {
      const want = new Map<string, unknown>(docs.map((d) => [d.id, d.expected === 'malformed' ? undefined : d.expected]));
      for (const d of fresh) want.set(d.id, String(d.expected));
      return want;
    }

    /** The ids MongooseIM must answer for `owner` without groupchat messages: every message of the owner that is not groupchat. */
    function wantWithoutGroupchat(owner: string): string[] {
      return [...docs, ...fresh]
        .filter((d) => d.owner === owner && d.expected === false)
        .map((d) => d.id)
        .sort();
    }

    it('the schema step: the request to send, --apply-schema adds is_groupchat to exactly the one index, a wrong mapping or another archive is refused', async () => {
      for (const index of ['pm_schema', 'pm_neighbour']) {
        await createIndex(index, 1);
        await load(index, docs.slice(0, 5));
      }
      const request = `PUT ${mappingPath('pm_schema')} {"properties":{"is_groupchat":{"type":"boolean"}}}`;
      const neighbourBefore = JSON.stringify(await searchCall(server.url, 'GET', '/pm_neighbour/_mapping'));
      const backend = backendFor('pm_schema');
      try {
        await assert.rejects(
          runMigration({ backend, openStream: (f) => decoder.openFieldsStream(f), report: new MemoryReport() }),
          (e: unknown) => e instanceof SchemaNotReadyError && e.message.includes(request),
        );
        assert.deepEqual(await backend.applySchema(), [request]);
        assert.deepEqual(await backend.applySchema(), [], 'a second apply changes nothing');
        assert.equal((await backend.checkSchema()).ready, true);
      } finally {
        await backend.close();
      }
      assert.equal(propertiesOf(await searchCall(server.url, 'GET', '/pm_schema/_mapping'), 'pm_schema').is_groupchat?.type, 'boolean');
      assert.equal(JSON.stringify(await searchCall(server.url, 'GET', '/pm_neighbour/_mapping')), neighbourBefore, 'no other index changed');

      // is_groupchat mapped as neither boolean nor text (which MongooseIM's term "false" would not match): the schema step's status, with the way out.
      await searchCall(server.url, 'PUT', '/pm_long', JSON.stringify({ mappings: mappingOf({ owner: { type: 'keyword' }, is_groupchat: { type: 'long' } }) }));
      const conflicting = backendFor('pm_long');
      await assert.rejects(
        conflicting.checkSchema(),
        (e: unknown) => e instanceof MappingConflictError && /maps is_groupchat as 'long', not boolean/.test(e.message),
      );
      await conflicting.close();
      // The MUC archive (room, no owner) is not the archive this walk fills: nothing is changed in it.
      await searchCall(server.url, 'PUT', '/muc_like', JSON.stringify({ mappings: mappingOf({ room: { type: 'keyword' }, mam_id: { type: 'long' } }) }));
      const muc = backendFor('muc_like');
      await assert.rejects(muc.applySchema(), /index 'muc_like' has no keyword field owner: it is not MongooseIM's one-to-one archive/);
      await muc.close();
      assert.equal(propertiesOf(await searchCall(server.url, 'GET', '/muc_like/_mapping'), 'muc_like').is_groupchat, undefined);

      // The CLI: MongooseIM's search archives hold no origin_id; the default index is `messages`.
      const origin = await runCliBounded(['migrate', 'elasticsearch', '--url', server.url, '--field', 'origin_id'], 60_000);
      assert.equal(origin.status, 2, origin.stderr);
      assert.match(origin.stderr, /store no origin_id/);
      const missing = await runCliBounded(
        ['migrate', 'elasticsearch', '--url', server.url, '--field', 'is_groupchat', '--report', join(tmp, 'none.jsonl')],
        60_000,
      );
      assert.equal(missing.status, 1, missing.stderr);
      assert.match(missing.stderr, /index 'messages' does not exist.*one-to-one archive index, default messages/);
    });

    it('a dry run touches nothing; the walk gives every document MongooseIM\'s answer, and its "without groupchat" query the right messages', async () => {
      await createIndex('messages');
      await load('messages', docs);
      // The upgrade to 6.2.1: the mapping gains the field, new messages come with it.
      await searchCall(server.url, 'PUT', mappingPath('messages'), JSON.stringify({ properties: { is_groupchat: { type: 'boolean' } } }));
      await load('messages', fresh, (d) => (d.expected === true ? 'true' : 'false'));
      // Before the backfill, old chat messages drop out of MongooseIM's answer.
      for (const owner of OWNERS) assert.notDeepEqual(await withoutGroupchat(server.url, 'messages', owner), wantWithoutGroupchat(owner));

      const archiveBefore = await snapshot(server.url, 'messages');
      const checkpointsBefore = await checkpointIds(server.url);
      const dry = await migrate('messages', { dryRun: true });
      assert.equal(dry.reachedEnd, true);
      assert.equal(dry.written, docs.length - undecodable().size, 'what would be written');
      assert.equal(await snapshot(server.url, 'messages'), archiveBefore, 'a dry run changes no document');
      assert.deepEqual(await checkpointIds(server.url), checkpointsBefore, 'nor any checkpoint');

      const run = await migrate('messages');
      assert.equal(run.reachedEnd, true);
      assert.equal(run.records, docs.length, 'the documents 6.2.1 wrote are not walked');
      assert.equal(run.written, docs.length - undecodable().size);
      assert.deepEqual(new Map(run.report.rows.map((r) => [r.fields._id, r.reason])), undecodable());
      assert.deepEqual(run.accounting, { kind: 'complete', rewalked: 0 });
      const stored = await readGroupchats(server.url, 'messages');
      assert.deepEqual(Object.fromEntries(stored), Object.fromEntries(expectedValues()));
      for (const owner of OWNERS) assert.deepEqual(await withoutGroupchat(server.url, 'messages', owner), wantWithoutGroupchat(owner), owner);

      // Its own checkpoints and plan, apart from the sender walk's names for the same index.
      const ids = await checkpointIds(server.url);
      assert.ok(ids.includes('plan:messages:is_groupchat'), ids.join(' '));
      assert.ok(
        ids.some((id) => /^messages:is_groupchat:p\d\d$/.test(id)),
        ids.join(' '),
      );
      assert.ok(!ids.some((id) => id === 'plan:messages' || /^messages:p\d\d$/.test(id)), ids.join(' '));

      const archiveAfter = await snapshot(server.url, 'messages');
      const again = await migrate('messages');
      assert.equal(again.written, 0);
      assert.deepEqual(new Map(again.report.rows.map((r) => [r.fields._id, r.reason])), undecodable(), 'reported again');
      assert.equal(await snapshot(server.url, 'messages'), archiveAfter, 'a run after the end changes nothing');

      const verifying = backendFor('messages');
      try {
        const sample = await runVerify({ backend: verifying, openStream: (f) => decoder.openFieldsStream(f), sample: 1000 });
        assert.equal(sample.checked, docs.length - undecodable().size + fresh.length);
        assert.deepEqual(sample.mismatches, []);

        const reportPath = join(tmp, 'messages.jsonl');
        writeFileSync(reportPath, run.report.rows.map(reportLine).join(''));
        const complete = async (): Promise<{ counts: Record<string, number>; findings: CompleteFinding[] }> => {
          const findings: CompleteFinding[] = [];
          const summary = await runVerifyComplete({
            backend: verifying,
            openStream: (f) => decoder.openFieldsStream(f),
            reportPaths: [reportPath],
            onFinding: (f) => findings.push(f),
            batchSize: 9,
          });
          return { counts: { ...summary.counts }, findings };
        };
        const clean = await complete();
        assert.deepEqual(clean.findings, []);
        assert.deepEqual(clean.counts, {
          written_right: docs.length - undecodable().size + fresh.length,
          written_wrong: 0,
          not_written_reported: undecodable().size,
          not_written_unreported: 0,
        });

        // A chat message made groupchat, and another one's field removed: both found, nothing else.
        const chats = docs.filter((d) => d.expected === false);
        const [planted, removed] = [chats[0], chats[1]];
        await searchCall(server.url, 'POST', `${updatePath('messages', planted.id)}?refresh=true`, JSON.stringify({ doc: { is_groupchat: true } }));
        // Indexed again without it (the test servers run no scripting).
        const doc = (await searchCall(server.url, 'GET', docPath('messages', removed.id))) as { _source: Record<string, unknown> };
        delete doc._source.is_groupchat;
        await searchCall(server.url, 'PUT', `${docPath('messages', removed.id)}?refresh=true`, JSON.stringify(doc._source));
        const found = await complete();
        assert.deepEqual(
          found.findings.map((f) => [f.fields._id, f.class, f.kind ?? '', f.stored]).sort(),
          [
            [planted.id, 'written_wrong', 'different_value', 'is_groupchat true'],
            [removed.id, 'not_written_unreported', '', ''],
          ].sort(),
        );
      } finally {
        await verifying.close();
      }
    });

    it('a document written meanwhile (409): MongooseIM\'s "false" for a chat counts as written, a "true" is kept and reported, another field changed is written again', async () => {
      await createIndex('pm_conflicts', 1);
      await searchCall(server.url, 'PUT', mappingPath('pm_conflicts'), JSON.stringify({ properties: { is_groupchat: { type: 'boolean' } } }));
      await load('pm_conflicts', docs);
      const touched: string[] = [];
      const http = new HookedHttp(server.url, 'pm_conflicts', async (ndjson) => {
        const chats = ndjson.filter((line) => (line as { doc?: { is_groupchat?: unknown } }).doc?.is_groupchat === false);
        if (chats.length < 3) return false;
        for (let i = 0; i + 1 < ndjson.length && touched.length < 3; i += 2) {
          if ((ndjson[i + 1] as { doc: { is_groupchat: unknown } }).doc.is_groupchat !== false) continue;
          const id = (ndjson[i] as { update: { _id: string } }).update._id;
          const n = touched.push(id);
          const doc = n === 1 ? { is_groupchat: 'false' } : n === 2 ? { is_groupchat: 'true' } : { body: 'edited' };
          await searchCall(server.url, 'POST', updatePath('pm_conflicts', id), JSON.stringify({ doc }));
        }
        return true;
      });
      const backend = new ElasticsearchBackend<FieldsResult>(http, { index: 'pm_conflicts', target: GROUPCHAT_WALK, ...(typed ? { type: 'pm' } : {}) });
      const report = new MemoryReport<string>();
      try {
        const summary = await runMigration({
          backend,
          openStream: (f) => decoder.openFieldsStream(f),
          report,
          backoff: TEST_BACKOFF,
          batchSize: 10,
          concurrency: 1,
        });
        assert.equal(touched.length, 3, 'a batch held three chat messages');
        assert.equal(summary.reachedEnd, true);
        assert.equal(summary.skipped, 1, 'the document that already held false counts as written meanwhile by someone else');
        assert.ok(backend.bulkStats.conflicts >= 3, `conflicts ${backend.bulkStats.conflicts}`);
      } finally {
        await backend.close();
      }
      const [same, other, edited] = touched;
      const lines = new Map(report.rows.map((r) => [r.fields._id, r]));
      assert.equal(lines.get(other)?.reason, 'write_refused');
      assert.match(lines.get(other)?.detail ?? '', /is_groupchat set meanwhile by another writer to true \(this message gives false\): left as it is/);
      assert.equal(lines.has(same), false);
      const want = new Map<string, unknown>(docs.map((d) => [d.id, d.expected === 'malformed' ? undefined : d.expected]));
      want.set(same, 'false');
      want.set(other, 'true');
      assert.deepEqual(Object.fromEntries(await readGroupchats(server.url, 'pm_conflicts')), Object.fromEntries(want));
      assert.deepEqual(new Set(lines.keys()), new Set([...undecodable().keys(), other]));
      assert.equal(want.get(edited), false);
    });

    it('a 6.2.0 index whose mapping was not updated: MongooseIM 6.2.1 maps the field as text, the walk writes its strings, and its query answers right', async () => {
      await createIndex('pm_dynamic', 2);
      await load('pm_dynamic', docs);
      // The nodes upgraded without the mapping step: their first write maps is_groupchat dynamically.
      await load('pm_dynamic', fresh, (d) => (d.expected === true ? 'true' : 'false'));
      assert.equal(propertiesOf(await searchCall(server.url, 'GET', '/pm_dynamic/_mapping'), 'pm_dynamic').is_groupchat?.type, 'text');
      const run = await migrate('pm_dynamic');
      assert.equal(run.reachedEnd, true);
      assert.equal(run.written, docs.length - undecodable().size);
      const want = new Map<string, unknown>(docs.map((d) => [d.id, d.expected === 'malformed' ? undefined : String(d.expected)]));
      for (const d of fresh) want.set(d.id, String(d.expected));
      assert.deepEqual(Object.fromEntries(await readGroupchats(server.url, 'pm_dynamic')), Object.fromEntries(want));
      for (const owner of OWNERS) assert.deepEqual(await withoutGroupchat(server.url, 'pm_dynamic', owner), wantWithoutGroupchat(owner), owner);
      const verifying = backendFor('pm_dynamic');
      try {
        const sample = await runVerify({ backend: verifying, openStream: (f) => decoder.openFieldsStream(f), sample: 1000 });
        assert.equal(sample.checked, docs.length - undecodable().size + fresh.length);
        assert.deepEqual(sample.mismatches, []);
      } finally {
        await verifying.close();
      }
    });

    it('an index blocked for writes stops the walk before any checkpoint moves, with no retry', async () => {
      await createIndex('pm_blocked', 1);
      await load('pm_blocked', docs.slice(0, 20));
      await migrate('pm_blocked', { limit: 0, applySchema: true }); // the schema step and the plan, before the block
      await searchCall(server.url, 'PUT', '/pm_blocked/_settings', JSON.stringify({ 'index.blocks.write': true }));
      const logged: string[] = [];
      try {
        await assert.rejects(migrate('pm_blocked', { maxRetries: 3, log: (l) => logged.push(l) }), (e: Error) =>
          /index 'pm_blocked' refuses writes.*cluster_block_exception/s.test(e.message),
        );
      } finally {
        await searchCall(server.url, 'PUT', '/pm_blocked/_settings', JSON.stringify({ 'index.blocks.write': null }));
      }
      assert.deepEqual(
        logged.filter((l) => l.startsWith('retry')),
        [],
        'a block is not load',
      );
      assert.deepEqual(
        (await checkpointIds(server.url)).filter((id) => id.startsWith('pm_blocked:')),
        [],
        'no checkpoint moved',
      );
      assert.ok(
        [...(await readGroupchats(server.url, 'pm_blocked')).values()].every((v) => v === undefined),
        'nothing written',
      );
    });

    it('property: mam_ids of both signs and every magnitude, owners with Unicode, / and quotes, keys shared across documents, whole and in 2 shards: every document as MongooseIM answers, or reported', async () => {
      // The whole of a `long` (negative ids too, which MongooseIM never writes) and owners no one picked.
      const mamId = fc.oneof(
        fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
        fc.bigInt({ min: -1000n, max: 1000n }),
        fc.constantFrom(-(1n << 63n), -1n, 0n, (1n << 53n) + 1n, (1n << 63n) - 1n),
      );
      const owner = fc.constantFrom(...OWNERS, '', 'a/b@example.com', "o'brien@example.com", 'ℌ😀@example.com');
      const pick = fc.record({ doc: fc.nat(docs.length - 1), mamId, owner, suffix: fc.string({ unit: 'grapheme', maxLength: 4 }) });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(pick, { minLength: 1, maxLength: 30 }),
          fc.integer({ min: 1, max: 6 }),
          fc.constantFrom(1, 2),
          async (picks, batchSize, shards) => {
            const index = `pm_keys_${run++}`;
            const drawn: PmDocument[] = picks.map((p, i) => ({ ...docs[p.doc], id: `${p.owner}$${p.mamId}/${i}${p.suffix}`, mamId: p.mamId, owner: p.owner }));
            await createIndex(index, 2);
            await load(index, drawn);
            const reported = new Map<string, string>();
            for (const shard of shards === 1 ? [undefined] : [0, 1].map((k) => ({ index: k, count: 2 }))) {
              const run = await migrate(index, { batchSize, applySchema: true, ...(shard === undefined ? {} : { shard }) });
              assert.equal(run.reachedEnd, true);
              for (const r of run.report.rows) {
                assert.ok(!reported.has(r.fields._id), `${r.fields._id} reported once`);
                reported.set(r.fields._id, r.reason);
              }
            }
            const stored = await readGroupchats(server.url, index);
            assert.deepEqual(Object.fromEntries(stored), Object.fromEntries(drawn.map((d) => [d.id, d.expected === 'malformed' ? undefined : d.expected])));
            assert.deepEqual(reported, new Map(drawn.filter((d) => d.expected === 'malformed').map((d) => [d.id, 'malformed'])));
            await searchCall(server.url, 'DELETE', `/${index}`);
          },
        ),
        { seed, numRuns: 6, endOnFailure: true },
      );
    });

    it('two shards fill every document between them, each with its own checkpoints', async () => {
      await createIndex('pm_shards', 2);
      await load('pm_shards', docs);
      const schema = backendFor('pm_shards');
      await schema.applySchema();
      await schema.close();
      const shards = await Promise.all([0, 1].map((index) => migrate('pm_shards', { shard: { index, count: 2 } })));
      assert.equal(shards[0].records + shards[1].records, docs.length);
      assert.ok(shards[0].records > 0 && shards[1].records > 0, 'each shard walked its part');
      assert.deepEqual(new Map(shards.flatMap((r) => r.report.rows).map((r) => [r.fields._id, r.reason])), undecodable());
      const want = new Map<string, unknown>(docs.map((d) => [d.id, d.expected === 'malformed' ? undefined : d.expected]));
      assert.deepEqual(Object.fromEntries(await readGroupchats(server.url, 'pm_shards')), Object.fromEntries(want));
    });

    it('through the CLI: killed with SIGKILL after a checkpoint, run again until done; verify --complete is clean', async () => {
      await createIndex('pm_kill', 2);
      await load('pm_kill', docs);
      const reportPath = join(tmp, 'kill.jsonl');
      const args = [
        'elasticsearch',
        '--url',
        server.url,
        '--field',
        'is_groupchat',
        '--index',
        'pm_kill',
        ...typeArgs,
        '--apply-schema',
        '--batch-size',
        '5',
        '--concurrency',
        '1',
        // Slow enough that a checkpoint is seen well before the end.
        '--max-rate',
        '20',
        '--report',
        reportPath,
        '--progress-interval',
        '3600',
      ];
      const run = startMigrateProcess(args);
      let ended = false;
      void run.done.then(() => (ended = true));
      while (!ended && !(await checkpointIds(server.url)).some((id) => id.startsWith('pm_kill:is_groupchat:p'))) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      run.kill9();
      const killed = await run.done;
      assert.equal(killed.status, 'SIGKILL', `the run ended before the kill: ${killed.stderr}`);
      const halfway = await readGroupchats(server.url, 'pm_kill');
      assert.ok([...halfway.values()].some((v) => v === undefined) && [...halfway.values()].some((v) => v !== undefined), 'killed mid-walk');

      const resumed = await startMigrateProcess(args.filter((a, i) => a !== '--max-rate' && args[i - 1] !== '--max-rate')).done;
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stderr, /resuming [1-9]\d* of 17 partitions from their checkpoints/);
      assert.match(resumed.stdout, /done \(end reached\)/);
      const want = new Map<string, unknown>(docs.map((d) => [d.id, d.expected === 'malformed' ? undefined : d.expected]));
      assert.deepEqual(Object.fromEntries(await readGroupchats(server.url, 'pm_kill')), Object.fromEntries(want));

      const verifyArgs = ['verify', 'elasticsearch', '--url', server.url, '--field', 'is_groupchat', '--index', 'pm_kill', ...typeArgs];
      const sample = await runCliBounded(verifyArgs, 120_000);
      assert.equal(sample.status, 0, sample.stderr);
      const clean = await runCliBounded([...verifyArgs, '--complete', '--report', reportPath], 120_000);
      assert.equal(clean.status, 0, clean.stderr);
      assert.equal(clean.stdout, '');
    });
  });
}
