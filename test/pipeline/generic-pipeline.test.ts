/**
 * The pipeline on a backend of the test suite's own (memory-backend.ts): many partitions, a write
 * on `-2`, after-write and no checkpoints, kill -9. Payloads and their answers come from a real
 * Erlang VM; every record's end state is computed from Erlang's answer, never hard-coded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JsonlReport, MemoryReport, type ReportSink } from '../../clients/pipeline/report.js';
import { formatSummary, migrationExitStatus, runMigration, type MigrationOptions, type MigrationSummary } from '../../clients/pipeline/run-migration.js';
import {
  completeExitStatus,
  formatCompleteSummary,
  runVerify,
  runVerifyComplete,
  sampleOutcome,
  type CompleteFinding,
  type CompleteVerifyOptions,
} from '../../clients/pipeline/run-verify.js';
import type { CheckpointMode } from '../../clients/pipeline/types.js';
import { erlangCases, erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { stopAtExit } from '../support/stop-at-exit.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import fc from 'fast-check';
import { MemoryBackend, readWrites, writeArchive } from './memory-backend.js';

const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
process.stdout.write(`# generic pipeline: seed ${SEED} (TEST_SEED=${SEED} replays it)\n`);
const PARTITIONS = 7;
const FAST_BACKOFF = { baseMs: 20, maxMs: 100 };

/** What the record must end with, from Erlang's answer: the store's rule for each answer. */
function expectedValue(record: PayloadRecord, partition: string): string | null {
  const e = record.expected;
  if ('code' in e) return e.code === '-2' ? `pm:${partition}` : null;
  const at = e.jid.indexOf('@');
  return at > 0 && at < e.jid.length - 1 ? `muc:${e.jid}` : null;
}

interface Fixture {
  dir: string;
  expected: Map<string, string | null>;
}

let records: PayloadRecord[];
const dirs: string[] = [];

function fixture(recordsPerPartition: number): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'memory-backend-'));
  dirs.push(dir);
  const rand = seededRandom(SEED);
  const expected = new Map<string, string | null>();
  const partitions = Array.from({ length: PARTITIONS }, (_, n) => {
    const name = `p${n}`;
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < recordsPerPartition; i++) {
      const record = records[Math.floor(rand() * records.length)];
      payloads.push(record.payload);
      expected.set(`${name}:${i}`, expectedValue(record, name));
    }
    return { name, payloads };
  });
  writeArchive(dir, partitions);
  return { dir, expected };
}

function assertEndState(f: Fixture, actual = readWrites(f.dir)): void {
  for (const [key, value] of f.expected) assert.equal(actual.get(key) ?? null, value, `record ${key}`);
  assert.equal(actual.size, [...f.expected.values()].filter((v) => v !== null).length, 'nothing else written');
}

/** This run's lines in memory, and every run's in the fixture's report file (as `migrate` keeps it). */
async function migrate(f: Fixture, mode: CheckpointMode, extra: Partial<MigrationOptions> = {}, setup?: (b: MemoryBackend) => void) {
  const backend = new MemoryBackend(f.dir, mode);
  setup?.(backend);
  const report = new MemoryReport();
  const reportPath = join(f.dir, 'report.jsonl');
  const file = new JsonlReport(reportPath, false);
  const both: ReportSink = {
    append(rows) {
      report.append(rows);
      file.append(rows);
    },
    close() {},
  };
  try {
    const summary = await runMigration({
      backend,
      openStream: openInProcessStream,
      report: both,
      reportPath,
      batchSize: 25,
      concurrency: 4,
      backoff: FAST_BACKOFF,
      ...extra,
    });
    return { summary, report, backend };
  } finally {
    file.close();
  }
}

before(() => {
  records = [...erlangCases(), ...erlangRandomMessages(300, SEED)];
  assert.ok(
    records.some((r) => 'code' in r.expected && r.expected.code === '-2'),
    'the corpus has -2 answers',
  );
  assert.ok(
    records.some((r) => 'code' in r.expected && r.expected.code === '-1'),
    'the corpus has -1 answers',
  );
});
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

