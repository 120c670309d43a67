/**
 * The commands themselves on the Riak double: `verify riak --complete` after a whole `migrate
 * riak` is clean, and finds an object the walk left behind (its registers removed again: not
 * written, not in the report), with exit 3 and the object named; repeated `migrate riak --limit`
 * runs reach the end of every bucket.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { RiakDouble } from '../support/riak-double.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { assertArchive, makeArchive, startLoadedDouble, tempFiles, type Archive, type TempFiles } from './fixture.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SEED = Number(process.env.RIAK_TEST_SEED ?? 20261207);
console.log(`riak cli suite: seed ${SEED} (set RIAK_TEST_SEED to replay)`);

function verify(args: readonly string[]): Promise<{ status: number | string; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', 'verify', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? signal ?? 'unknown', stdout, stderr });
    }),
  );
}

describe('riak commands: verify --complete, repeated --limit', () => {
  let archive: Archive;
  let files: TempFiles;
  const doubles: RiakDouble[] = [];
  before(async () => {
    archive = await makeArchive(300, SEED);
    files = tempFiles();
  });
  after(async () => {
    await Promise.all(doubles.map((d) => d.stop()));
    files?.remove();
  });

  it('verify riak --complete: clean after migrate, then finds an object left unwritten and unreported', { timeout: 240_000 }, async () => {
    const double = await startLoadedDouble(archive, { seed: SEED });
    doubles.push(double);
    const report = join(files.dir, 'complete.jsonl');
    const migrated = await startMigrateProcess(['riak', '--url', double.url, '--report', report]).done;
    assert.equal(migrated.status, 0, migrated.stderr);
    const clean = await verify(['riak', '--url', double.url, '--complete', '--report', report]);
    assert.equal(clean.status, 0, clean.stderr);
    const { written } = assertArchive(double, archive);
    assert.ok(written > 0);
    const victim = archive.objects.find((o, i) => 'write' in archive.expected[i])!;
    double.removeRegisters(victim.bucket, victim.key, ['mam_type', 'msg_owner_jid']);
    const found = await verify(['riak', '--url', double.url, '--complete', '--report', report]);
    assert.equal(found.status, 3, found.stderr);
    assert.ok(found.stdout.includes(JSON.stringify(victim.key)), found.stdout);
  });

  it('migrate riak --limit N again and again reaches the end of every bucket', { timeout: 240_000 }, async () => {
    const double = await startLoadedDouble(archive, { seed: SEED });
    doubles.push(double);
    assert.ok(new Set(archive.objects.map((o) => o.bucket)).size >= 5, 'several buckets');
    const report = join(files.dir, 'limit.jsonl');
    let done = false;
    for (let run = 0; run < 12 && !done; run++) {
      const { status, stdout, stderr } = await startMigrateProcess(['riak', '--url', double.url, '--report', report, '--limit', '40', '--batch-size', '20'])
        .done;
      assert.equal(status, 0, stderr);
      done = /end reached/.test(stdout + stderr);
    }
    assert.ok(done, 'a run reached the end');
    assertArchive(double, archive);
  });
});
