/**
 * `--field` on the command line: a value it does not know and `--single-writer` (about
 * mam_server_user, which a field walk never writes) are bad usage (exit 2) before anything is
 * opened: the URLs name a port nobody listens on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCliBounded } from '../support/bounded-cli.js';

const CHILD_TIMEOUT_MS = 60_000;

test('--field: unknown values and --single-writer are refused as bad usage, before connecting', { timeout: 300_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [
      ['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'sender_id'],
      /--field must be one of sender, origin_id, is_groupchat, got 'sender_id'/,
    ],
    [['verify', 'mysql', '--url', 'mysql://u@127.0.0.1:9/db', '--field', 'groupchat'], /--field must be one of sender, origin_id, is_groupchat/],
    [['migrate', 'mssql', '--url', 'mssql://u:p@127.0.0.1:9/db', '--field', 'origin'], /--field must be one of sender, origin_id, is_groupchat, got 'origin'/],
    [['migrate', 'postgres', '--url', 'postgres://u@127.0.0.1:9/db', '--field', 'is_groupchat', '--single-writer'], /--single-writer is about mam_server_user/],
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