for (const mode of ['in-write', 'after-write', 'none'] as const) {
  describe(`checkpoints ${mode}`, () => {
    test('every partition walked, several at once; -2 written as pm; failures reported once with the key fields', async () => {
      const f = fixture(120);
      const { summary, report, backend } = await migrate(f, mode);
      assertEndState(f);
      assert.equal(summary.reachedEnd, true);
      assert.equal(summary.partitions, PARTITIONS);
      assert.equal(summary.records, f.expected.size);
      assert.ok(backend.maxPartitionsReadingAtOnce > 1, `partitions read at once: ${backend.maxPartitionsReadingAtOnce}`);
      const failed = [...f.expected]
        .filter(([, v]) => v === null)
        .map(([k]) => k)
        .sort();
      assert.deepEqual(report.rows.map((r) => `${r.fields.partition}:${r.fields.index}`).sort(), failed);
      assert.ok(report.rows.every((r) => r.detail.length > 0));
      // One vocabulary: the summary's lines are named as its fields.
      const text = formatSummary(summary);
      for (const field of ['records', 'written', 'skipped', 'reported'] as const) {
        assert.match(text, new RegExp(`^ {2}${field} +${summary[field].toLocaleString('en-US')}\\b`, 'm'), `${field} in:\n${text}`);
      }
      assert.ok(summary.reported > 0 && Object.keys(summary.reportedByReason).every((reason) => text.includes(reason)));
      const verified = await runVerify({ backend, openStream: openInProcessStream, sample: 50 });
      assert.equal(verified.checked, 50);
      assert.deepEqual(verified.mismatches, []);
    });

    test('--limit then the rest: each record walked once, the end state of one run', async () => {
      const f = fixture(60);
      const first = await migrate(f, mode, { limit: 101 });
      assert.equal(first.summary.records, 101);
      assert.equal(first.summary.reachedEnd, false);
      const second = await migrate(f, mode);
      assert.equal(second.summary.reachedEnd, true);
      if (mode !== 'none') assert.ok(second.summary.resumedPartitions > 0, 'resumed from checkpoints');
      // Without checkpoints, failed records are read again (nothing marks them done), and passed
      // over as the report file already names them.
      assert.equal(first.summary.records + second.summary.records, f.expected.size);
      assert.equal(second.summary.reportedBefore, mode === 'none' ? first.report.rows.length : 0);
      assertEndState(f);
      const third = await migrate(f, mode);
      assert.equal(third.summary.written, 0, 'a run after the end writes nothing');
    });

    test('--shard 0/2 and 1/2 together cover every partition exactly once', async () => {
      const f = fixture(40);
      const [a, b] = await Promise.all([0, 1].map((index) => migrate(f, mode, { shard: { index, count: 2 } })));
      assert.equal(a.summary.partitions + b.summary.partitions, PARTITIONS);
      assert.equal(a.summary.records + b.summary.records, f.expected.size);
      assertEndState(f);
    });

    test('a transient write failure is retried from the last committed place', async () => {
      const f = fixture(50);
      const { summary, report } = await migrate(f, mode, {}, (b) => (b.failWriteBatch = 5));
      assert.equal(summary.retries, 1);
      assertEndState(f);
      // Records reported by the failed batch are decoded again by the retry, reported once, counted once.
      assert.equal(report.rows.length, [...f.expected.values()].filter((v) => v === null).length);
      assert.equal(summary.reported, report.rows.length);
      assertCountsExact(f, summary);
    });

    if (mode !== 'in-write') {
      // No transaction: what a failing write landed, and the next batch of its partition (written
      // while it failed), stay written; the retry's reads pass over them, so they are counted when
      // they land or never.
      test('a write failing after part of its batch landed, while the next batch lands: each record counted once', async () => {
        // Four batches a partition: the fifth write is a partition's second batch, with two after it.
        const f = fixture(100);
        const { summary } = await migrate(f, mode, {}, (b) => Object.assign(b, { failWriteBatch: 5, landBeforeFailing: 7 }));
        assert.equal(summary.retries, 1);
        assertEndState(f);
        assertCountsExact(f, summary);
      });
    }
  });
}

/** The summary counts every record once: each written one as written, each other as reported. */
function assertCountsExact(f: Fixture, summary: MigrationSummary): void {
  const writable = [...f.expected.values()].filter((v) => v !== null).length;
  assert.deepEqual(
    { records: summary.records, written: summary.written, skipped: summary.skipped, reported: summary.reported },
    { records: f.expected.size, written: writable, skipped: 0, reported: f.expected.size - writable },
  );
}

