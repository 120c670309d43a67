/**
 * One page of a partition: its documents (still without the walk's field, `from_jid` or
 * `is_groupchat`, or all of them for `verify --complete`) sorted by (`mam_id`, key) — by the key
 * alone in the partition of documents without `mam_id` — and read after the cursor with
 * `search_after`. The key is `room` in the MUC archive, `owner` in the one-to-one archive.
 *
 * That sort key is unique for MongooseIM's own documents (`_id` is `key$mam_id`), but not for a
 * reindex with generated ids, and no unique field can be sorted on cheaply everywhere (`_id`
 * sorts from field data loaded for the whole index into the heap, refused by default on newer
 * servers; `_shard_doc` is missing from OpenSearch 2 and Elasticsearch 6). So a page never ends
 * inside a group of documents sharing the key: the search asks for one document more than the
 * page holds, a page whose cut would split a group ends before that group, and a group larger
 * than a whole page is read whole by its key. The cursor is then total: everything up to it is
 * read, nothing after it is.
 *
 * How many documents one search asks for is bounded by bytes too: by `limits.bytes` over the
 * largest message seen lately, and cut down at once when the node's circuit breaker refuses.
 * No scroll or point in time to keep alive, so the same request works on Elasticsearch 6 and 7
 * and OpenSearch, and survives a node restart.
 */
import type { PageLimits } from '../../pipeline/types.js';
import type { SortCursor } from './checkpoint-store.js';
import { indexPath, targetOf, type IndexLayout } from './index-layout.js';
import { rangeFilter, type MamIdRange } from './partition-plan.js';
import { SearchHttpError, type SearchHttp } from './search-http.js';

export interface Hit {
  _id: string;
  /** `message` and the walk's field. */
  _source?: Record<string, unknown>;
  fields?: { mam_id?: unknown[] };
  sort?: unknown[];
  /** The version the document was read at (asked with `seq_no_primary_term`): writes are conditioned on it. */
  _seq_no?: number;
  _primary_term?: number;
}

interface SearchBody {
  hits: { hits: Hit[]; total?: number | { value: number; relation?: string } };
}

/** Largest group of documents sharing one sort key that a page reads whole. */
export const MAX_GROUP = 10_000;

/** The query of the documents still to do in these ranges (those without the walk's field). */
export function pendingQuery(layout: IndexLayout, ranges: readonly MamIdRange[]): object {
  return {
    bool: {
      filter: [rangesClause(ranges)],
      must_not: [{ exists: { field: targetOf(layout).field } }],
    },
  };
}

function rangesClause(ranges: readonly MamIdRange[]): object {
  return ranges.length === 1 ? rangeFilter(ranges[0]) : { bool: { should: ranges.map(rangeFilter), minimum_should_match: 1 } };
}

function baseQuery(layout: IndexLayout, range: MamIdRange, pending: boolean, extra: object[] = []): object {
  return {
    bool: {
      filter: [rangeFilter(range), ...extra],
      ...(pending ? { must_not: [{ exists: { field: targetOf(layout).field } }] } : {}),
    },
  };
}

/** Documents strictly after `after` in the walk's order. */
function afterClause(layout: IndexLayout, range: MamIdRange, after: SortCursor): object {
  const key = targetOf(layout).keyField;
  if (range.noMamId === true) return { range: { [key]: { gt: after.room } } };
  return {
    bool: {
      should: [{ range: { mam_id: { gt: after.mamId } } }, { bool: { filter: [{ term: { mam_id: after.mamId } }, { range: { [key]: { gt: after.room } } }] } }],
      minimum_should_match: 1,
    },
  };
}

/** Documents still without the walk's field in `range` after `after` (the whole range when null). */
export async function countPendingAfter(http: SearchHttp, layout: IndexLayout, range: MamIdRange, after: SortCursor | null): Promise<number> {
  if (after?.done === true) return 0;
  const query = baseQuery(layout, range, true, after === null || (range.noMamId !== true && after.mamId === '') ? [] : [afterClause(layout, range, after)]);
  const body = await http.complete<{ count: number }>(`${indexPath(layout)}/_count`, { query });
  return body.count;
}

