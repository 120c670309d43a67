/**
 * `migrate` and `verify` through the real CLI, on the Riak double (the faults tested here are in
 * the shared pipeline and CLI, not in a store), with the default report paths in a directory of
 * the test's own:
 * - a dry run touches nothing of the real run: the real report keeps its bytes through
 *   `--dry-run --reset` and `--dry-run`, also when given the real report's path with `--report`,
 *   and a dry run's report is a file of its own (checkpoints:
 *   the memory backend's test of the pipeline);
 * - `verify` with nothing to check does not pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { defaultReportPath } from '../../clients/pipeline/report-keys.js';
import { CLI_LAUNCHER } from '../support/cli-process.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { riakArchive } from '../support/riak-archive.js';
import type { RiakDouble } from '../support/riak-double.js';
import { stopAtExit } from '../support/stop-at-exit.js';
import { startLoadedDouble } from '../riak/fixture.js';

const SEED = fuzzSeed('PIPELINE_DRY_RUN_SEED', 'dry run report');
const RUN_TIMEOUT_MS = 120_000;

let double: RiakDouble;
let cwd: string;

before(async () => {
  double = await startLoadedDouble({ objects: riakArchive(300, SEED), expected: [] }, { seed: SEED });
  cwd = mkdtempSync(join(tmpdir(), 'dry-run-report-'));
});
after(async () => {
  await double?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

function migrate(...flags: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return cli('migrate', '--batch-size', '50', ...flags);
}

function cli(command: string, ...flags: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_LAUNCHER, command, 'riak', '--url', double.url, '--workers', '1', ...flags], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forget = stopAtExit(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`migrate ${flags.join(' ')} did not finish in ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      forget();
      resolve({ code, stdout, stderr });
    });
  });
}

test('verify with nothing migrated yet: nothing to check is exit 3, not a pass', async () => {
  const run = await cli('verify', '--sample', '10');
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /nothing to check: no record has its write yet; run migrate first or use --complete/);
});

test('--dry-run and --dry-run --reset leave the real report as it was; the dry run reports to its own file', async () => {
  const shard = { index: 0, count: 1 };
  const real = join(cwd, defaultReportPath('riak', shard));
  const dry = join(cwd, defaultReportPath('riak', shard, true));
  const first = await migrate('--limit', '150');
  assert.equal(first.code, 0, first.stderr);
  const kept = readFileSync(real);
  assert.ok(kept.length > 0, 'the real run reported records');

  for (const flags of [['--dry-run', '--reset'], ['--dry-run']]) {
    const run = await migrate(...flags);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readFileSync(real), kept, `migrate ${flags.join(' ')} left the real report as it was`);
    assert.ok(existsSync(dry), 'the dry run has a report of its own');
    assert.ok(run.stdout.includes(defaultReportPath('riak', shard, true)), run.stdout);
  }
  const rest = await migrate();
  assert.equal(rest.code, 0, rest.stderr);
  assert.ok(readFileSync(real).subarray(0, kept.length).equals(kept), 'the real run appends to its own report');
});

test("--dry-run given the real run's --report path writes beside it: the real report keeps its bytes", async () => {
  const real = join(cwd, 'named-report.jsonl');
  const first = await migrate('--reset', '--report', real, '--limit', '150');
  assert.equal(first.code, 0, first.stderr);
  const kept = readFileSync(real);
  assert.ok(kept.length > 0, 'the real run reported records');
  for (const flags of [['--dry-run', '--reset'], ['--dry-run']]) {
    const run = await migrate(...flags, '--report', real);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readFileSync(real), kept, `migrate ${flags.join(' ')} --report ${real} left that report as it was`);
    assert.ok(run.stdout.includes(join(cwd, 'named-report-dry-run.jsonl')), run.stdout);
    assert.ok(readFileSync(join(cwd, 'named-report-dry-run.jsonl')).length > 0, 'the dry run reported into its own file');
  }
});

test('verify after the migration: exit 0', async () => {
  const run = await cli('verify', '--sample', '10');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /10 records checked, 10 match, 0 mismatches/);
});
