/** What the shared backend suite needs from a database under test. */
import type { SqlBackend } from '../../clients/backends/sql/sql-backend.js';
import type { Pair } from './dataset.js';

export interface MessageRow {
  readonly roomId: string;
  readonly id: string;
  readonly payload: Buffer;
}

export interface UserRow extends Pair {
  readonly id: string;
}

export interface TestDatabase {
  readonly url: string;
  backend(): SqlBackend;
  insertUsers(pairs: readonly Pair[]): Promise<Map<string, string>>;
  insertMessages(rows: readonly MessageRow[]): Promise<void>;
  /** `room_id:id` -> sender_id (null when not set). */
  senderIds(): Promise<Map<string, string | null>>;
  users(): Promise<UserRow[]>;
  setSenderId(roomId: string, id: string, senderId: string): Promise<void>;
  tableExists(name: string): Promise<boolean>;
  columnExists(table: string, column: string): Promise<boolean>;
  /** Runs statements as the database's administrator (grants, resets, planting states). */
  execute(...statements: string[]): Promise<void>;
  /** The same database as `url`, connecting as another (password-less) user. */
  urlAs(user: string): string;
  close(): Promise<void>;
}

export interface FreshDatabaseOptions {
  /** PostgreSQL: the database's encoding (`LATIN1`, `SQL_ASCII`, ...; C collation). MariaDB: the database's character set. */
  readonly encoding?: string;
}

export interface DatabaseFixture {
  readonly name: string;
  /** A new, empty database holding MongooseIM 3.3's tables (without sender_id). */
  freshDatabase(options?: FreshDatabaseOptions): Promise<TestDatabase>;
  /** Stops the server and starts it again (connections are cut). */
  restartServer(): Promise<void>;
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export const pairKey = (p: Pair): string => `${p.server}\u0000${p.user}`;
export const rowKey = (roomId: string, id: string): string => `${roomId}:${id}`;