/** How many documents a search may ask for: bytes over the largest message seen lately. */
export class PageBudget {
  /** Largest message of the last pages, in bytes (0: none seen yet). */
  private perDocument = 0;
  /** Set after a circuit breaker refusal: no search asks for more until pages show it is safe. */
  private cap = Number.POSITIVE_INFINITY;

  documents(limits: PageLimits): number {
    // Nothing seen yet: one document first (two come back with the look-ahead), so that no page,
    // the first included, asks for more than the bytes of messages actually seen allow.
    const byBytes = this.perDocument > 0 ? Math.floor(limits.bytes / this.perDocument) : 1;
    return Math.max(1, Math.min(limits.records, byBytes, this.cap));
  }

  observe(hits: readonly Hit[]): void {
    let largest = 0;
    // At least a byte each: pages of documents without a message must not stay at one document.
    for (const hit of hits) largest = Math.max(largest, messageBytes(hit), 1);
    if (hits.length === 0) return;
    // Decays, so that one huge message does not slow the rest of the walk for good.
    this.perDocument = Math.max(largest, Math.floor(this.perDocument / 2));
    if (this.cap !== Number.POSITIVE_INFINITY) this.cap = this.cap * 2;
  }

  /** The node refused a search of `asked` documents for memory: ask for a quarter. */
  refused(asked: number): number {
    this.cap = Math.max(1, Math.floor(asked / 4));
    return this.cap;
  }
}

function messageBytes(hit: Hit): number {
  const message = hit._source?.message;
  return typeof message === 'string' ? Buffer.byteLength(message, 'utf8') : 0;
}

/**
 * What a document holds instead of a string `message`, in words (null when it is a string): the
 * report says what was there rather than that an empty payload failed to decode.
 */
export function messageProblem(hit: Hit): string | null {
  const message: unknown = hit._source?.message;
  if (typeof message === 'string') return null;
  if (message === undefined) return 'the document has no message field';
  if (message === null) return 'message is null';
  if (Array.isArray(message)) return `message is an array of ${message.length} items, not a string`;
  if (typeof message === 'object') return 'message is an object, not a string';
  return `message is a ${typeof message} (${JSON.stringify(message).slice(0, 40)}), not a string`;
}

export function payloadOf(hit: Hit): Buffer {
  const message = hit._source?.message;
  // A document without a string `message` becomes an empty payload: decoded as malformed, reported.
  return typeof message === 'string' ? Buffer.from(message, 'utf8') : Buffer.alloc(0);
}

export interface KeyedPage {
  readonly hits: readonly Hit[];
  readonly cursor: SortCursor | null;
  readonly end: boolean;
}

export interface ReadOptions {
  /** Only documents without the walk's field (the walk), or all of them (`verify --complete`). */
  readonly pending: boolean;
  readonly source: readonly string[];
}

/** Circuit breaker refusals of one page before the page fails (each asks for a quarter). */
const BREAKER_ROUNDS = 8;

