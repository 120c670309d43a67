/**
 * `migrate --report PATH`: a path that cannot be the report is refused as bad usage (exit 2)
 * before the store is touched, without reading from it (`/dev/full` reads forever, a FIFO without
 * a reader blocks); the lines of an existing report are counted a chunk at a time, whatever its
 * size. No database: the URL points at a port where nothing listens, so reaching the store would
 * fail differently (exit 1, connection refused).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { JsonlReport } from '../../clients/pipeline/report.js';
import { runCliBounded } from '../support/bounded-cli.js';

/** Long enough for a start-up on a loaded machine; a hang ends here as SIGKILL, never a pass. */
const CHILD_TIMEOUT_MS = 30_000;

let dir: string;
let deadUrl: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mim-report-file-'));
  deadUrl = `postgres://nobody@127.0.0.1:${await freeLoopbackPort()}/mim`;
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function migrateWithReport(report: string, ...extra: string[]) {
  return runCliBounded(['migrate', 'postgres', '--url', deadUrl, '--report', report, ...extra], CHILD_TIMEOUT_MS);
}

function assertRefusedBeforeTheStore(run: { status: number | string; stderr: string }, what: RegExp): void {
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, what);
  assert.doesNotMatch(run.stderr, /ECONNREFUSED|failed:/, 'the store was never reached');
  assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
}

test('a FIFO as --report: refused at once (exit 2), never opened for a reader that does not come', async () => {
  const fifo = join(dir, 'report.fifo');
  execFileSync('mkfifo', [fifo]);
  assertRefusedBeforeTheStore(await migrateWithReport(fifo), /--report .*report\.fifo is a pipe: give the path of a regular file/);
  assertRefusedBeforeTheStore(await migrateWithReport(fifo, '--reset'), /is a pipe/);
});

test('/dev/full and /dev/stdout as --report: refused at once (exit 2), nothing read from them', async () => {
  assertRefusedBeforeTheStore(await migrateWithReport('/dev/full', '--dry-run'), /--report \/dev\/full is a device/);
  // The child's stdout is a pipe (a socket pair, as Node makes it) to this test.
  assertRefusedBeforeTheStore(await migrateWithReport('/dev/stdout'), /--report \/dev\/stdout is a (pipe|socket)/);
});

test('/dev/null as --report: accepted as "keep no report" (the store is reached: connection refused, exit 1)', async () => {
  for (const extra of [[], ['--reset']]) {
    const run = await migrateWithReport('/dev/null', ...extra);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /failed:/);
  }
});

test('a directory, or a path that cannot be created: refused (exit 2) before the store', async () => {
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  assertRefusedBeforeTheStore(await migrateWithReport(sub), /is a directory/);
  // A file where a directory should be: ENOTDIR, whoever runs the test (root included).
  const file = join(dir, 'plain-file');
  writeFileSync(file, '');
  assertRefusedBeforeTheStore(await migrateWithReport(join(file, 'report.jsonl')), /cannot create or open it/);
});

test('a path that is fine: the store is reached (connection refused, exit 1), the existing report untouched', async () => {
  const report = join(dir, 'kept.jsonl');
  const line = '{"room_id":"1","id":"1","reason":"malformed","detail":"x"}\n';
  writeFileSync(report, line);
  const run = await migrateWithReport(report);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /failed:/);
  assert.equal(readFileSync(report, 'utf8'), line);
});

test(
  'an existing report over 2 GiB is counted a chunk at a time: a 3 GiB sparse file of zeros, then newlines placed around chunk boundaries',
  { timeout: 120_000 },
  () => {
    const path = join(dir, 'sparse.jsonl');
    const fd = openSync(path, 'w');
    const size = 3 * 2 ** 30;
    try {
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
    const empty = new JsonlReport(path, false);
    empty.close();
    assert.equal(empty.linesBefore, 0);

    const MiB = 2 ** 20;
    const fd2 = openSync(path, 'r+');
    try {
      for (const at of [0, MiB - 1, MiB, 5 * MiB + 17, 2 ** 31 - 1, 2 ** 31, size - 1]) writeSync(fd2, '\n', at);
    } finally {
      closeSync(fd2);
    }
    const report = new JsonlReport(path, false);
    try {
      assert.equal(report.linesBefore, 7);
      report.append([{ key: 1, fields: { id: '1' }, reason: 'malformed', detail: 'x' }]);
    } finally {
      report.close();
    }
    const again = new JsonlReport(path, false);
    again.close();
    assert.equal(again.linesBefore, 8, 'the appended line is at the end of the file');
  },
);