describe('kill -9', () => {
  const runner = fileURLToPath(new URL('./memory-backend-runner.js', import.meta.url));
  const run = (dir: string, mode: CheckpointMode) => {
    const child = spawn(process.execPath, [runner, dir, mode, '15'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const forget = stopAtExit(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) =>
      child.on('exit', (code, signal) => {
        forget();
        resolve({ code, signal, out });
      }),
    );
    return { child, done };
  };
  const size = (file: string): number => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };

  for (const mode of ['after-write', 'none'] as const) {
    test(`${mode}: killed five times after observed progress, re-run to the end, same state as an uninterrupted run`, async () => {
      const reference = fixture(700);
      const whole = await run(reference.dir, mode).done;
      assert.equal(whole.code, 0);
      assertEndState(reference);
      const f = fixture(700);
      // Progress is what the store kept: the file that grows after each batch.
      const progressFile = join(f.dir, mode === 'none' ? 'writes.jsonl' : 'checkpoints.jsonl');
      const rand = seededRandom(SEED + 1);
      let kills = 0;
      for (let attempt = 0; attempt < 30 && kills < 5; attempt++) {
        const before = size(progressFile);
        const { child, done } = run(f.dir, mode);
        const deadline = Date.now() + 60_000;
        while (size(progressFile) <= before && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, Math.floor(rand() * 50)));
        if (child.exitCode !== null) break; // finished before the kill: nothing left to interrupt
        child.kill('SIGKILL');
        const end = await done;
        assert.equal(end.signal, 'SIGKILL');
        assert.ok(size(progressFile) > before, 'killed after progress');
        kills++;
      }
      assert.equal(kills, 5, 'five kills landed mid-run');
      const last = await run(f.dir, mode).done;
      assert.equal(last.code, 0);
      const summary = JSON.parse(last.out) as { reachedEnd: boolean; accounting: unknown };
      assert.equal(summary.reachedEnd, true);
      // Records reported by the killed runs are in the report file, read back at the end.
      assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: 0 });
      assert.deepEqual(readWrites(f.dir), readWrites(reference.dir));
      assertEndState(f);
    });
  }
});