export async function readKeyedPage(
  http: SearchHttp,
  layout: IndexLayout,
  range: MamIdRange,
  after: SortCursor | null,
  limits: PageLimits,
  budget: PageBudget,
  options: ReadOptions,
): Promise<KeyedPage> {
  if (after?.done === true) return { hits: [], cursor: after, end: true };
  const noMamId = range.noMamId === true;
  const key = targetOf(layout).keyField;
  let want = budget.documents(limits);
  let hits: Hit[];
  for (let round = 0; ; round++) {
    try {
      const body = await http.complete<SearchBody>(`${indexPath(layout)}/_search`, {
        // One more than the page holds: it says whether the page's last group goes on.
        size: want + 1,
        query: baseQuery(layout, range, options.pending),
        sort: noMamId ? [{ [key]: 'asc' }] : [{ mam_id: 'asc' }, { [key]: 'asc' }],
        ...(after === null ? {} : { search_after: noMamId ? [after.room] : [after.mamId, after.room] }),
        _source: options.source,
        ...(noMamId ? {} : { docvalue_fields: [{ field: 'mam_id', format: '0' }] }),
        track_total_hits: false,
        seq_no_primary_term: true,
      });
      hits = body.hits.hits;
      break;
    } catch (error) {
      if (!(error instanceof SearchHttpError && /circuit_breaking_exception/.test(`${error.type} ${error.message}`)) || want <= 1 || round >= BREAKER_ROUNDS)
        throw error;
      want = budget.refused(want);
    }
  }
  budget.observe(hits);
  // Cut where the page reaches its rows or bytes.
  let kept = 0;
  let bytes = 0;
  while (kept < Math.min(hits.length, want)) {
    const size = messageBytes(hits[kept]);
    if (kept > 0 && bytes + size > limits.bytes) break;
    bytes += size;
    kept++;
  }
  if (kept === hits.length) {
    // Everything after the cursor came back (at most `want` of `want + 1`).
    const last = hits.length === 0 ? null : keyOf(hits[hits.length - 1], noMamId, key);
    return { hits, cursor: { ...(last ?? after ?? { mamId: '', room: '' }), done: true }, end: true };
  }
  // Never end inside a group sharing the key: back up to the group's start.
  const next = keyOf(hits[kept], noMamId, key);
  while (kept > 0 && sameKey(keyOf(hits[kept - 1], noMamId, key), next)) kept--;
  if (kept > 0) return { hits: hits.slice(0, kept), cursor: keyOf(hits[kept - 1], noMamId, key), end: false };
  // The first group alone fills the page: read it whole by its key.
  const group = await readGroup(http, layout, range, next, options);
  budget.observe(group);
  return { hits: group, cursor: next, end: false };
}

async function readGroup(http: SearchHttp, layout: IndexLayout, range: MamIdRange, key: SortCursor, options: ReadOptions): Promise<Hit[]> {
  const field = targetOf(layout).keyField;
  const terms = range.noMamId === true ? [{ term: { [field]: key.room } }] : [{ term: { mam_id: key.mamId } }, { term: { [field]: key.room } }];
  const body = await http.complete<SearchBody>(`${indexPath(layout)}/_search`, {
    size: MAX_GROUP,
    query: baseQuery(layout, range, options.pending, terms),
    _source: options.source,
    track_total_hits: true,
    seq_no_primary_term: true,
  });
  const total = typeof body.hits.total === 'number' ? body.hits.total : (body.hits.total?.value ?? 0);
  if (total > body.hits.hits.length) {
    throw new Error(
      `${total} documents share ${range.noMamId === true ? '' : `mam_id ${key.mamId} and `}${field} ${key.room}: more than the ${MAX_GROUP} one page can read by that key (the walk sorts by it)`,
    );
  }
  return body.hits.hits;
}

function keyOf(hit: Hit, noMamId: boolean, field: string): SortCursor {
  const room = hit.sort?.[noMamId ? 0 : 1];
  if (typeof room !== 'string') throw new Error(`document ${hit._id} has no ${field} (MongooseIM always sets it; the walk sorts by it)`);
  if (noMamId) return { mamId: '', room };
  const mamId = hit.fields?.mam_id?.[0];
  if (typeof mamId !== 'string' || !/^-?\d+$/.test(mamId)) throw new Error(`document ${hit._id} has no usable mam_id (${JSON.stringify(hit.fields?.mam_id)})`);
  return { mamId, room };
}

function sameKey(a: SortCursor, b: SortCursor): boolean {
  return a.mamId === b.mamId && a.room === b.room;
}
