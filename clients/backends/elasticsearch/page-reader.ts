/**
 * One page of a partition: documents without `from_jid` in the partition's `mam_id` range,
 * sorted by (`mam_id`, `room`) — unique, since MongooseIM's `_id` is `room$mam_id` — and read
 * after the cursor with `search_after`. Unlike the upgrade guide's "search without from_jid,
 * update, repeat", a document that cannot be decoded stays behind the cursor: the walk ends.
 * No scroll or point in time to keep alive, so the same request works on Elasticsearch 6 and 7
 * and OpenSearch, and survives a node restart.
 */
import type { Page, PageLimits, SourceRecord } from '../../pipeline/types.js';
import type { SortCursor } from './checkpoint-store.js';
import { indexPath, type IndexLayout } from './index-layout.js';
import { rangeFilter, type MamIdRange } from './partition-plan.js';
import type { SearchHttp } from './search-http.js';

interface Hit {
  _id: string;
  _source?: { message?: unknown };
  fields?: { mam_id?: unknown[] };
  sort?: unknown[];
}

interface SearchBody {
  hits: { hits: Hit[] };
}

/** The query of the documents still to do in these ranges. */
export function pendingQuery(ranges: readonly MamIdRange[]): object {
  return {
    bool: {
      filter: [ranges.length === 1 ? rangeFilter(ranges[0]) : { bool: { should: ranges.map(rangeFilter), minimum_should_match: 1 } }],
      must_not: [{ exists: { field: 'from_jid' } }],
    },
  };
}

/** Documents still without from_jid in `range` after `after` (the whole range when null). */
export async function countPendingAfter(http: SearchHttp, layout: IndexLayout, range: MamIdRange, after: SortCursor | null): Promise<number> {
  if (after?.done === true) return 0;
  const query = pendingQuery([range]) as { bool: { filter: object[] } };
  if (after !== null) {
    query.bool.filter.push({
      bool: {
        should: [
          { range: { mam_id: { gt: after.mamId } } },
          { bool: { filter: [{ term: { mam_id: after.mamId } }, { range: { room: { gt: after.room } } }] } },
        ],
        minimum_should_match: 1,
      },
    });
  }
  const body = await http.complete<{ count: number }>(`${indexPath(layout)}/_count`, { query });
  return body.count;
}

export async function readPage(
  http: SearchHttp,
  layout: IndexLayout,
  range: MamIdRange,
  after: SortCursor | null,
  limits: PageLimits,
): Promise<Page<string, SortCursor>> {
  if (after?.done === true) return { records: [], cursor: after, end: true };
  const body = await http.complete<SearchBody>(`${indexPath(layout)}/_search`, {
    size: limits.rows,
    query: pendingQuery([range]),
    sort: [{ mam_id: 'asc' }, { room: 'asc' }],
    ...(after === null ? {} : { search_after: [after.mamId, after.room] }),
    _source: ['message'],
    // Formatted doc values come back as strings: JSON numbers would lose ids beyond 2^53.
    docvalue_fields: [{ field: 'mam_id', format: '0' }],
    track_total_hits: false,
  });
  const hits = body.hits.hits;
  const records: SourceRecord<string>[] = [];
  let cursor = after;
  let bytes = 0;
  for (const hit of hits) {
    const message = hit._source?.message;
    // A document without a string `message` becomes an empty payload: decoded as malformed, reported.
    const payload = typeof message === 'string' ? Buffer.from(message, 'utf8') : Buffer.alloc(0);
    if (records.length > 0 && bytes + payload.length > limits.bytes) {
      return { records, cursor, end: false };
    }
    bytes += payload.length;
    records.push({ key: hit._id, payload });
    cursor = cursorOf(hit);
  }
  if (hits.length < limits.rows) return { records, cursor: { ...(cursor ?? { mamId: '', room: '' }), done: true }, end: true };
  return { records, cursor, end: false };
}

function cursorOf(hit: Hit): SortCursor {
  const mamId = hit.fields?.mam_id?.[0];
  const room = hit.sort?.[1];
  if (typeof mamId !== 'string' || !/^-?\d+$/.test(mamId)) throw new Error(`document ${hit._id} has no usable mam_id (${JSON.stringify(hit.fields?.mam_id)})`);
  if (typeof room !== 'string') throw new Error(`document ${hit._id} has no room (MongooseIM always sets it; the walk sorts by it)`);
  return { mamId, room };
}
