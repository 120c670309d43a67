/**
 * In-memory `(server, user_name) -> mam_server_user.id`, in front of the bulk resolution. Only
 * committed ids enter it (ids are resolved in their own committed statements, never inside a
 * batch transaction that could roll back), so a cached id is always a real row.
 */
export const DEFAULT_SENDER_CACHE_ENTRIES = 500_000;

export function senderCacheKey(server: string, user: string): string {
  return `${server}\u0000${user}`;
}

export class SenderIdCache {
  private readonly ids = new Map<string, string>();

  constructor(private readonly maxEntries = DEFAULT_SENDER_CACHE_ENTRIES) {}

  get(server: string, user: string): string | undefined {
    return this.ids.get(senderCacheKey(server, user));
  }

  set(server: string, user: string, id: string): void {
    // Bounded memory on archives with millions of senders: forget everything and refill.
    if (this.ids.size >= this.maxEntries) this.ids.clear();
    this.ids.set(senderCacheKey(server, user), id);
  }

  /**
   * The batch's own id map (filled from the cache; the caller adds what it resolves, so a cache
   * emptied meanwhile by another batch cannot lose an id), and the distinct pairs not in the
   * cache, sorted: every process inserts in the same order, so concurrent inserts of overlapping
   * sets cannot deadlock on the unique index.
   */
  lookup(writes: readonly { user: string; server: string }[]): { ids: Map<string, string>; missing: { server: string; user: string }[]; keys: string[] } {
    const ids = new Map<string, string>();
    const seen = new Set<string>();
    const out: { server: string; user: string }[] = [];
    // Each write's key, made once: the batch looks its ids up by them again (senderIdsOf).
    const keys = new Array<string>(writes.length);
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i];
      const key = senderCacheKey(w.server, w.user);
      keys[i] = key;
      if (ids.has(key) || seen.has(key)) continue;
      const id = this.ids.get(key);
      if (id !== undefined) {
        ids.set(key, id);
        continue;
      }
      seen.add(key);
      out.push({ server: w.server, user: w.user });
    }
    return { ids, missing: sortPairs(out), keys };
  }
}

function sortPairs(out: { server: string; user: string }[]): { server: string; user: string }[] {
  return out.sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
}

/**
 * The id of each write's sender from the batch's map; a missing one is a bug, never a NULL
 * written. `keys`, when given, are the writes' own keys (from `lookup`), not made again.
 */
export function senderIdsOf(writes: readonly { user: string; server: string }[], ids: ReadonlyMap<string, string>, keys?: readonly string[]): string[] {
  return writes.map((w, i) => {
    const id = ids.get(keys === undefined ? senderCacheKey(w.server, w.user) : keys[i]);
    if (id === undefined) throw new Error(`no mam_server_user id resolved for ${w.user}@${w.server}`);
    return id;
  });
}

/** Runs tasks one at a time: id resolution of concurrent batches in one process is serialised (most pairs are cached anyway). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => {});
    return result;
  }
}
