/**
 * A store that cannot be reached is one line, what is wrong and what to do, for every backend:
 * nothing listening on a free loopback port (no server needed), and Cassandra's "no host" error
 * of an unknown --local-dc, whose message embeds the driver's inner error with its stack.
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

test('nothing listening: one line naming the address and what to check, for every backend, migrate and verify', async () => {
  const where: Record<string, string[]> = {
    postgres: ['--url', `postgres://mim@127.0.0.1:${port}/mim`],
    mysql: ['--url', `mysql://mim@127.0.0.1:${port}/mim`],
    mssql: ['--url', `mssql://mim:x@127.0.0.1:${port}/mim`],
    elasticsearch: ['--url', `http://127.0.0.1:${port}`],
    riak: ['--url', `http://127.0.0.1:${port}`],
    cassandra: ['--contact-points', `127.0.0.1:${port}`],
  };
  for (const [kind, flags] of Object.entries(where)) {
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
