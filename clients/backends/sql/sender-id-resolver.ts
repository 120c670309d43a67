/**
 * `(server, user_name) -> mam_server_user.id` for a batch, creating the missing rows: select,
 * insert what is missing, select again. Each statement commits on its own, before the batch's
 * transaction, like MongooseIM's own lazy inserts: the unique constraint settles races with
 * MongooseIM or another shard, and the cache only ever holds ids of committed rows.
 */
import { sleep } from '../../common/backoff.js';
import { Mutex, SenderIdCache, senderCacheKey } from './sender-id-cache.js';
import { text, type SenderPair, type SqlDialect, type SqlRunner } from './sql-dialect.js';

/** Another process inserting an overlapping set can make ours lose a race (deadlock victim, duplicate key): it is idempotent, so try again. */
const INSERT_ATTEMPTS = 5;
const INSERT_RETRY_PAUSE_MS = 20;

/** Senders the database refused, remembered so that later batches do not ask again (bounded). */
const MAX_REMEMBERED_REFUSALS = 10_000;

/** The ids resolved, and the senders the database cannot store (key -> why). */
export interface ResolvedSenders {
  readonly ids: Map<string, string>;
  readonly unstorable: Map<string, string>;
  /** The key (`senderCacheKey`) of each pair asked for, in its order. */
  readonly keys: readonly string[];
}

/** A pair inserted and still not found: the database stored something else than what it was given. */
class SenderNotFoundAfterInsertError extends Error {}

export class SenderIdResolver<P> {
  private readonly cache = new SenderIdCache();
  private readonly refused = new Map<string, string>();
  // Concurrent batches of one process would insert overlapping sets and race each other.
  private readonly resolving = new Mutex();

  constructor(
    private readonly dialect: SqlDialect<P>,
    private readonly runner: SqlRunner<P>,
  ) {}

  resolve(writes: readonly SenderPair[]): Promise<ResolvedSenders> {
    return this.resolving.run(() => this.resolveNow(writes));
  }

  /**
   * The whole batch at once; when the database refuses a value (a character its encoding or the
   * column's character set lacks, a value longer than the column counts), each pair alone, so
   * that only the refused senders stay unwritten (reported `jid_not_storable`) and the walk goes on.
   */
  private async resolveNow(writes: readonly SenderPair[]): Promise<ResolvedSenders> {
    const unstorable = new Map<string, string>();
    const { ids, missing, keys } = this.cache.lookup(writes);
    const asked = missing.filter((p) => {
      const key = senderCacheKey(p.server, p.user);
      const why = this.refused.get(key);
      if (why !== undefined) unstorable.set(key, why);
      return why === undefined;
    });
    try {
      await this.resolvePairs(asked, ids);
    } catch (error) {
      if (!this.isRefusedValue(error)) throw error;
      for (const pair of asked) {
        const key = senderCacheKey(pair.server, pair.user);
        if (ids.has(key)) continue;
        try {
          await this.resolvePairs([pair], ids);
        } catch (alone) {
          if (!this.isRefusedValue(alone)) throw alone;
          const why = `the database cannot store it: ${alone instanceof Error ? alone.message : String(alone)}`;
          unstorable.set(key, why);
          if (this.refused.size < MAX_REMEMBERED_REFUSALS) this.refused.set(key, why);
        }
      }
    }
    return { ids, unstorable, keys };
  }

  private isRefusedValue(error: unknown): boolean {
    return error instanceof SenderNotFoundAfterInsertError || this.dialect.isRefusedValue(error);
  }

  /** Select, insert what is missing, select again (a race lost to another writer is tried again). */
  private async resolvePairs(missing: readonly SenderPair[], ids: Map<string, string>): Promise<void> {
    for (let attempt = 1; missing.length > 0; attempt++) {
      await this.select(missing, ids);
      const absent = missing.filter((p) => !ids.has(senderCacheKey(p.server, p.user)));
      if (absent.length === 0) break;
      if (attempt > INSERT_ATTEMPTS) {
        throw new SenderNotFoundAfterInsertError(
          `${absent.length} of ${missing.length} senders not found in mam_server_user after ${INSERT_ATTEMPTS} inserts (the database stores another value than the one given)`,
        );
      }
      try {
        for (const statement of this.dialect.insertSenders(absent)) await this.runner.query(statement);
      } catch (error) {
        if (!this.dialect.isInsertRace(error) || attempt >= INSERT_ATTEMPTS) throw error;
        await sleep(INSERT_RETRY_PAUSE_MS * attempt);
      }
    }
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
