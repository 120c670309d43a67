/**
 * Ctrl-C while a batch is blocked in the database: `migrate` stops within its grace period
 * (`--stop-grace`) instead of waiting for a lock someone else holds, and what it committed stays.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startMigrateProcess } from '../support/migrate-process.js';
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

test('SIGINT with a batch waiting on a row lock: exit 130 within --stop-grace, the lock holder unharmed', { timeout: 120_000 }, async () => {
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
    const migrate = startMigrateProcess(['postgres', '--url', db.url, '--batch-size', '10', '--stop-grace', '1']);
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
    migrate.child.kill('SIGINT');
    const end = await migrate.done;
    assert.equal(end.status, 130, end.stderr);
    assert.match(end.stderr, /still in flight after 1 s, quitting/);
    // The lock holder's transaction is intact and can still commit.
    await holder.query('COMMIT');
    const { rows: left } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM mam_muc_message WHERE sender_id IS NOT NULL');
    assert.equal(Number(left[0].n), 0, 'nothing was written past the lock');
  } finally {
    await holder.end().catch(() => {});
    await admin.end().catch(() => {});
    await db.close();
  }
});
