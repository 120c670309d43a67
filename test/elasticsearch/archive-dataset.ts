/**
 * MongooseIM 3.3-shaped MUC archive documents for the Elasticsearch/OpenSearch suites: the
 * `muc_messages` mapping of MongooseIM's priv/elasticsearch (no from_jid yet), several shards,
 * `_id` = `room$mam_id` with ids beyond 2^53, and XML payloads written by a real Erlang VM
 * (erlang-payloads.escript). Failure kinds are made from those payloads: cut in half (malformed),
 * the item's jid removed (malformed) or replaced by a JID without local part, a chat message
 * (not groupchat, from Erlang directly), and a document without `message`.
 */
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';

export const ROOMS = ['coven@chat.shakespeare.lit', 'lobby@muc.example.com', 'pokój@konferencja.przykład.pl', 'r$dollar@muc.example.com'];
const FIRST_MAM_ID = 399582233150625537n;

export type Expectation = { readonly fromJid: string } | { readonly reason: NotWrittenReason };

export interface ArchiveDocument {
  readonly id: string;
  readonly mamId: bigint;
  readonly room: string;
  /** Undefined: the document has no `message` field; a number or an array: a `message` that is no string. */
  readonly message?: string | number | string[];
  readonly expected: Expectation;
}

/**
 * MongooseIM's muc mapping (3.3: without from_jid), typeless or under type `muc`. Elasticsearch's
 * `english` analyzer lives in its analysis-common module, which is not on Maven Central: the
 * Elasticsearch suites index `body` with `standard` (the backfill never reads `body`).
 */
export function mucMapping(typed: boolean, bodyAnalyzer = 'english'): object {
  const properties = {
    mam_id: { type: 'long' },
    room: { type: 'keyword' },
    source_jid: { type: 'keyword' },
    message: { type: 'text', index: false },
    body: { type: 'text', analyzer: bodyAnalyzer },
  };
  return typed ? { muc: { properties } } : { properties };
}

/**
 * `count` documents: about 1 in `failureEvery` of a failure kind (besides Erlang's 2% chats).
 * Ids ascend with gaps, rooms interleave. Seeded; the seed is printed by the caller.
 * `distinctPayloads` bounds how many payloads Erlang makes (documents cycle through them, each
 * with its own id, room and failure kind): 100,000 messages x 3 encodings take Erlang minutes on
 * a busy 2-core machine, 20,000 take seconds.
 */
