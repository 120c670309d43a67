/**
 * MongooseIM 3.4.0's `get_mam_muc_gdpr_data` on Elasticsearch/OpenSearch, as
 * mod_mam_muc_elasticsearch_arch sends it through tirerl (docs/mongooseim-gdpr-queries.md,
 * "Elasticsearch"): a bool query with one `term` filter on `from_jid`, sorted by `mam_id` asc,
 * no size, on `muc_messages` under type `muc`.
 */
import type { GdprRow } from './gdpr-check.js';

export const GDPR_INDEX = 'muc_messages';

/** The body MongooseIM 3.4.0 sends, and the same body asking for every hit. */
export function gdprSearchBody(bareJid: string, size?: number): object {
  return { query: { bool: { filter: { term: { from_jid: bareJid } } } }, sort: { mam_id: { order: 'asc' } }, ...(size === undefined ? {} : { size }) };
}

interface SearchAnswer {
  hits: { total: number | { value: number; relation: string }; hits: { _source: { mam_id: string; message: string } }[] };
}

async function search(url: string, path: string, body: object): Promise<SearchAnswer> {
  const response = await fetch(url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST ${path}: HTTP ${response.status} ${text.slice(0, 500)}`);
  // mam_id beyond 2^53: kept as its digits, as MongooseIM's JSON decoder keeps it exact.
  return JSON.parse(text.replace(/"mam_id":(\d+)/g, '"mam_id":"$1"')) as SearchAnswer;
}

export interface SearchGdpr {
  /** The answer with every hit (the same query with `size`): what the checker judges. */
  readonly complete: Map<string, GdprRow[]>;
  /** Differences between MongooseIM's own request (default page) and the complete answer. */
  readonly defaultPageProblems: string[];
}

/**
 * `typedPath`: `/muc_messages/muc/_search` as tirerl sends it, for MongooseIM's typed index
 * (Elasticsearch 5/6, or an index created there and carried into 7). On a typeless index that path
 * matches no document (its type is `_doc`), so there the typeless `/muc_messages/_search`.
 */
export async function searchGdpr(url: string, jids: readonly string[], typedPath: boolean): Promise<SearchGdpr> {
  const path = typedPath ? `/${GDPR_INDEX}/muc/_search` : `/${GDPR_INDEX}/_search`;
  await fetch(`${url}/${GDPR_INDEX}/_refresh`, { method: 'POST' });
  const complete = new Map<string, GdprRow[]>();
  const defaultPageProblems: string[] = [];
  for (const jid of jids) {
    const all = await search(url, path, gdprSearchBody(jid, 10_000));
    const rows = all.hits.hits.map((h) => ({ id: h._source.mam_id, message: Buffer.from(h._source.message, 'utf8') }));
    complete.set(jid, rows);
    const own = await search(url, path, gdprSearchBody(jid));
    const total = typeof own.hits.total === 'number' ? own.hits.total : own.hits.total.value;
    if (total !== rows.length) defaultPageProblems.push(`${jid}: total ${total}, but ${rows.length} hits in all`);
    const firstIds = rows.slice(0, 10).map((r) => r.id);
    const ownIds = own.hits.hits.map((h) => h._source.mam_id);
    if (JSON.stringify(ownIds) !== JSON.stringify(firstIds))
      defaultPageProblems.push(`${jid}: MongooseIM's request answered ${ownIds.join(',')} instead of the oldest ${firstIds.join(',')}`);
  }
  return { complete, defaultPageProblems };
}