describe('end-of-run accounting', () => {
  const key = (fields: Record<string, string>): string => `${fields.partition}:${fields.index}`;

  for (const mode of ['in-write', 'after-write', 'none'] as const) {
    test(`${mode}: a clean walk says every record written or reported`, async () => {
      const f = fixture(30);
      const { summary } = await migrate(f, mode);
      assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: 0 });
      assert.equal(migrationExitStatus(summary), 0);
      assert.match(formatSummary(summary), /^ {2}accounted for: every record written or reported$/m);
    });

    test(`${mode}: a walk that passes over a record ends NOT done, exit 5, the key named; the next run walks again`, async () => {
      const f = fixture(30);
      const dropped = 'p3:17';
      const { summary, backend } = await migrate(f, mode, {}, (b) => (b.dropFromWalk = dropped));
      assert.equal(summary.reachedEnd, true);
      assert.deepEqual(summary.accounting, { kind: 'unaccounted', rechecked: true, count: 1, more: false, examples: [{ partition: 'p3', index: '17' }] });
      assert.equal(migrationExitStatus(summary), 5);
      const text = formatSummary(summary);
      assert.match(text, /NOT done/);
      assert.match(text, /accounted for: NO: 1 record neither written nor reported after walking the shard twice/);
      assert.ok(text.includes('{"partition":"p3","index":"17"}'), text);
      for (const p of await backend.partitions({ index: 0, count: 1 })) assert.equal(await backend.readCheckpoint(p), null, `checkpoint of ${p.name} deleted`);
      // The walk mended: the next run walks every partition again and accounts for everything.
      const next = await migrate(f, mode);
      assert.equal(next.summary.resumedPartitions, 0);
      assert.equal(next.summary.accounting?.kind, 'complete');
      assertEndState(f);
    });

    test(`${mode}: records archived behind the walk are caught by a second walk in the same run`, async () => {
      const f = fixture(30);
      const extra = records.slice(0, 5);
      let added = false;
      const { summary, report } = await migrate(f, mode, {}, (b) => {
        b.afterReadPage = (partition, page) => {
          if (added || partition.name !== 'p2' || !page.end) return;
          added = true;
          b.addRecords(
            'p2',
            extra.map((r) => r.payload),
          );
        };
      });
      assert.ok(added);
      extra.forEach((r, n) => f.expected.set(`p2:${30 + n}`, expectedValue(r, 'p2')));
      assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: extra.length });
      assert.equal(migrationExitStatus(summary), 0);
      assertEndState(f);
      const failed = [...f.expected]
        .filter(([, v]) => v === null)
        .map(([k]) => k)
        .sort();
      assert.deepEqual(report.rows.map((r) => key(r.fields)).sort(), failed, 'each failure reported once');
      assert.equal(summary.reported, failed.length);
    });
  }

  for (const mode of ['in-write', 'after-write', 'none'] as const) {
    test(`${mode}: a record written in part is written, reported once, counted as reported, and done`, async () => {
      const f = fixture(30);
      const writable = [...f.expected].filter(([, v]) => v?.startsWith('muc:')).map(([k]) => k);
      const failed = [...f.expected].filter(([, v]) => v === null).map(([k]) => k);
      const partly = writable.filter((_, n) => n % 4 === 0);
      assert.ok(partly.length > 3 && failed.length > 0);
      const setup = (b: MemoryBackend) => partly.forEach((k) => b.partlyStorable.add(k));

      // A dry run keeps its lines apart from the real run's report (as `migrate --dry-run` does).
      const dryBackend = new MemoryBackend(f.dir, mode);
      setup(dryBackend);
      const dryReport = new MemoryReport();
      const dry = await runMigration({ backend: dryBackend, openStream: openInProcessStream, report: dryReport, batchSize: 25, concurrency: 4, dryRun: true });
      assert.equal(readWrites(f.dir).size, 0, 'a dry run writes nothing');
      assert.deepEqual(dryReport.rows.map((r) => key(r.fields)).sort(), [...failed, ...partly].sort(), 'a dry run reports what the run would');
      assert.equal(dry.written, f.expected.size - failed.length - partly.length);

      const { summary, report } = await migrate(f, mode, {}, setup);
      assertEndState(f);
      const lines = report.rows.map((r) => key(r.fields));
      assert.deepEqual(lines.slice().sort(), [...failed, ...partly].sort(), 'each record written in part reported once, beside the failures');
      for (const row of report.rows.filter((r) => partly.includes(key(r.fields)))) assert.equal(row.reason, 'value_not_storable');
      assert.equal(summary.reported, failed.length + partly.length);
      assert.equal(summary.written, f.expected.size - failed.length - partly.length, 'records written in part are not counted as written');
      assert.equal(summary.records, summary.written + summary.skipped + summary.reported);
      assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: 0 });
      assert.equal(migrationExitStatus(summary), 0);

      // Done: the next run finds every record written or reported before, and reports nothing again.
      const next = await migrate(f, mode, {}, setup);
      assert.equal(next.report.rows.filter((r) => partly.includes(key(r.fields))).length, 0, 'written in part: passed over by the next run');
      assert.equal(next.summary.written, 0);
      assert.equal(next.summary.accounting?.kind, 'complete');
      assertEndState(f);
    });
  }

  test('records reported by earlier runs count as reported: the report file is read back', async () => {
    for (const withFile of [true, false]) {
      const f = fixture(40);
      const first = (await migrate(f, 'after-write', { limit: 150 })).summary;
      assert.ok(first.reported > 0, 'the first run reported records');
      assert.equal(first.accounting, undefined, 'no accounting before the end');
      const second = (await migrate(f, 'after-write', withFile ? {} : { reportPath: undefined })).summary;
      if (withFile) {
        assert.deepEqual(second.accounting, { kind: 'complete', rewalked: 0 });
      } else {
        // Without the file the first run's failures look unaccounted: the shard is walked again.
        assert.deepEqual(second.accounting, { kind: 'complete', rewalked: first.reported });
      }
      assertEndState(f);
    }
  });

  test('a store that cannot count says so and points at verify --complete', async () => {
    const f = fixture(10);
    const { summary } = await migrate(f, 'after-write', {}, (b) => Object.assign(b, { unwrittenKeys: undefined }));
    assert.deepEqual(summary.accounting, { kind: 'not-counted', reason: 'the memory backend was told not to count' });
    assert.equal(migrationExitStatus(summary), 0);
    assert.match(formatSummary(summary), /accounted for: not counted \(the memory backend was told not to count\); run verify --complete/);
  });

  test('a store listing only the first keys: all reported says so; one unreported among them is named', async () => {
    const f = fixture(30);
    const failed = [...f.expected.values()].filter((v) => v === null).length;
    assert.ok(failed > 3);
    const { summary } = await migrate(f, 'after-write', { accountingMaxKeys: 3 });
    assert.deepEqual(summary.accounting, { kind: 'partly-counted', listed: 3 });
    assert.equal(migrationExitStatus(summary), 0);
    assert.match(
      formatSummary(summary),
      /accounted for: the first 3 records the store lists without their write are all reported; it holds more, not listed; run verify --complete/,
    );
    const g = fixture(30);
    const { summary: dropped } = await migrate(g, 'after-write', { accountingMaxKeys: 3 }, (b) => (b.dropFromWalk = 'p0:0'));
    assert.equal(dropped.accounting?.kind, 'unaccounted');
    assert.ok(dropped.accounting?.kind === 'unaccounted' && dropped.accounting.more && dropped.accounting.count === 1);
    assert.match(formatSummary(dropped), /NO: at least 1 record neither written nor reported/);
  });

  test('a transient failure of the count is retried', async () => {
    const f = fixture(10);
    const { summary } = await migrate(f, 'after-write', {}, (b) => (b.failUnwrittenKeysOnce = true));
    assert.equal(summary.retries, 1);
    assert.deepEqual(summary.accounting, { kind: 'complete', rewalked: 0 });
  });

  test('a dry run and a run stopped at --limit do not account', async () => {
    const f = fixture(10);
    assert.equal((await migrate(f, 'after-write', { dryRun: true })).summary.accounting, undefined);
    assert.equal((await migrate(f, 'after-write', { limit: 5 })).summary.accounting, undefined);
  });
});