export function buildArchive(count: number, seed: number, failureEvery = 40, distinctPayloads = count): ArchiveDocument[] {
  const rand = seededRandom(seed);
  const xml = erlangRandomMessages(Math.max(1, Math.min(count, distinctPayloads)), seed).filter((r) => r.format === 'xml');
  const docs: ArchiveDocument[] = [];
  let mamId = FIRST_MAM_ID;
  for (let i = 0; i < count; i++) {
    const record = xml[i % xml.length];
    mamId += BigInt(1 + Math.floor(rand() * 5000)) << 8n;
    const room = ROOMS[i % ROOMS.length];
    const id = `${room}$${mamId}`;
    const text = Buffer.from(record.payload).toString('utf8');
    const base = { id, mamId, room };
    const kind = rand() < 1 / failureEvery ? Math.floor(rand() * 4) : -1;
    if (kind === 0) docs.push({ ...base, message: text.slice(0, Math.floor(text.length / 2)), expected: { reason: 'malformed' } });
    else if (kind === 1 && text.includes(" jid='")) docs.push({ ...base, message: text.replace(/ jid='[^']*'/, ''), expected: { reason: 'malformed' } });
    else if (kind === 2 && text.includes(" jid='"))
      docs.push({ ...base, message: text.replace(/ jid='[^']*'/, " jid='Example.COM/res'"), expected: { reason: 'jid_without_local_part' } });
    else if (kind === 3) {
      // No message at all, or one that is not a string (the mapping's text field takes both).
      const odd = i % 3;
      docs.push({ ...base, ...(odd === 0 ? {} : { message: odd === 1 ? 42 : [text] }), expected: { reason: 'malformed' } });
    } else if ('jid' in record.expected) docs.push({ ...base, message: text, expected: { fromJid: record.expected.jid } });
    else docs.push({ ...base, message: text, expected: { reason: record.expected.code === '-2' ? 'not_groupchat' : 'malformed' } });
  }
  return docs;
}

async function call(url: string, method: string, path: string, body?: string, contentType = 'application/json'): Promise<unknown> {
  const response = await fetch(url + path, { method, body, headers: body === undefined ? {} : { 'content-type': contentType } });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 500)}`);
  return text === '' ? null : JSON.parse(text);
}

export interface CreateOptions {
  readonly index: string;
  readonly shards?: number;
  /** Elasticsearch 6: MongooseIM's mapping type `muc`. */
  readonly typed?: boolean;
  readonly bodyAnalyzer?: string;
}

/** Creates the index with MongooseIM's mapping and bulk-loads the documents (ids kept exact). */
export async function loadArchive(url: string, docs: readonly ArchiveDocument[], options: CreateOptions): Promise<void> {
  await call(
    url,
    'PUT',
    `/${options.index}`,
    JSON.stringify({
      // No refresh while loading (much faster on a busy machine); 1 s, the default, once loaded.
      settings: { number_of_shards: options.shards ?? 3, number_of_replicas: 0, refresh_interval: '-1' },
      mappings: mucMapping(options.typed === true, options.bodyAnalyzer),
    }),
  );
  const CHUNK = 5000;
  for (let start = 0; start < docs.length; start += CHUNK) {
    const lines: string[] = [];
    for (const d of docs.slice(start, start + CHUNK)) {
      lines.push(JSON.stringify({ index: { _id: d.id, ...(options.typed ? { _type: 'muc' } : {}) } }));
      const source = JSON.stringify({ room: d.room, source_jid: `${d.room}/nick`, ...(d.message === undefined ? {} : { message: d.message }), body: 'hello' });
      // mam_id spliced in as a JSON number literal: exact beyond 2^53.
      lines.push(`{"mam_id":${d.mamId},${source.slice(1)}`);
    }
    const answer = (await call(url, 'POST', `/${options.index}/_bulk`, lines.join('\n') + '\n', 'application/x-ndjson')) as {
      errors: boolean;
      items: unknown[];
    };
    if (answer.errors)
      throw new Error(`loading ${options.index}: bulk errors: ${JSON.stringify(answer.items.find((i) => JSON.stringify(i).includes('error'))).slice(0, 500)}`);
  }
  await call(url, 'PUT', `/${options.index}/_settings`, JSON.stringify({ index: { refresh_interval: '1s' } }));
  await call(url, 'POST', `/${options.index}/_refresh`);
}

/** `_id` -> `from_jid` (or undefined) of every document, read after a refresh. */
export async function readFromJids(url: string, index: string): Promise<Map<string, string | undefined>> {
  await call(url, 'POST', `/${index}/_refresh`);
  const out = new Map<string, string | undefined>();
  let after: unknown[] | undefined;
  for (let round = 0; round < 10_000; round++) {
    const page = (await call(
      url,
      'POST',
      `/${index}/_search`,
      JSON.stringify({
        size: 5000,
        _source: ['from_jid'],
        sort: [{ room: 'asc' }, { mam_id: 'asc' }],
        docvalue_fields: [{ field: 'mam_id', format: '0' }],
        ...(after ? { search_after: after } : {}),
      }),
    )) as { hits: { hits: { _id: string; _source?: { from_jid?: string }; sort: unknown[]; fields: { mam_id: string[] } }[] } };
    const hits = page.hits.hits;
    for (const h of hits) out.set(h._id, h._source?.from_jid);
    if (hits.length < 5000) return out;
    const last = hits[hits.length - 1];
    after = [last.sort[0], last.fields.mam_id[0]];
  }
  throw new Error('readFromJids: too many pages');
}

/** Every document as expected: written ones hold their JID, the others have no from_jid. */
export function mismatches(docs: readonly ArchiveDocument[], stored: Map<string, string | undefined>): string[] {
  const wrong: string[] = [];
  for (const d of docs) {
    const want = 'fromJid' in d.expected ? d.expected.fromJid : undefined;
    if (!stored.has(d.id)) wrong.push(`${d.id}: missing`);
    else if (stored.get(d.id) !== want) wrong.push(`${d.id}: from_jid ${JSON.stringify(stored.get(d.id))}, expected ${JSON.stringify(want)}`);
  }
  if (stored.size !== docs.length) wrong.push(`index holds ${stored.size} documents, expected ${docs.length}`);
  return wrong;
}

export { call as searchCall };
