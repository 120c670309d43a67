/**
 * The acceptance suite on the Riak double: the Erlang-made archive as MongooseIM 3.3's
 * mod_mam_riak_timed_arch_yz stores it (maps in per-ISO-week buckets of type mam_yz, keys
 * `room/nick/id`, XML packets), the real `migrate` command, then MongooseIM 3.4.0's GDPR lookup.
 *
 * The double does not model Yokozuna search (test/support/riak-double.ts). MongooseIM's query
 * `msg_owner_jid_register:JID AND mam_type_register:muc` (both `_yz_str` fields: whole-value
 * matches) is evaluated here over the double's stored objects instead, followed by what
 * MongooseIM does with each hit: split the key on every `/` into exactly three parts, take the
 * id from the last, read the packet register.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startLoadedDouble, tempFiles, type TempFiles } from '../riak/fixture.js';
import type { RiakDouble } from '../support/riak-double.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { buildAcceptanceArchive, roomJid, type AcceptanceArchive, type AcceptanceRecord } from './archive.js';
import { gdprProblems, reportProblems, type GdprRow } from './gdpr-check.js';

let archive: AcceptanceArchive;
let files: TempFiles;
const doubles: RiakDouble[] = [];

before(async () => {
  archive = await buildAcceptanceArchive();
  files = tempFiles();
});
after(async () => {
  for (const d of doubles) await d.stop();
  files?.remove();
});

/** MongooseIM's bucket for a message id: `mam_<ISO year>_<ISO week>`, week not zero-padded. */
function bucketOf(id: string): string {
  const date = new Date(Number((BigInt(id) >> 8n) / 1000n));
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 4 - (date.getUTCDay() || 7)));
  const week = Math.ceil(((thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / 86_400_000 + 1) / 7);
  return `mam_${thursday.getUTCFullYear()}_${week}`;
}

const keyOf = (r: AcceptanceRecord): string => `${roomJid(r.room)}/${r.nick}/${r.id}`;

async function loadedDouble(): Promise<RiakDouble> {
  const double = await startLoadedDouble(null, { seed: 1 });
  doubles.push(double);
  for (const r of archive.records) {
    double.putMap(bucketOf(r.id), keyOf(r), { msg_id: r.id, source_jid: `${roomJid(r.room)}/${r.nick}`, packet: r.xml, search_text: '' });
  }
  return double;
}

/** MongooseIM 3.4.0's get_mam_muc_gdpr_data, over the double's objects (see the file comment). */
function riakGdpr(double: RiakDouble, jids: readonly string[]): Map<string, GdprRow[]> {
  const answers = new Map<string, GdprRow[]>();
  for (const jid of jids) {
    const rows: GdprRow[] = [];
    for (const { key, registers } of double.entries()) {
      if (registers.msg_owner_jid !== jid || registers.mam_type !== 'muc') continue;
      const parts = key.split('/');
      if (parts.length !== 3) throw new Error(`${jid}: key ${key} has ${parts.length} parts: MongooseIM's export would crash`);
      rows.push({ id: parts[2], message: Buffer.from(registers.packet, 'utf8') });
    }
    answers.set(jid, rows);
  }
  return answers;
}

async function migrate(double: RiakDouble, name: string): Promise<string> {
  const report = files.write(`${name}.jsonl`, '');
  const result = await startMigrateProcess(['riak', '--url', double.url, '--report', report, '--batch-size', '50']).done;
  assert.equal(result.status, 0, result.stderr);
  return report;
}

function readReport(path: string): { id: string; reason: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { key: string; reason: string })
    .map((l) => ({ id: l.key.slice(l.key.lastIndexOf('/') + 1), reason: l.reason }));
}

const xml = { format: 'xml', ordered: false } as const;

describe('acceptance on the Riak double: MongooseIM 3.4.0 GDPR lookup', () => {
  test('after `migrate`, msg_owner_jid AND mam_type:muc gives every sender exactly their messages', async () => {
    const double = await loadedDouble();
    const report = await migrate(double, 'plain');
    const answers = riakGdpr(double, archive.asked);
    assert.deepEqual(gdprProblems(archive, answers, xml), []);
    // Riak's official rule writes a record that is not group chat (-2) as a one-to-one message of
    // the key's owner (mam_type pm), so it is not reported; every other refusal is.
    const notGroupchat = archive.records.filter((r) => r.reason === 'not_groupchat');
    assert.ok(notGroupchat.length > 0);
    for (const r of notGroupchat) {
      assert.deepEqual(double.getMap(bucketOf(r.id), keyOf(r)), {
        msg_id: r.id,
        source_jid: `${roomJid(r.room)}/${r.nick}`,
        packet: r.xml.toString('utf8'),
        search_text: '',
        mam_type: 'pm',
        msg_owner_jid: roomJid(r.room),
      });
    }
    const asRiakReports = { ...archive, records: archive.records.map((r) => (r.reason === 'not_groupchat' ? { ...r, reason: null } : r)) };
    assert.deepEqual(reportProblems(asRiakReports, readReport(report)), []);
    for (const jid of archive.senders) assert.ok(answers.get(jid)!.length > 10, `${jid} sent more than Solr's default 10 rows`);
  });

  test('the check fails on a single misattributed object or one written as pm', async () => {
    const double = await loadedDouble();
    await migrate(double, 'wrong');
    const bobs = archive.records.find((r) => r.sender === 'bob@example.com')!;
    const carols = archive.records.find((r) => r.sender === 'carol@example.com')!;
    double.putMap(bucketOf(bobs.id), keyOf(bobs), { msg_owner_jid: 'alice@example.com' });
    double.putMap(bucketOf(carols.id), keyOf(carols), { mam_type: 'pm' });
    const count = (jid: string): number => archive.records.filter((r) => r.sender === jid).length;
    assert.deepEqual(
      gdprProblems(archive, riakGdpr(double, archive.asked), xml).sort(),
      [
        `alice@example.com: got message ${bobs.id}, bob@example.com's`,
        `bob@example.com: 1 of its ${count('bob@example.com')} messages missing (${bobs.id})`,
        `carol@example.com: 1 of its ${count('carol@example.com')} messages missing (${carols.id})`,
      ].sort(),
    );
  });
});
