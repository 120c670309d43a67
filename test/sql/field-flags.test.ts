/**
 * `--field` on the command line: a value it does not know, a combination that is not one walk
 * (the sender with another field, a field twice) and `--single-writer` (about mam_server_user,
 * which a field walk never writes) are bad usage (exit 2) before anything is opened: the URLs name
 * a port nobody listens on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCliBounded } from '../support/bounded-cli.js';

const CHILD_TIMEOUT_MS = 60_000;

test('--field: unknown values, bad combinations and --single-writer are refused as bad usage, before connecting', { timeout: 300_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [
      ['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'sender_id'],
      /--field must be one of sender, origin_id, is_groupchat, got 'sender_id'/,
    ],
    [['verify', 'mysql', '--url', 'mysql://u@127.0.0.1:9/db', '--field', 'groupchat'], /--field must be one of sender, origin_id, is_groupchat/],
    [['migrate', 'mssql', '--url', 'mssql://u:p@127.0.0.1:9/db', '--field', 'origin'], /--field must be one of sender, origin_id, is_groupchat, got 'origin'/],
    [['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'is_groupchat', '--single-writer'], /--single-writer is about mam_server_user/],
    [
      ['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'sender,origin_id'],
      /--field sender cannot share a walk with origin_id: run them one after another \(--field sender first, then --field origin_id\)/,
    ],
    [['verify', 'mysql', '--url', 'mysql://u@127.0.0.1:9/db', '--field', 'is_groupchat,sender'], /--field sender cannot share a walk with is_groupchat/],
    [['migrate', 'mysql', '--url', 'mysql://u@127.0.0.1:9/db', '--field', 'origin_id,origin_id'], /--field names a field twice/],
    [['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'origin_id,'], /--field must be one of .*got 'origin_id,'/],
    [
      ['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'origin_id,is_groupchat', '--single-writer'],
      /--single-writer is about mam_server_user, which --field origin_id,is_groupchat never writes/,
    ],
  ];
  const dir = mkdtempSync(join(tmpdir(), 'mim-field-flags-'));
  try {
    for (const [args, message] of cases) {
      const report = args[0] === 'migrate' ? ['--report', join(dir, 'report.jsonl')] : [];
      const run = await runCliBounded([...args, ...report], CHILD_TIMEOUT_MS);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
