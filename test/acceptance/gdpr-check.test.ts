/**
 * The acceptance checker can fail: every way an answer of MongooseIM's GDPR query or the report can
 * be wrong is reported (the suites on real servers show it once more on a wrong write).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { buildAcceptanceArchive, STRANGERS, type AcceptanceArchive } from './archive.js';
import { gdprProblems, reportProblems, rightAnswers, type GdprRow } from './gdpr-check.js';

let archive: AcceptanceArchive;
before(async () => {
  archive = await buildAcceptanceArchive(4, 2);
});

const eterm = { format: 'eterm', ordered: true } as const;
const rightReport = (): { id: string; reason: string }[] => archive.records.flatMap((r) => (r.reason === null ? [] : [{ id: r.id, reason: r.reason }]));

test('the archive is what the suites need: senders under several spellings, in many rooms, and records nobody may get', () => {
  assert.ok(archive.senders.length >= 10);
  for (const jid of ['alice@example.com', 'i\u0307stanbul@example.com', 'σασ@ελλάδα.gr', '\u03c9mega@example.com', 'kate@example.com']) {
    const spellings = new Set(archive.records.filter((r) => r.sender === jid).map((r) => r.what));
    assert.ok(spellings.size >= 2, `${jid} writes under ${[...spellings].join(', ')}`);
  }
  const rooms = new Set(archive.records.filter((r) => r.sender === 'bob@example.com').map((r) => r.room));
  assert.ok(rooms.size >= 3, 'bob writes in several rooms');
  const reasons = new Set(archive.records.flatMap((r) => (r.reason === null ? [] : [r.reason])));
  assert.deepEqual([...reasons].sort(), ['jid_without_domain', 'jid_without_local_part', 'malformed', 'not_groupchat']);
  assert.ok(archive.records.some((r) => r.eterm[1] === 80) && archive.records.some((r) => r.eterm[1] === 104), 'compressed and plain eterms');
  for (const jid of STRANGERS) assert.ok(archive.asked.includes(jid));
});

test('the right answer and the right report pass', () => {
  assert.deepEqual(gdprProblems(archive, rightAnswers(archive, 'eterm'), eterm), []);
  assert.deepEqual(gdprProblems(archive, rightAnswers(archive, 'xml'), { format: 'xml', ordered: true }), []);
  assert.deepEqual(reportProblems(archive, rightReport()), []);
});

test('a missing, a misattributed, a duplicated, a changed, an out-of-order or an unasked answer is reported', () => {
  const answers = rightAnswers(archive, 'eterm');
  const bob = answers.get('bob@example.com')!;
  const alice = answers.get('alice@example.com')!;
  const moved = bob.shift()!;
  alice.push(moved);
  alice.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  const carol = answers.get('carol@example.com')!;
  carol.push(carol[0]);
  const kate = answers.get('kate@example.com')!;
  kate[0] = { id: kate[0].id, message: Buffer.from('other bytes') };
  const room1 = answers.get('room1@muc.example.com')!;
  [room1[0], room1[1]] = [room1[1], room1[0]];
  const refused = archive.records.find((r) => r.reason === 'not_groupchat')!;
  answers.set('dave@example.com', [{ id: refused.id, message: refused.eterm }]);
  answers.delete('nobody@example.com');
  answers.set('mallory@example.com', [] as GdprRow[]);
  assert.deepEqual(
    gdprProblems(archive, answers, eterm).sort(),
    [
      `alice@example.com: got message ${moved.id}, bob@example.com's`,
      `bob@example.com: 1 of its ${bob.length + 1} messages missing (${moved.id})`,
      'carol@example.com: 1 messages returned twice',
      'carol@example.com: answer not in ascending id order',
      `dave@example.com: got message ${refused.id}, nobody's (${refused.what})`,
      `kate@example.com: message ${kate[0].id} is not the stored payload`,
      "mallory@example.com: asked but not one of the archive's JIDs",
      'nobody@example.com: not asked',
      'room1@muc.example.com: answer not in ascending id order',
    ].sort(),
  );
  // Riak's query has no order: only the order check goes.
  assert.ok(!gdprProblems(archive, answers, { format: 'eterm', ordered: false }).some((p) => p.includes('order')));
});

test('a report that misses, adds or mislabels a record is reported', () => {
  const report = rightReport();
  const dropped = report.shift()!;
  const sent = archive.records.find((r) => r.sender !== null)!;
  report.push({ id: sent.id, reason: 'malformed' });
  report[0] = { ...report[0], reason: 'payload_too_large' };
  const relabelled = archive.records.find((r) => r.id === report[0].id)!;
  report.push({ id: '1', reason: 'malformed' });
  assert.deepEqual(
    reportProblems(archive, report).sort(),
    [
      `report: ${dropped.id} (${archive.records.find((r) => r.id === dropped.id)!.what}) listed as nothing instead of ${archive.records.find((r) => r.id === dropped.id)!.reason}`,
      `report: ${sent.id} (${sent.sender}) listed as malformed, but it has a sender`,
      `report: ${relabelled.id} (${relabelled.what}) listed as payload_too_large instead of ${relabelled.reason}`,
      'report: 1 is not in the archive',
    ].sort(),
  );
});
