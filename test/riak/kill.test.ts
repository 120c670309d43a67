/**
 * kill -9 during a 50,000-object Riak backfill: the CLI process is killed five times, each time
 * after the double has seen a seeded number of new updates, then run again until it ends; the
 * archive must then be exactly what one uninterrupted run makes of the same data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { riakArchive, type ArchiveObject } from '../support/riak-archive.js';
import type { RiakDouble } from '../support/riak-double.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { openBackend, startLoadedDouble, tempFiles, type TempFiles } from './fixture.js';

const SEED = Number(process.env.RIAK_TEST_SEED ?? 5150);
console.log(`riak kill -9 suite: seed ${SEED} (set RIAK_TEST_SEED to replay)`);

const OBJECTS = 50_000;
const KILLS = 5;
/** Bounds of every wait: the test fails rather than hangs. */
const WAIT_FOR_PROGRESS_MS = 180_000;
const MAX_FINISHING_RUNS = 4;

async function waitFor(condition: () => boolean, deadlineMs: number, what: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (exited()) throw new Error(`the process ended before ${what}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function stateOf(double: RiakDouble): Map<string, string> {
  const state = new Map<string, string>();
  for (const { bucket, key, registers } of double.entries()) {
    state.set(`${bucket} ${key}`, `${registers.mam_type ?? '-'} ${registers.msg_owner_jid ?? '-'}`);
  }
  return state;
}

describe('riak: kill -9 during a 50,000-object backfill', () => {
  let objects: ArchiveObject[];
  let interrupted: RiakDouble;
  let reference: RiakDouble;
  let files: TempFiles;

  before(async () => {
    objects = riakArchive(OBJECTS, SEED);
    const archive = { objects, expected: [] };
    interrupted = await startLoadedDouble(archive, { seed: SEED });
    reference = await startLoadedDouble(archive, { seed: SEED + 1 });
    files = tempFiles();
  });
  after(async () => {
    await interrupted?.stop();
    await reference?.stop();
    files?.remove();
  });

  it('ends exactly as an uninterrupted run, after five kills that each followed observed progress', async () => {
    const backend = await openBackend({ url: reference.url });
    try {
      const summary = await runMigration({ backend, openStream: openInProcessStream, report: new MemoryReport(), batchSize: 1000 });
      assert.equal(summary.reachedEnd, true);
    } finally {
      await backend.close();
    }
    const expected = stateOf(reference);
    const written = [...expected.values()].filter((v) => !v.startsWith('-')).length;
    assert.ok(written > OBJECTS * 0.8, `${written} objects written by the uninterrupted run`);

    const rand = seededRandom(SEED);
    const args = [
      'riak',
      '--url',
      interrupted.url,
      '--report',
      files.write('report.jsonl', ''),
      '--batch-size',
      '1000',
      '--workers',
      '1',
      '--request-concurrency',
      '32',
      '--progress-interval',
      '1',
    ];
    for (let kill = 1; kill <= KILLS; kill++) {
      const before = interrupted.stats.updates;
      const wanted = before + 500 + Math.floor(rand() * 2500);
      const run = startMigrateProcess(args);
      let exited = false;
      void run.done.then(() => (exited = true));
      await waitFor(
        () => interrupted.stats.updates >= wanted,
        WAIT_FOR_PROGRESS_MS,
        `${wanted - before} updates (kill ${kill})`,
        () => exited,
      );
      run.kill9();
      const { status } = await run.done;
      assert.equal(status, 'SIGKILL', `kill ${kill}`);
      assert.ok(interrupted.stats.updates > before, `kill ${kill} came after progress`);
    }
    assert.ok(interrupted.stats.updates < written, 'the kills interrupted the work before its end');

    let finished = false;
    for (let attempt = 1; attempt <= MAX_FINISHING_RUNS && !finished; attempt++) {
      const { status, stderr } = await startMigrateProcess(args).done;
      assert.ok(status === 0 || status === 1, `run ${attempt}: ${status}\n${stderr.slice(-2000)}`);
      finished = status === 0;
    }
    assert.ok(finished, 'a run after the kills reached the end');

    const actual = stateOf(interrupted);
    assert.equal(actual.size, expected.size);
    let differences = 0;
    for (const [name, value] of expected) if (actual.get(name) !== value) differences++;
    assert.equal(differences, 0, 'every object as after the uninterrupted run');
    // "A run after the end changes nothing" is migrate.test.ts's: one more full pass here costs minutes.
  });
});
