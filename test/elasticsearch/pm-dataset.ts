/**
 * MongooseIM 6.2.0-shaped one-to-one archive documents (index `messages`, MongooseIM's
 * priv/elasticsearch/pm.json before 6.2.1 added `is_groupchat`), for the `--field is_groupchat`
 * suites: `_id` = `owner$mam_id`, the XML payloads and their is_groupchat answers made by a real
 * Erlang VM with MongooseIM's own function (test/support/erlang-fields.ts), some documents sharing
 * a `mam_id` under different owners, and a few that cannot be decoded (cut in half, no message,
 * a message that is no string).
 */
import { erlangFieldCases, erlangFieldMessages } from '../support/erlang-fields.js';
import { searchCall } from './archive-dataset.js';

export const OWNERS = ['alice@localhost', 'bob@example.com', 'żółw@przykład.pl'];
const FIRST_MAM_ID = 399582233150625537n;

export interface PmDocument {
  readonly id: string;
  readonly mamId: bigint;
  readonly owner: string;
  /** Undefined: no `message` field. */
  readonly message?: string | number;
  /** MongooseIM's is_groupchat for the payload, or 'malformed' (the walk reports it and leaves it without the field). */
  readonly expected: boolean | 'malformed';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Every Erlang-made XML payload (named cases and `messages` random ones), each a document, plus three undecodable ones. */
export function buildPmArchive(messages: number, seed: number): PmDocument[] {
  const xml = [...erlangFieldCases(), ...erlangFieldMessages(messages, seed)].filter((r) => r.format === 'xml');
  const docs: PmDocument[] = [];
  let mamId = FIRST_MAM_ID;
  const push = (message: string | number | undefined, expected: boolean | 'malformed'): void => {
    const owner = OWNERS[docs.length % OWNERS.length];
    // Every fifth document shares the previous one's mam_id (another owner): the walk's key is (mam_id, owner).
    if (docs.length % 5 !== 4) mamId += BigInt(1 + (docs.length % 7)) << 8n;
    docs.push({ id: `${owner}$${mamId}`, mamId, owner, ...(message === undefined ? {} : { message }), expected });
  };
  for (const r of xml) {
    // A search document holds text: only payloads that are UTF-8 can be stored as MongooseIM stores them.
    let text: string;
    try {
      text = utf8.decode(r.payload);
    } catch {
      continue;
    }
    push(text, r.isGroupchat);
  }
  const groupchat = xml.find((r) => r.isGroupchat === true)!;
  const text = utf8.decode(groupchat.payload);
  push(text.slice(0, Math.floor(text.length / 2)), 'malformed');
  push(undefined, 'malformed');
  push(42, 'malformed');
  return docs;
}

/** MongooseIM's `pm` mapping: 6.2.0's, or 6.2.1's with `is_groupchat`; typeless, or under type `pm` (Elasticsearch 6). */
export function pmMapping(bodyAnalyzer: string, withGroupchat = false, typed = false): object {
  const mapping = {
    properties: {
      mam_id: { type: 'long' },
      owner: { type: 'keyword' },
      remote: { type: 'keyword' },
      source_jid: { type: 'keyword', index: false },
      message: { type: 'text', index: false },
      body: { type: 'text', analyzer: bodyAnalyzer },
      ...(withGroupchat ? { is_groupchat: { type: 'boolean' } } : {}),
    },
  };
  return typed ? { pm: mapping } : mapping;
}

/** A document as MongooseIM writes it (6.2.1 adds `is_groupchat`, sent as the string "true"/"false"). */
function sourceLine(d: PmDocument, isGroupchat?: 'true' | 'false'): string {
  const source = JSON.stringify({
    owner: d.owner,
    remote: 'carol@localhost',
    source_jid: 'carol@localhost/phone',
    ...(d.message === undefined ? {} : { message: d.message }),
    body: 'hi',
    ...(isGroupchat === undefined ? {} : { is_groupchat: isGroupchat }),
  });
  // mam_id spliced in as a JSON number literal: exact beyond 2^53.
  return `{"mam_id":${d.mamId},${source.slice(1)}`;
}

export async function createPmIndex(url: string, index: string, bodyAnalyzer: string, shards = 3, typed = false): Promise<void> {
  await searchCall(
    url,
    'PUT',
    `/${index}`,
    JSON.stringify({ settings: { number_of_shards: shards, number_of_replicas: 0 }, mappings: pmMapping(bodyAnalyzer, false, typed) }),
  );
}

/** Bulk-loads documents (with `isGroupchat`: as MongooseIM 6.2.1 writes them), then refreshes. */
export async function loadPmDocuments(
  url: string,
  index: string,
  docs: readonly PmDocument[],
  isGroupchat?: (d: PmDocument) => 'true' | 'false',
  typed = false,
): Promise<void> {
  const lines: string[] = [];
  for (const d of docs) {
    lines.push(JSON.stringify({ index: { _id: d.id, ...(typed ? { _type: 'pm' } : {}) } }));
    lines.push(sourceLine(d, isGroupchat?.(d)));
  }
  const answer = (await searchCall(url, 'POST', `/${index}/_bulk`, lines.join('\n') + '\n', 'application/x-ndjson')) as { errors: boolean; items: unknown[] };
  if (answer.errors) throw new Error(`loading ${index}: ${JSON.stringify(answer.items.find((i) => JSON.stringify(i).includes('error'))).slice(0, 500)}`);
  await searchCall(url, 'POST', `/${index}/_refresh`);
}

/** `_id` -> `is_groupchat` as stored in `_source` (undefined: absent), after a refresh. */
export async function readGroupchats(url: string, index: string): Promise<Map<string, unknown>> {
  await searchCall(url, 'POST', `/${index}/_refresh`);
  const body = (await searchCall(url, 'POST', `/${index}/_search`, JSON.stringify({ size: 10_000, _source: ['is_groupchat'] }))) as {
    hits: { hits: { _id: string; _source?: { is_groupchat?: unknown } }[] };
  };
  return new Map(body.hits.hits.map((h) => [h._id, h._source?.is_groupchat]));
}

/**
 * The ids MongooseIM 6.2.1 answers for `owner` when the client asks without groupchat messages:
 * its own filter, `term: {is_groupchat: "false"}` beside the owner's term.
 */
export async function withoutGroupchat(url: string, index: string, owner: string): Promise<string[]> {
  await searchCall(url, 'POST', `/${index}/_refresh`);
  const body = (await searchCall(
    url,
    'POST',
    `/${index}/_search`,
    JSON.stringify({ size: 10_000, _source: false, query: { bool: { filter: [{ term: { owner } }, { term: { is_groupchat: 'false' } }] } } }),
  )) as { hits: { hits: { _id: string }[] } };
  return body.hits.hits.map((h) => h._id).sort();
}
