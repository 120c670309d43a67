/**
 * The report read back line by line: the key of each line is the text of the backend's
 * `describeKey`, whatever else the line holds; lines that are no report line are passed over.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { reportLine } from '../../clients/pipeline/report.js';
import {
  defaultReportPath,
  migrateReportPath,
  MAX_REPORT_LINE_BYTES,
  removeReportedKeys,
  reportedKeyOfLine,
  reportedKeys,
  reportKind,
} from '../../clients/pipeline/report-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'report-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fields = (id: string) => ({ room_jid: 'r\u00e9/"x"@muc.example.com', with_nick: '', id });

test('the key of a report line is JSON.stringify(describeKey(key)), field order kept', () => {
  const line = reportLine({ key: null, fields: fields('-9'), reason: 'not_groupchat', detail: 'type="chat"' });
  assert.equal(reportedKeyOfLine(line.trimEnd()), JSON.stringify(fields('-9')));
  assert.equal(reportedKeyOfLine('{"room_id":"1","id":"2","reason":"x"'), null);
  assert.equal(reportedKeyOfLine('[1,2]'), null);
  assert.equal(reportedKeyOfLine('7'), null);
});

test('streamed: every whole line, a cut last line and over-long lines passed over', async () => {
  const path = join(dir, 'report.jsonl');
  const lines = ['1', '2', '3'].map((id) => reportLine({ key: null, fields: fields(id), reason: 'malformed', detail: 'd\n' }));
  const long = JSON.stringify({ room_id: 'x'.repeat(MAX_REPORT_LINE_BYTES), id: '1', reason: 'malformed', detail: '' }) + '\n';
  writeFileSync(path, lines[0] + 'not json\n' + long + lines[1] + lines[2] + '{"room_id":"9"');
  const keys: string[] = [];
  for await (const key of reportedKeys(path)) keys.push(key);
  // The cut last line (a kill in the middle of an append) is no line.
  assert.deepEqual(
    keys,
    ['1', '2', '3'].map((id) => JSON.stringify(fields(id))),
  );
});

test('removeReportedKeys stops when nothing is pending; a missing file or a non-file holds nothing; reportedKeys refuses a non-file', async () => {
  const path = join(dir, 'small.jsonl');
  writeFileSync(path, ['a', 'b', 'c'].map((id) => reportLine({ key: null, fields: { id }, reason: 'malformed', detail: '' })).join(''));
  const pending = new Set([JSON.stringify({ id: 'b' }), JSON.stringify({ id: 'z' })]);
  await removeReportedKeys(path, pending);
  assert.deepEqual([...pending], [JSON.stringify({ id: 'z' })]);
  await removeReportedKeys(join(dir, 'missing.jsonl'), pending);
  assert.equal(pending.size, 1);
  await removeReportedKeys(dir, pending);
  await removeReportedKeys('/dev/null', pending);
  assert.equal(pending.size, 1);
  await assert.rejects(reportedKeys(dir).next(), /is not a regular file/);
});

test('a dry run has a report of its own', () => {
  const shard = { index: 1, count: 4 };
  assert.equal(defaultReportPath('postgres', shard), 'mim-sender-jid-report-postgres-shard-1-of-4.jsonl');
  assert.notEqual(defaultReportPath('postgres', shard, true), defaultReportPath('postgres', shard));
});

test("a dry run given the real run's --report writes a file beside it, never the real one", () => {
  const shard = { index: 0, count: 1 };
  assert.equal(migrateReportPath(undefined, 'riak', shard, false), defaultReportPath('riak', shard));
  assert.equal(migrateReportPath(undefined, 'riak', shard, true), defaultReportPath('riak', shard, true));
  assert.equal(migrateReportPath('/var/log/r.jsonl', 'riak', shard, false), '/var/log/r.jsonl');
  assert.equal(migrateReportPath('/var/log/r.jsonl', 'riak', shard, true), '/var/log/r-dry-run.jsonl');
  assert.equal(migrateReportPath('logs.d/report', 'riak', shard, true), 'logs.d/report-dry-run');
  assert.equal(migrateReportPath('.hidden', 'riak', shard, true), '.hidden-dry-run');
  assert.equal(migrateReportPath('r.jsonl', 'riak', shard, true), 'r-dry-run.jsonl');
  assert.equal(migrateReportPath('my-dry-run.jsonl', 'riak', shard, true), 'my-dry-run-dry-run.jsonl', 'whatever the name says');
  assert.equal(migrateReportPath('/dev/null', 'riak', shard, true), '/dev/null');
});

test("a --field walk's report is named by its fields, the same whichever order they are named in", () => {
  assert.equal(reportKind('postgres', undefined), 'postgres');
  assert.equal(reportKind('postgres', 'sender'), 'postgres');
  assert.equal(reportKind('mysql', 'origin_id'), 'mysql-origin_id');
  assert.equal(reportKind('mysql', 'origin_id,is_groupchat'), 'mysql-is_groupchat+origin_id');
  assert.equal(reportKind('mysql', 'is_groupchat, origin_id'), 'mysql-is_groupchat+origin_id');
});
