/**
 * The SQL backends' expected failures: each says what happened and what to do, in one message
 * (the CLI prints messages, not stacks).
 */
import { shardName, type ShardSpec } from '../../pipeline/types.js';

/** Another process holds the shard's lock: two processes on the same rows only race each other. */
export class ShardBusyError extends Error {
  constructor(shard: ShardSpec, lockName: string) {
    super(
      `shard ${shardName(shard)} of this database is being migrated by another process (it holds the lock '${lockName}'): ` +
        `run one process per shard (--shard K/N with a different K each); this one stops without changing anything`,
    );
    this.name = 'ShardBusyError';
  }
}

/** The checkpoint table is missing (or invisible to this user) and this user may not create it. */
export class CheckpointTableError extends Error {
  constructor(table: string, createStatement: string, cause: unknown) {
    super(
      `the checkpoint table ${table} does not exist (or this database user cannot see it) and cannot be created: ` +
        `${cause instanceof Error ? cause.message : String(cause)}.\n` +
        `A DBA can create it once, then grant this user SELECT, INSERT, UPDATE, DELETE on it:\n${createStatement}`,
    );
    this.name = 'CheckpointTableError';
  }
}
