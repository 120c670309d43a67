/**
 * `mim-sender-jid demo` from a checkout inside a directory only its owner can enter (mode 0700, as
 * /root is), the way a user runs the README's `npm install && npm run demo`. As root (CI) the
 * embedded PostgreSQL runs as the `postgres` user, who cannot reach the checkout's node_modules:
 * the demo must still work, and clean up after itself. The copy has no dist/test, so this also
 * proves the CLI never needs test code at run time.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { CLI_LAUNCHER } from '../support/cli-process.js';

const CHECKOUT = dirname(dirname(CLI_LAUNCHER));
const ROWS = 3000;
/** A safety net so a hung demo cannot hang CI; not a performance assertion. */
const RUN_LIMIT_MS = 120_000;
const isRoot = process.getuid?.() === 0;

let privateHome: string;
let clone: string;

/** Hard links when the temp directory is on the checkout's file system (fast), a real copy otherwise. */
function copyTree(from: string, to: string): void {
  for (const flags of ['-al', '-a']) {
    if (spawnSync('cp', [flags, from, to]).status === 0) return;
    rmSync(to, { recursive: true, force: true });
  }
  throw new Error(`cannot copy ${from} to ${to}`);
}

before(() => {
  privateHome = mkdtempSync(join(tmpdir(), 'demo-home-'));
  chmodSync(privateHome, 0o700);
  clone = join(privateHome, 'checkout');
  mkdirSync(join(clone, 'dist'), { recursive: true });
  for (const part of ['bin', 'node_modules', 'package.json']) copyTree(join(CHECKOUT, part), join(clone, part));
  for (const part of readdirSync(join(CHECKOUT, 'dist'))) {
    if (part !== 'test') copyTree(join(CHECKOUT, 'dist', part), join(clone, 'dist', part));
  }
});

test.after(() => {
  if (privateHome !== undefined) rmSync(privateHome, { recursive: true, force: true });
});

interface DemoRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the copied checkout's `node bin/mim-sender-jid.js demo` from inside it, with the given TMPDIR. */
function runDemo(tmp: string, args: string[]): Promise<DemoRun> {
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', 'demo', ...args], { cwd: clone, env: { ...process.env, TMPDIR: tmp } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo did not finish in ${RUN_LIMIT_MS} ms:\n${stderr}`));
    }, RUN_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh TMPDIR for one run, so we can see that the demo leaves nothing behind in it. */
function freshTmp(mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'demo-tmp-'));
  chmodSync(dir, mode);
  return dir;
}

test('the demo runs from a checkout in a 0700 directory, needs no dist/test, and removes its database', async (t) => {
  assert.equal(statSync(privateHome).mode & 0o777, 0o700);
  assert.equal(existsSync(join(clone, 'dist', 'test')), false);
  const tmp = freshTmp(0o755);
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const report = join(privateHome, 'report.jsonl');

  const run = await runDemo(tmp, ['--rows', String(ROWS), '--report', report]);

  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /^demo: all rows accounted for: demo OK$/m);
  assert.match(run.stdout, /^verify: [1-9]\d* random migrated rows re-decoded, 0 mismatches/m);
  const undecodable = Number(/(\d+) rows that cannot be migrated/.exec(run.stderr)?.[1]);
  const reported = readFileSync(report, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  assert.equal(reported.length, undecodable, 'one report line per row the demo made undecodable');
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  assert.deepEqual(readdirSync(tmp), [], 'the embedded PostgreSQL and its staged files are gone');
});

test(
  'as root, a TMPDIR the postgres user cannot enter fails with one line saying what to do, and leaves nothing behind',
  { skip: isRoot ? false : 'only root hands the server to the postgres user' },
  async (t) => {
    const tmp = freshTmp(0o700);
    t.after(() => rmSync(tmp, { recursive: true, force: true }));

    const run = await runDemo(tmp, ['--rows', '10']);

    assert.equal(run.code, 1, run.stderr);
    const lines = run.stderr.trimEnd().split('\n');
    assert.match(lines.at(-1) ?? '', /^demo: failed: the 'postgres' user cannot run .*initdb: .*set TMPDIR to a directory every user can enter/);
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
    assert.deepEqual(readdirSync(tmp), []);
  },
);
