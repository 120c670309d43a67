/**
 * `--url` of every backend that takes one, checked before anything connects: a URL the parser
 * refuses is bad usage (exit 2) and the message never holds the password (a password with / # ?
 * or % is the usual cause); a URL of another backend's scheme is refused with the scheme
 * expected. No server: reaching one would fail with exit 1 instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCliBounded } from '../support/bounded-cli.js';

const CHILD_TIMEOUT_MS = 30_000;
/** A password no message may hold, whatever character makes its URL unparseable. */
const SECRET = 'Zq7Secret';
const PASSWORDS = [`${SECRET}/x`, `${SECRET}#x`, `${SECRET}?x`, `${SECRET}%zz`, `12/${SECRET}`];

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mim-url-flags-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `migrate` (with a report path of its own) and `verify` for one backend and URL. */
async function bothCommands(kind: string, url: string) {
  return [
    await runCliBounded(['migrate', kind, '--url', url, '--report', join(dir, `${kind}.jsonl`)], CHILD_TIMEOUT_MS),
    await runCliBounded(['verify', kind, '--url', url], CHILD_TIMEOUT_MS),
  ];
}

const SQL: Record<string, string> = { postgres: 'postgres', mysql: 'mysql', mssql: 'mssql' };

for (const kind of ['postgres', 'mysql', 'mssql']) {
  test(`${kind}: a --url the parser refuses is exit 2 and never printed with its password`, async () => {
    for (const password of PASSWORDS) {
      for (const run of await bothCommands(kind, `${SQL[kind]}://mim:${password}@127.0.0.1:1/mim`)) {
        assert.equal(run.status, 2, `${password}: ${run.stderr}`);
        assert.ok(!run.stderr.includes(SECRET) && !run.stdout.includes(SECRET), `${password}: the password was echoed: ${run.stderr}`);
        assert.match(run.stderr, /--url .*(not a URL|not read as user and password|not an escape).*percent-encoded/);
        assert.match(run.stderr, /\*\*\*@127\.0\.0\.1:1/, 'the URL is shown with its credentials hidden');
      }
    }
  });

  test(`${kind}: a --url of another scheme is refused before connecting, naming the scheme expected`, async () => {
    for (const other of ['http', ...Object.values(SQL).filter((s) => s !== SQL[kind])]) {
      for (const run of await bothCommands(kind, `${other}://mim:${SECRET}@127.0.0.1:1/mim`)) {
        assert.equal(run.status, 2, `${other}: ${run.stderr}`);
        assert.ok(!run.stderr.includes(SECRET));
        assert.match(run.stderr, new RegExp(`--url has scheme ${other}://; this backend needs ${SQL[kind]}://`));
      }
    }
    const [noScheme] = await bothCommands(kind, `127.0.0.1:1/mim`);
    assert.equal(noScheme.status, 2, noScheme.stderr);
    assert.match(noScheme.stderr, new RegExp(`--url must start with ${SQL[kind]}://`));
  });
}

for (const kind of ['elasticsearch', 'riak']) {
  test(`${kind}: credentials in --url, parseable or not, are refused without being printed`, async () => {
    for (const password of [...PASSWORDS, SECRET]) {
      for (const url of [`http://admin:${password}@127.0.0.1:1`, `http://127.0.0.1:2,http://admin:${password}@127.0.0.1:1`]) {
        for (const run of await bothCommands(kind, url)) {
          assert.equal(run.status, 2, `${url}: ${run.stderr}`);
          assert.ok(!run.stderr.includes(SECRET), `the password was echoed: ${run.stderr}`);
          assert.match(run.stderr, /must not hold a user or password.*--username/);
        }
      }
    }
  });

  test(`${kind}: a --url of another scheme is refused before connecting`, async () => {
    for (const run of await bothCommands(kind, 'http://127.0.0.1:1,postgres://127.0.0.1:1/mim')) {
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /--url \(node 2\) has scheme postgres:\/\/; this backend needs http:\/\/ or https:\/\//);
    }
    for (const run of await bothCommands(kind, 'http://[::1')) {
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /--url http:\/\/\[::1 is not a URL/);
    }
  });
}
