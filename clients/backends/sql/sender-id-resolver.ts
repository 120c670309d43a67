/**
 * `(server, user_name) -> mam_server_user.id` for a batch, creating the missing rows: select,
 * insert what is missing, select again. Each statement commits on its own, before the batch's
 * transaction, like MongooseIM's own lazy inserts: the unique constraint settles races with
 * MongooseIM or another shard, and the cache only ever holds ids of committed rows.
 */
import { Mutex, SenderIdCache, senderCacheKey } from './sender-id-cache.js';
import { text, type SenderPair, type SqlDialect, type SqlRunner } from './sql-dialect.js';

/** Another process inserting an overlapping set can make ours lose a race (deadlock victim, duplicate key): it is idempotent, so try again. */
const INSERT_ATTEMPTS = 5;
const INSERT_RETRY_PAUSE_MS = 20;

export class SenderIdResolver<P> {
  private readonly cache = new SenderIdCache();
  // Concurrent batches of one process would insert overlapping sets and race each other.
  private readonly resolving = new Mutex();

  constructor(
    private readonly dialect: SqlDialect<P>,
    private readonly runner: SqlRunner<P>,
  ) {}

  resolve(writes: readonly SenderPair[]): Promise<Map<string, string>> {
    return this.resolving.run(() => this.resolveNow(writes));
  }

  private async resolveNow(writes: readonly SenderPair[]): Promise<Map<string, string>> {
    const { ids, missing } = this.cache.lookup(writes);
    for (let attempt = 1; missing.length > 0; attempt++) {
      await this.select(missing, ids);
      const absent = missing.filter((p) => !ids.has(senderCacheKey(p.server, p.user)));
      if (absent.length === 0) break;
      if (attempt > INSERT_ATTEMPTS) {
        throw new Error(`mam_server_user: ${absent.length} of ${missing.length} senders still missing after ${INSERT_ATTEMPTS} inserts`);
      }
      try {
        for (const statement of this.dialect.insertSenders(absent)) await this.runner.query(statement);
      } catch (error) {
        if (!this.dialect.isInsertRace(error) || attempt >= INSERT_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, INSERT_RETRY_PAUSE_MS * attempt));
      }
    }
    return ids;
  }

  private async select(pairs: readonly SenderPair[], ids: Map<string, string>): Promise<void> {
    for (const statement of this.dialect.selectSenders(pairs)) {
      for (const row of (await this.runner.query(statement)).rows) {
        // A dialect whose collation may match another case answers with the index of the pair asked for.
        const pair = row.pair !== undefined && row.pair !== null ? pairs[Number(row.pair)] : { server: text(row.server), user: text(row.user_name) };
        const id = String(row.id);
        this.cache.set(pair.server, pair.user, id);
        ids.set(senderCacheKey(pair.server, pair.user), id);
      }
    }
  }
}