describe('verify --complete', () => {
  const complete = async (f: Fixture, extra: Partial<CompleteVerifyOptions> = {}, setup?: (b: MemoryBackend) => void) => {
    const backend = new MemoryBackend(f.dir, 'after-write');
    setup?.(backend);
    const findings: CompleteFinding[] = [];
    const summary = await runVerifyComplete({
      backend,
      openStream: openInProcessStream,
      reportPaths: [join(f.dir, 'report.jsonl')],
      onFinding: (x) => findings.push(x),
      batchSize: 7,
      ...extra,
    });
    return { summary, findings };
  };
  const counts = (f: Fixture) => {
    const failed = [...f.expected.values()].filter((v) => v === null).length;
    return { written_right: f.expected.size - failed, written_wrong: 0, not_written_reported: failed, not_written_unreported: 0 };
  };

  test('after a clean run: every record written right or reported, exit 0; the same with a tiny pending set', async () => {
    const f = fixture(30);
    await migrate(f, 'after-write');
    for (const pendingMax of [undefined, 2]) {
      const { summary, findings } = await complete(f, { pendingMax });
      assert.deepEqual(summary.counts, counts(f));
      assert.equal(summary.scanned, f.expected.size);
      assert.deepEqual(findings, []);
      assert.equal(completeExitStatus(summary), 0);
    }
  });

  test('before any run: every record not written and not reported, each listed, exit 3', async () => {
    const f = fixture(5);
    const { summary, findings } = await complete(f, { pendingMax: 4 });
    assert.equal(summary.counts.not_written_unreported, f.expected.size);
    assert.deepEqual(findings.map((x) => `${x.fields.partition}:${x.fields.index}`).sort(), [...f.expected.keys()].sort());
    assert.ok(findings.every((x) => x.class === 'not_written_unreported' && x.stored === ''));
    assert.equal(completeExitStatus(summary), 3);
  });

  test('finds a record the walk passed over, and records written wrong, each with its mismatch kind', async () => {
    const f = fixture(30);
    await migrate(f, 'after-write', {}, (b) => (b.dropFromWalk = 'p5:3'));
    const wrong = [...f.expected].find(([k, v]) => v !== null && k !== 'p5:3')![0];
    const undecodable = [...f.expected].find(([k, v]) => v === null && k !== 'p5:3')![0];
    const { summary, findings } = await complete(f, {}, (b) => {
      b.storedOverride.set(wrong, 'muc:someone@else.example');
      b.storedOverride.set(undecodable, 'muc:someone@else.example');
    });
    const expectedCounts = counts(f);
    const droppedWouldWrite = f.expected.get('p5:3') !== null;
    assert.deepEqual(summary.counts, {
      written_right: expectedCounts.written_right - 1 - (droppedWouldWrite ? 1 : 0),
      written_wrong: 2,
      not_written_reported: expectedCounts.not_written_reported - 1 - (droppedWouldWrite ? 0 : 1),
      not_written_unreported: 1,
    });
    const unreported = findings.filter((x) => x.class === 'not_written_unreported');
    assert.deepEqual(
      unreported.map((x) => x.fields),
      [{ partition: 'p5', index: '3' }],
    );
    const kinds = findings
      .filter((x) => x.class === 'written_wrong')
      .map((x) => `${x.fields.partition}:${x.fields.index} ${x.kind} ${x.stored}`)
      .sort();
    assert.deepEqual(kinds, [`${wrong} different_sender muc:someone@else.example`, `${undecodable} undecodable muc:someone@else.example`].sort());
    assert.equal(completeExitStatus(summary), 3);
    assert.match(formatCompleteSummary(summary), /2 written wrong, .* 1 not written and not reported$/);
  });

  test('--shard K/N walks only that shard; without the report every failure is unreported', async () => {
    const f = fixture(12);
    await migrate(f, 'after-write');
    const shard = { index: 1, count: 3 };
    const backend = new MemoryBackend(f.dir, 'after-write');
    const names = new Set((await backend.partitions(shard)).map((p) => p.name));
    const mine = [...f.expected].filter(([k]) => names.has(k.slice(0, k.indexOf(':'))));
    const failed = mine.filter(([, v]) => v === null).length;
    const { summary } = await complete(f, { shard, reportPaths: [] });
    assert.equal(summary.scanned, mine.length);
    assert.deepEqual(summary.counts, { written_right: mine.length - failed, written_wrong: 0, not_written_reported: 0, not_written_unreported: failed });
  });

  test('a backend without scanPage: a clear error', async () => {
    const f = fixture(2);
    await assert.rejects(
      complete(f, {}, (b) => Object.assign(b, { scanPage: undefined })),
      /verify --complete is not available for memory/,
    );
  });
});

