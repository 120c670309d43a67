/**
 * Reads one token range in order with driver paging, and picks the rows that still need a write.
 * A walk keeps the driver's page state between two `readPage` calls of the same range, so the
 * usual path is one query per driver page; a walk resumed from a stored cursor (a new run, or a
 * retry after an error) first reads the rest of the cursor's own partition, then the partitions
 * of larger tokens. Never `ALLOW FILTERING`: the only filter is on the token, which the node
 * answers from its own partition order.
 */
import type { Client } from 'cassandra-driver';
import type { PageLimits } from '../../pipeline/types.js';
import { sameCursor, type RangeCursor } from './keys.js';
import type { IdOrder } from './schema.js';
import type { TokenRange } from './token-ranges.js';

const COLUMNS = 'token(room_jid, with_nick) AS t, room_jid, with_nick, id, from_jid, message';

/** Rows per driver page: a page of records holds about half as many records as rows scanned (two copies per message). */
const MIN_FETCH_SIZE = 100;
const MAX_FETCH_SIZE = 5000;

/** Bytes of a row as the node builds it into a page: payload, keys, and a little for the rest. */
function rowBytes(row: ScannedRow): number {
  return (row.message?.length ?? 0) + Buffer.byteLength(row.room_jid) + Buffer.byteLength(row.with_nick) + (row.from_jid?.length ?? 0) + 40;
}

/**
 * The node builds a whole driver page in its heap before sending it, and several ranges are read
 * at once: a page sized in rows alone (100 to 5,000) is gigabytes of 1 MB payloads. So a driver page
 * is also bounded by the page's byte limit (`--max-batch-bytes`) over the largest mean row size
 * seen so far, and the first fetch of a reader that has seen no row asks for one row.
 */
class RowSizes {
  private largestMean = 0;

  observe(rows: readonly ScannedRow[]): void {
    if (rows.length === 0) return;
    let total = 0;
    for (const row of rows) total += rowBytes(row);
    this.largestMean = Math.max(this.largestMean, total / rows.length);
  }

  fetchSize(limits: PageLimits): number {
    const byRows = Math.min(MAX_FETCH_SIZE, Math.max(MIN_FETCH_SIZE, limits.records * 2));
    if (this.largestMean === 0) return 1;
    return Math.max(1, Math.min(byRows, Math.floor(limits.bytes / this.largestMean)));
  }
}

export interface ScannedRow {
  readonly t: bigint;
  readonly room_jid: string;
  readonly with_nick: string;
  readonly id: bigint;
  readonly from_jid: string | null;
  readonly message: Buffer | null;
}

export interface ReaderOptions<R> {
  readonly client: Client;
  readonly table: string;
  readonly consistency: number;
  /** The record a scanned row becomes, or null for a row passed over (already done, or not ours). */
  readonly pick: (row: ScannedRow) => R | null;
}

/** What a reader's page holds: records with a payload, and the place after the last row scanned. */
export interface ReadPage<R> {
  readonly records: readonly R[];
  readonly cursor: RangeCursor | null;
  readonly end: boolean;
}

type Query = { readonly cql: string; readonly params: unknown[] };

/** One range's walk from a cursor: queued queries, the current driver page, the page state. */
class RangeWalk {
  private readonly queries: Query[];
  private rows: ScannedRow[] = [];
  private next = 0;
  private pageState: string | undefined;
  private queryStarted = false;
  position: RangeCursor | null;

  constructor(range: TokenRange, after: RangeCursor | null, table: string, idOrder: IdOrder) {
    this.position = after;
    const scan = (fromToken: bigint): Query => ({
      cql: `SELECT ${COLUMNS} FROM ${table} WHERE token(room_jid, with_nick) > ? AND token(room_jid, with_nick) <= ?`,
      params: [fromToken, range.end],
    });
    this.queries =
      after === null
        ? [scan(range.start)]
        : [
            {
              // The rest of the cursor's partition: the ids after it in the partition's own order.
              cql: `SELECT ${COLUMNS} FROM ${table} WHERE room_jid = ? AND with_nick = ? AND id ${idOrder === 'desc' ? '<' : '>'} ?`,
              params: [after.roomJid, after.withNick, BigInt(after.id)],
            },
            scan(BigInt(after.token)),
          ];
  }

  /** The next row, or null at the end of the range. */
  async take(options: ReaderOptions<unknown>, sizes: RowSizes, limits: PageLimits): Promise<ScannedRow | null> {
    while (this.next >= this.rows.length) {
      const query = this.queries[0];
      if (query === undefined) return null;
      if (this.queryStarted && this.pageState === undefined) {
        this.queries.shift();
        this.queryStarted = false;
        continue;
      }
      const result = await options.client.execute(query.cql, query.params, {
        prepare: true,
        fetchSize: sizes.fetchSize(limits),
        pageState: this.pageState,
        consistency: options.consistency,
        isIdempotent: true,
      });
      this.queryStarted = true;
      this.pageState = result.pageState ?? undefined;
      this.rows = result.rows as unknown as ScannedRow[];
      sizes.observe(this.rows);
      this.next = 0;
    }
    const row = this.rows[this.next++];
    this.position = { token: row.t.toString(), roomJid: row.room_jid, withNick: row.with_nick, id: row.id.toString() };
    return row;
  }

  /** True when nothing is buffered and no query has pages left. */
  get exhausted(): boolean {
    if (this.next < this.rows.length) return false;
    if (this.queries.length > 1) return false;
    return this.queries.length === 0 || (this.queryStarted && this.pageState === undefined);
  }
}

export class RangeReader<R extends { readonly payload: Uint8Array }> {
  private readonly walks = new Map<string, RangeWalk>();
  private readonly sizes = new RowSizes();

  constructor(private readonly options: ReaderOptions<R>) {}

  async readPage(range: TokenRange, after: RangeCursor | null, limits: PageLimits, idOrder: IdOrder): Promise<ReadPage<R>> {
    let walk = this.walks.get(range.name);
    if (walk === undefined || !sameCursor(walk.position, after)) {
      walk = new RangeWalk(range, after, this.options.table, idOrder);
      this.walks.set(range.name, walk);
    }
    // Bounds a page's work when most rows are done already (a re-run): the cursor still advances.
    const scanLimit = limits.records * 2 + MIN_FETCH_SIZE;
    const records: R[] = [];
    let bytes = 0;
    let scanned = 0;
    try {
      while (records.length < limits.records && bytes < limits.bytes && scanned < scanLimit) {
        const row = await walk.take(this.options, this.sizes, limits);
        if (row === null) break;
        scanned++;
        const record = this.options.pick(row);
        if (record === null) continue;
        records.push(record);
        bytes += record.payload.length;
      }
    } catch (error) {
      // A failed fetch leaves the walk's page state unusable: the retry starts from its cursor.
      this.walks.delete(range.name);
      throw error;
    }
    const end = walk.exhausted;
    if (end) this.walks.delete(range.name);
    return { records, cursor: walk.position, end };
  }
}
