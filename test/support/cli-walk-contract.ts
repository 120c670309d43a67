/**
 * The shared pipeline's promises as an operator meets them, through the real `migrate` command on
 * a backend's own store: run again after `--limit N`, each run walks N more records until the end
 * (never stuck behind partitions it already finished); a dry run, `--reset` or not, leaves the real
 * run's report, its checkpoints and the store as they were. Each backend's suite calls these on its
 * own server, because what breaks them is how a backend cuts partitions and keeps cursors.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startMigrateProcess } from './migrate-process.js';

export interface CliWalk {
  /** `migrate` arguments: the kind and how to reach the store, plus walk flags (batch size, concurrency). */
  readonly args: readonly string[];
  /** The report file the real runs keep (always given: the default would land in the checkout). */
  readonly report: string;
}

interface RunOutcome {
  readonly records: number;
  readonly reachedEnd: boolean;
  readonly stdout: string;
}

async function migrateOnce(walk: CliWalk, extra: readonly string[]): Promise<RunOutcome> {
  const { status, stdout, stderr } = await startMigrateProcess([...walk.args, '--report', walk.report, ...extra]).done;
  assert.equal(status, 0, `migrate ${extra.join(' ')}: exit ${status}\n${stderr}\n${stdout}`);
  const records = /^ {2}records +([\d,]+)$/m.exec(stdout);
  assert.ok(records, `a summary with its records line:\n${stdout}`);
  return { records: Number(records[1].replaceAll(',', '')), reachedEnd: /done \(end reached\)/.test(stdout), stdout };
}

/**
 * `migrate ... --limit N` again and again: every run that does not reach the end walks exactly N
 * records, the last walks what is left, and together they walk `total` (the records still without
 * their write). Returns the number of runs.
 */
export async function limitRunsReachTheEnd(walk: CliWalk, limit: number, total: number): Promise<number> {
  let walked = 0;
  const maxRuns = Math.ceil(total / limit) + 1;
  for (let run = 1; run <= maxRuns; run++) {
    const outcome = await migrateOnce(walk, ['--limit', String(limit)]);
    if (outcome.reachedEnd) {
      assert.equal(walked + outcome.records, total, `run ${run} reached the end: the runs walked every record once`);
      assert.match(outcome.stdout, /accounted for: every record written or reported|not counted/);
      return run;
    }
    assert.equal(outcome.records, Math.min(limit, total - walked), `run ${run} of --limit ${limit} walks min(limit, what is left)`);
    walked += outcome.records;
  }
  return assert.fail(`not at the end after ${maxRuns} runs of --limit ${limit} (${walked} of ${total} records walked)`);
}

/**
 * After a real run stopped at `--limit` with lines in its report: `--dry-run --reset` and
 * `--dry-run` (given the same `--report`) leave the report's bytes and the store's state (what
 * `snapshot` reads: written values and checkpoints) as they were; then the real run resumes and
 * reaches the end. Returns the last run's summary.
 */
export async function dryRunsLeaveTheRealRun(walk: CliWalk, limit: number, snapshot: () => Promise<unknown>): Promise<string> {
  const first = await migrateOnce(walk, ['--limit', String(limit)]);
  assert.equal(first.reachedEnd, false, 'the first run stops at its limit');
  const report = readFileSync(walk.report);
  assert.ok(report.length > 0, 'the first run reported records (the archive needs some that cannot be decoded early on)');
  const state = await snapshot();
  for (const flags of [['--dry-run', '--reset', '--limit', String(limit)], ['--dry-run']]) {
    await migrateOnce(walk, flags);
    assert.deepEqual(readFileSync(walk.report), report, `migrate ${flags.join(' ')} left the real report as it was`);
    assert.deepEqual(await snapshot(), state, `migrate ${flags.join(' ')} left the store and its checkpoints as they were`);
  }
  const rest = await migrateOnce(walk, []);
  assert.equal(rest.reachedEnd, true, rest.stdout);
  assert.ok(readFileSync(walk.report).subarray(0, report.length).equals(report), 'the real run appends to its own report');
  return rest.stdout;
}