describe('verify --sample', () => {
  test('nothing to check is no pass: exit 3 with what to do', async () => {
    const f = fixture(5);
    const backend = new MemoryBackend(f.dir, 'after-write');
    const summary = await runVerify({ backend, openStream: openInProcessStream, sample: 10 });
    assert.equal(summary.checked, 0);
    assert.deepEqual(sampleOutcome('memory', summary), {
      status: 3,
      message: 'verify memory: nothing to check: no record has its write yet; run migrate first or use --complete',
    });
    await migrate(f, 'after-write');
    const after = await runVerify({ backend: new MemoryBackend(f.dir, 'after-write'), openStream: openInProcessStream, sample: 10 });
    assert.equal(sampleOutcome('memory', after).status, 0);
  });
});

describe('--limit N, run again and again', () => {
  const LIMIT_SEED = fuzzSeed('PIPELINE_LIMIT_SEED', 'pipeline --limit property');

  /** Runs with `limit` until the end: each run walks exactly min(limit, what is left), and the runs end. */
  async function untilTheEnd(f: Fixture, mode: CheckpointMode, limit: number, batchSize: number, concurrency: number): Promise<number> {
    const total = f.expected.size;
    let walked = 0;
    for (let run = 1; run <= Math.ceil(total / limit) + 1; run++) {
      const { summary } = await migrate(f, mode, { limit, batchSize, concurrency });
      assert.equal(summary.records, Math.min(limit, total - walked), `run ${run} walks min(limit, what is left)`);
      walked += summary.records;
      if (summary.reachedEnd) return run;
    }
    assert.fail(`not at the end after ${Math.ceil(total / limit) + 1} runs of --limit ${limit}`);
  }

  test('many partitions, a limit below a batch: every run progresses, the runs reach the end', async () => {
    const f = fixture(20);
    await untilTheEnd(f, 'after-write', 20, 25, 4);
    assertEndState(f);
  });

  test('without checkpoints, records reported by earlier runs do not hold the next run back', async () => {
    const failing = records.filter((r) => expectedValue(r, 'p0') === null);
    const dir = mkdtempSync(join(tmpdir(), 'memory-limit-'));
    dirs.push(dir);
    const expected = new Map<string, string | null>();
    // p0 is all failures, more of them than the limit.
    const partitions = [0, 1, 2].map((n) => {
      const name = `p${n}`;
      const payloads = Array.from({ length: 12 }, (_, i) => {
        const record = n === 0 ? failing[i % failing.length] : records[(n * 13 + i) % records.length];
        expected.set(`${name}:${i}`, expectedValue(record, name));
        return record.payload;
      });
      return { name, payloads };
    });
    writeArchive(dir, partitions);
    const f = { dir, expected };
    await untilTheEnd(f, 'none', 5, 4, 1);
    assertEndState(f);
    const again = await migrate(f, 'none');
    assert.equal(again.summary.records, 0, 'nothing decoded again');
    assert.equal(again.summary.reportedBefore, [...expected.values()].filter((v) => v === null).length);
    assert.match(formatSummary(again.summary), /reported before +\d+ +\(in the report already: not decoded again\)/);
  });

  test('property: any partitions, limit, batch size and concurrency', async () => {
    const good = records;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 12, maxLength: 12 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom('in-write' as const, 'after-write' as const, 'none' as const),
        async (partitionCount, sizes, limit, batchSize, concurrency, mode) => {
          const dir = mkdtempSync(join(tmpdir(), 'memory-limit-'));
          dirs.push(dir);
          const expected = new Map<string, string | null>();
          const partitions = Array.from({ length: partitionCount }, (_, n) => {
            const name = `p${n}`;
            const payloads = Array.from({ length: sizes[n] }, (_, i) => {
              const record = good[(n * 31 + i) % good.length];
              expected.set(`${name}:${i}`, expectedValue(record, name));
              return record.payload;
            });
            return { name, payloads };
          });
          writeArchive(dir, partitions);
          const f = { dir, expected };
          if (expected.size === 0) return;
          await untilTheEnd(f, mode, limit, batchSize, concurrency);
          assertEndState(f);
        },
      ),
      { seed: LIMIT_SEED, numRuns: 40 },
    );
  });
});

