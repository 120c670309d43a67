/**
 * The acceptance suite on one Elasticsearch/OpenSearch node: the Erlang-made archive (XML, as
 * MongooseIM always stores it there) in MongooseIM 3.3's `muc_messages` index, the real `migrate`
 * command, then MongooseIM 3.4.0's own GDPR search for every sender, checked against the
 * generator. Run by opensearch.test.ts, elasticsearch7.test.ts and elasticsearch6.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMigrateProcess } from '../support/migrate-process.js';
import { startSearchServer, type SearchProduct, type SearchServer } from '../support/search-server.js';
import { loadArchive, searchCall } from '../elasticsearch/archive-dataset.js';
import { buildAcceptanceArchive, roomJid, type AcceptanceArchive } from './archive.js';
import { gdprProblems, reportProblems } from './gdpr-check.js';
import { GDPR_INDEX, searchGdpr } from './mongooseim-34-search.js';

const docId = (room: number, id: string): string => `${roomJid(room)}$${id}`;

export function searchAcceptanceSuite(product: SearchProduct, { typed }: { typed: boolean }): void {
  let server: SearchServer;
  let archive: AcceptanceArchive;
  let dir: string;
  // Elasticsearch's `english` analyzer is not on Maven Central (test/elasticsearch/archive-dataset.ts).
  const bodyAnalyzer = product === 'opensearch' ? 'english' : 'standard';
  // tirerl puts the type in the path: right for MongooseIM's typed index (Elasticsearch 6). A
  // typeless index (Elasticsearch 7, OpenSearch) has no type `muc`, so there the typeless path.
  const typedPath = typed;
  const xml = { format: 'xml', ordered: true } as const;

  before(async () => {
    archive = await buildAcceptanceArchive();
    server = await startSearchServer(product);
    dir = mkdtempSync(join(tmpdir(), `mim-acceptance-${product}-`));
  });
  after(async () => {
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function migrate(report: string): Promise<void> {
    await searchCall(server.url, 'DELETE', `/${GDPR_INDEX}`).catch(() => {});
    await searchCall(server.url, 'DELETE', '/mim_sender_jid_checkpoint').catch(() => {});
    const docs = archive.records.map((r) => ({
      id: docId(r.room, r.id),
      mamId: BigInt(r.id),
      room: roomJid(r.room),
      message: r.xml.toString('utf8'),
      expected: { reason: 'malformed' as const },
    }));
    await loadArchive(server.url, docs, { index: GDPR_INDEX, typed, bodyAnalyzer });
    const result = await startMigrateProcess([
      'elasticsearch',
      '--url',
      server.url,
      ...(typed ? ['--type', 'muc'] : []),
      '--apply-schema',
      '--report',
      report,
      '--batch-size',
      '32',
    ]).done;
    assert.equal(result.status, 0, result.stderr);
  }

  function readReport(path: string): { id: string; reason: string }[] {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { _id: string; reason: string })
      .map((l) => ({ id: l._id.slice(l._id.lastIndexOf('$') + 1), reason: l.reason }));
  }

  test(`after \`migrate\`, MongooseIM 3.4.0's GDPR search gives every sender exactly the messages they sent (${product})`, async () => {
    const report = join(dir, 'plain.jsonl');
    await migrate(report);
    const { complete, defaultPageProblems } = await searchGdpr(server.url, archive.asked, typedPath);
    assert.deepEqual(gdprProblems(archive, complete, xml), []);
    assert.deepEqual(defaultPageProblems, []);
    assert.deepEqual(reportProblems(archive, readReport(report)), []);
    for (const jid of archive.senders) assert.ok(complete.get(jid)!.length > 10, `${jid} sent more than MongooseIM's default page`);
  });

  test(`the check fails on a single misattributed or missing document (${product})`, async () => {
    const report = join(dir, 'wrong.jsonl');
    await migrate(report);
    const bobs = archive.records.find((r) => r.sender === 'bob@example.com')!;
    const carols = archive.records.find((r) => r.sender === 'carol@example.com')!;
    const update = (room: number, id: string): string =>
      typed ? `/${GDPR_INDEX}/muc/${encodeURIComponent(docId(room, id))}/_update` : `/${GDPR_INDEX}/_update/${encodeURIComponent(docId(room, id))}`;
    await searchCall(server.url, 'POST', update(bobs.room, bobs.id), JSON.stringify({ doc: { from_jid: 'alice@example.com' } }));
    // Carol's document indexed again as MongooseIM 3.3 wrote it (no script engine on every node).
    const source = JSON.stringify({
      room: roomJid(carols.room),
      source_jid: `${roomJid(carols.room)}/nick`,
      message: carols.xml.toString('utf8'),
      body: 'hello',
    });
    const put = typed
      ? `/${GDPR_INDEX}/muc/${encodeURIComponent(docId(carols.room, carols.id))}`
      : `/${GDPR_INDEX}/_doc/${encodeURIComponent(docId(carols.room, carols.id))}`;
    await searchCall(server.url, 'PUT', put, `{"mam_id":${carols.id},${source.slice(1)}`);
    const { complete } = await searchGdpr(server.url, archive.asked, typedPath);
    const count = (jid: string): number => archive.records.filter((r) => r.sender === jid).length;
    assert.deepEqual(
      gdprProblems(archive, complete, xml).sort(),
      [
        `alice@example.com: got message ${bobs.id}, bob@example.com's`,
        `bob@example.com: 1 of its ${count('bob@example.com')} messages missing (${bobs.id})`,
        `carol@example.com: 1 of its ${count('carol@example.com')} messages missing (${carols.id})`,
      ].sort(),
    );
  });
}
