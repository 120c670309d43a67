/**
 * A store that cannot be reached is one line, what is wrong and what to do, for every backend:
 * nothing listening on a free loopback port (no server needed), and Cassandra's "no host" error
 * of an unknown --local-dc, whose message embeds the driver's inner error with its stack. Flags
 * over the limits are refused before any store is tried, for every backend.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { describeFailure } from '../../cli/options.js';
import { runCliBounded } from '../support/bounded-cli.js';

const CHILD_TIMEOUT_MS = 60_000;

let dir: string;
let port: number;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mim-connect-errors-'));
  port = await freeLoopbackPort();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The failure line: stderr's only `mim-sender-jid` line, no stack or inspected object anywhere. */
function assertOneLine(stderr: string, expected: RegExp): void {
  const lines = stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('migrate: ') && !l.startsWith('verify: '));
  assert.equal(lines.length, 1, `one line: ${stderr}`);
  assert.match(lines[0], expected);
  assert.doesNotMatch(stderr, /^\s+at |errno:|\{$/m);
}

function storeAddresses(): Record<string, string[]> {
  return {
    postgres: ['--url', `postgres://mim@127.0.0.1:${port}/mim`],
    mysql: ['--url', `mysql://mim@127.0.0.1:${port}/mim`],
    mssql: ['--url', `mssql://mim:x@127.0.0.1:${port}/mim`],
    elasticsearch: ['--url', `http://127.0.0.1:${port}`],
    riak: ['--url', `http://127.0.0.1:${port}`],
    cassandra: ['--contact-points', `127.0.0.1:${port}`],
  };
}

test('nothing listening: one line naming the address and what to check, for every backend, migrate and verify', async () => {
  for (const [kind, flags] of Object.entries(storeAddresses())) {
    const expected =
      kind === 'cassandra'
        ? new RegExp(
            `failed: no Cassandra node could be used: 127\\.0\\.0\\.1:${port}: nothing is listening there \\(connection refused\\); check --contact-points`,
          )
        : new RegExp(`failed: cannot connect to 127\\.0\\.0\\.1:${port}: nothing is listening there \\(connection refused\\); check --url`);
    const migrate = await runCliBounded(['migrate', kind, ...flags, '--max-retries', '0', '--report', join(dir, `${kind}.jsonl`)], CHILD_TIMEOUT_MS);
    assert.equal(migrate.status, 1, `${kind}: ${migrate.stderr}`);
    assertOneLine(migrate.stderr, expected);
    const verify = await runCliBounded(['verify', kind, ...flags], CHILD_TIMEOUT_MS);
    assert.equal(verify.status, 1, `${kind}: ${verify.stderr}`);
    assertOneLine(verify.stderr, expected);
  }
});

test("Cassandra's unknown --local-dc (the driver's own errors): one line naming the data centres there are", () => {
  const inner = new cassandra.errors.ArgumentError("localDataCenter was configured as 'dc-x', but only found hosts in data centers: [datacenter1]");
  const error = new cassandra.errors.NoHostAvailableError({ '127.0.0.1:9042': inner });
  assert.match(error.message, /\n\s+at /, 'the driver embeds the inner stack in its message');
  const line = describeFailure(error);
  assert.equal(line.split('\n').length, 1, line);
  assert.equal(
    line,
    'no Cassandra node could be used: 127.0.0.1:9042: --local-dc names no data centre of this cluster (it has: datacenter1); give --local-dc one of those data centres',
  );
});

test('flags over the limits are bad usage (exit 2) before the store is reached, for every backend, --apply-schema or not', async () => {
  // Nothing listens at the address: a refusal that came after trying the store would say so (exit 1).
  const refused: [string[], RegExp][] = [
    [['--batch-size', '20000'], /--batch-size must be an integer from 1 to 10000, got 20000/],
    [['--concurrency', '65'], /--concurrency must be an integer from 1 to 64, got 65/],
    [['--shard', '0/65', '--apply-schema'], /at most (64|16) shards/],
    [['--max-rate', '0'], /--max-rate must be a positive number/],
  ];
  for (const [kind, address] of Object.entries(storeAddresses())) {
    for (const [flags, message] of refused) {
      // Riak's --apply-schema takes the search schema's file.
      const args = kind === 'riak' ? flags.flatMap((f) => (f === '--apply-schema' ? [f, join(dir, 'schema.xml')] : [f])) : flags;
      const run = await runCliBounded(['migrate', kind, ...address, ...args, '--report', join(dir, `${kind}-usage.jsonl`)], CHILD_TIMEOUT_MS);
      assert.equal(run.status, 2, `${kind} ${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, kind);
      assert.doesNotMatch(run.stderr, /cannot connect|no Cassandra node/, `${kind} ${flags.join(' ')}: refused before connecting`);
    }
  }
});