test('a dry run with --reset walks from the start and leaves the checkpoints and the store as they were', async () => {
  const f = fixture(20);
  await migrate(f, 'after-write', { limit: 50 });
  const backend = new MemoryBackend(f.dir, 'after-write');
  const partitions = await backend.partitions({ index: 0, count: 1 });
  const saved = await Promise.all(partitions.map((p) => backend.readCheckpoint(p)));
  assert.ok(saved.some((c) => c !== null));
  const writes = readWrites(f.dir);
  const dry = await migrate(f, 'after-write', { dryRun: true, reset: true });
  // Reads pass over what has its write: every other record, from the start (the reported ones before the checkpoints too).
  assert.equal(dry.summary.records, f.expected.size - writes.size, 'walked from the start');
  assert.deepEqual(await Promise.all(partitions.map((p) => backend.readCheckpoint(p))), saved);
  assert.deepEqual(readWrites(f.dir), writes);
});

test("the summary's report line is true: two shards appending to one report each name what they appended", async () => {
  const f = fixture(30);
  const reportPath = join(f.dir, 'report.jsonl');
  const lines = (): number => (existsSync(reportPath) ? readFileSync(reportPath, 'utf8').split('\n').length - 1 : 0);
  await migrate(f, 'after-write', { limit: 60 });
  const before = lines();
  assert.ok(before > 0);
  const runs = await Promise.all([0, 1].map((index) => migrate(f, 'after-write', { shard: { index, count: 2 } })));
  const appended = runs.map(({ summary }) => {
    const text = formatSummary(summary, reportPath);
    assert.doesNotMatch(text, /in the file/);
    const m = /: ([\d,]+) lines? appended by this run/.exec(text);
    assert.ok(m, text);
    return Number(m[1].replace(/,/g, ''));
  });
  assert.equal(before + appended[0] + appended[1], lines());
});

test('a process whose walk passes over a record exits 5 and names it', async () => {
  const f = fixture(10);
  const runner = fileURLToPath(new URL('./memory-backend-runner.js', import.meta.url));
  const child = spawn(process.execPath, [runner, f.dir, 'in-write', '0', 'p2:4'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const forget = stopAtExit(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  forget();
  assert.equal(code, 5, stderr);
  assert.ok(stderr.includes('{"partition":"p2","index":"4"}'), stderr);
});
