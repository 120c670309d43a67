/**
 * Ctrl-C while a batch is blocked in the database: `migrate` stops within its grace period
 * (`--stop-grace`) instead of waiting for a lock someone else holds, and what it committed stays.
 * A repeated signal within a moment (GNU timeout's) is one stop request.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startMigrateProcess } from '../support/migrate-process.js';
import { stopAtExit } from '../support/stop-at-exit.js';
import { buildDataset, PREEXISTING_USERS, ROOMS } from './dataset.js';
import { pairKey, type DatabaseFixture } from './fixture.js';
import { startPostgresFixture } from './postgres-fixture.js';

let fixture: DatabaseFixture;

before(async () => {
  fixture = await startPostgresFixture();
});
after(async () => {
  await fixture?.stop();
});

/**
 * A migrate process (`--stop-grace` seconds) whose first batch waits on a row lock someone else
 * holds; `body` acts on it, then the holder's transaction must still commit with nothing written
 * past the lock.
 */
async function withBlockedMigrate(stopGraceS: number, body: (migrate: ReturnType<typeof startMigrateProcess>) => Promise<void>): Promise<void> {
  const db = await fixture.freshDatabase();
  const ids = await db.insertUsers([...ROOMS, ...PREEXISTING_USERS]);
  const roomIds = ROOMS.map((r) => ids.get(pairKey(r))!);
  const rows = buildDataset(1).map((r) => ({ roomId: roomIds[r.roomIndex], id: r.id, payload: r.payload }));
  await db.insertMessages(rows);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await admin.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT');
    await admin.query('CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id)');
    // Someone else's transaction holds every row: the first batch's UPDATE waits for it.
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM mam_muc_message FOR UPDATE');
    const migrate = startMigrateProcess(['postgres', '--url', db.url, '--batch-size', '10', '--stop-grace', String(stopGraceS)]);
    // Wait (bounded) until a session of ours is really blocked on a lock.
    let blocked = false;
    for (let i = 0; i < 600 && !blocked && migrate.child.exitCode === null; i++) {
      const { rows: waiting } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      blocked = Number(waiting[0].n) > 0;
      if (!blocked) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(blocked, 'a batch of migrate waited on the held lock');
    await body(migrate);
    // The lock holder's transaction is intact and can still commit.
    await holder.query('COMMIT');
    const { rows: left } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM mam_muc_message WHERE sender_id IS NOT NULL');
    assert.equal(Number(left[0].n), 0, 'nothing was written past the lock');
  } finally {
    await holder.end().catch(() => {});
    await admin.end().catch(() => {});
    await db.close();
  }
}

test('SIGINT with a batch waiting on a row lock: exit 130 within --stop-grace, the lock holder unharmed', { timeout: 120_000 }, async () => {
  await withBlockedMigrate(1, async (migrate) => {
    migrate.child.kill('SIGINT');
    const end = await migrate.done;
    assert.equal(end.status, 130, end.stderr);
    assert.match(end.stderr, /still in flight after 1 s, quitting/);
  });
});

test("a person's second Ctrl-C, seconds after the first, still quits at once", { timeout: 120_000 }, async () => {
  await withBlockedMigrate(600, async (migrate) => {
    let handled!: () => void;
    const firstHandled = new Promise<void>((r) => (handled = r));
    migrate.child.stderr?.on('data', (c: Buffer) => {
      if (c.toString().includes('stopping after the batches in flight')) handled();
    });
    migrate.child.kill('SIGINT');
    await firstHandled;
    // Past the moment within which a repeated signal is the same request.
    await new Promise((r) => setTimeout(r, 2000));
    migrate.child.kill('SIGINT');
    const end = await migrate.done;
    assert.equal(end.status, 130, end.stderr);
    assert.match(end.stderr, /second Ctrl-C, quitting now/);
  });
});

/** A seeded database, and a wait (bounded) until a migrate process has written some rows. */
async function seededDatabase() {
  const db = await fixture.freshDatabase();
  const ids = await db.insertUsers([...ROOMS, ...PREEXISTING_USERS]);
  const roomIds = ROOMS.map((r) => ids.get(pairKey(r))!);
  await db.insertMessages(buildDataset(4).map((r) => ({ roomId: roomIds[r.roomIndex], id: r.id, payload: r.payload })));
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const inProgress = async (running: () => boolean): Promise<boolean> => {
    for (let i = 0; i < 600 && running(); i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (!(await db.columnExists('mam_muc_message', 'sender_id'))) continue;
      const { rows } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM mam_muc_message WHERE sender_id IS NOT NULL');
      if (Number(rows[0].n) > 0) return true;
    }
    return false;
  };
  const close = async (): Promise<void> => {
    await admin.end().catch(() => {});
    await db.close();
  };
  return { db, inProgress, close };
}

/** Slow enough (--max-rate) that the walk is still going when the signals come. */
const slowArgs = (url: string): string[] => [
  'postgres',
  '--url',
  url,
  '--apply-schema',
  '--batch-size',
  '5',
  '--max-rate',
  '20',
  '--stop-grace',
  '60',
  '--report',
  '/dev/null',
];

function assertOneGracefulStop(end: { status: number | string; stdout: string; stderr: string }): void {
  assert.equal(end.status, 130, end.stderr);
  assert.match(end.stderr, /stopping after the batches in flight/);
  assert.doesNotMatch(end.stderr, /quitting now/);
  assert.doesNotMatch(end.stderr, /still in flight after/);
  assert.match(end.stdout, /interrupted \(resume by running the same command again\)/);
}

/**
 * A signal repeated within a moment of the first (under a second: here, as soon as the first
 * one's message reached this test) is the same request to stop: the batches in flight finish.
 * Two signals sent back to back may be merged by the kernel before the process sees them, so
 * the second is sent once the first is known to be handled.
 */
test('a second SIGTERM right after the first: one graceful stop, exit 130, no "quitting now"', { timeout: 180_000 }, async () => {
  const { db, inProgress, close } = await seededDatabase();
  try {
    const migrate = startMigrateProcess(slowArgs(db.url));
    assert.ok(await inProgress(() => migrate.child.exitCode === null), 'the walk was in progress');
    let handled!: () => void;
    const firstHandled = new Promise<void>((r) => (handled = r));
    migrate.child.stderr?.on('data', (c: Buffer) => {
      if (c.toString().includes('stopping after the batches in flight')) handled();
    });
    migrate.child.kill('SIGTERM');
    await firstHandled;
    migrate.child.kill('SIGTERM');
    assertOneGracefulStop(await migrate.done);
  } finally {
    await close();
  }
});

/**
 * GNU `timeout` stops its command with SIGTERM to the process and then to its process group.
 * `timeout` is made to time out once the run is known to be in progress (SIGALRM is its own
 * timer's signal), so that the signals are exactly the ones it sends.
 */
test('GNU timeout (SIGTERM to the process, then to its group): one graceful stop, exit 130, no "quitting now"', { timeout: 180_000 }, async () => {
  const { db, inProgress, close } = await seededDatabase();
  try {
    const child = spawn('timeout', ['--preserve-status', '600', process.execPath, 'bin/mim-sender-jid.js', 'migrate', ...slowArgs(db.url)], {
      cwd: fileURLToPath(new URL('../../../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forget = stopAtExit(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const status = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    assert.ok(await inProgress(() => child.exitCode === null), `the walk was in progress: ${stderr}`);
    child.kill('SIGALRM');
    const end = await status;
    forget();
    assertOneGracefulStop({ status: end, stdout, stderr });
  } finally {
    await close();
  }
});
