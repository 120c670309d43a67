/**
 * One archive object as Riak's data type API shows it (`/types/T/buckets/B/datatypes/KEY`, docs
 * "HTTP Data Types", riak_kv_wm_crdt): a map whose registers appear as `<name>_register`, with
 * an opaque context to send back with the update.
 */
import { statusError, type RiakHttp } from './riak-http.js';

export const PACKET = 'packet_register';
export const MAM_TYPE = 'mam_type_register';
export const MSG_OWNER_JID = 'msg_owner_jid_register';

export type FetchedMap =
  | { readonly kind: 'map'; readonly registers: Readonly<Record<string, unknown>>; readonly context?: string }
  | { readonly kind: 'notfound' }
  /** Riak could not render the map as JSON (a register that is not UTF-8: an Erlang-term packet). */
  | { readonly kind: 'unrenderable'; readonly detail: string };

export interface MamWrite {
  readonly mamType: 'muc' | 'pm';
  readonly owner: string;
}

const enc = encodeURIComponent;

export function datatypePath(bucketType: string, bucket: string, key: string): string {
  // encodeURIComponent turns '/' into %2F, as Riak requires inside a key.
  return `/types/${enc(bucketType)}/buckets/${enc(bucket)}/datatypes/${enc(key)}`;
}

export async function fetchMap(http: RiakHttp, bucketType: string, bucket: string, key: string): Promise<FetchedMap> {
  const what = `fetching ${bucket}/${key}`;
  const response = await http.request('GET', datatypePath(bucketType, bucket, key));
  if (response.status === 404 && response.contentType.startsWith('application/json')) return { kind: 'notfound' };
  if (response.status === 500) {
    // mochijson2 exits on a binary that is not UTF-8, and webmachine answers 500: what an
    // Erlang-term packet register gives over this JSON API.
    return {
      kind: 'unrenderable',
      detail: `Riak answered 500 rendering it as JSON: ${response.body
        .toString('utf8')
        .replace(/<[^>]*>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 200)}`,
    };
  }
  if (response.status !== 200) throw statusError(what, response);
  const body = JSON.parse(response.body.toString('utf8')) as { type?: unknown; value?: unknown; context?: unknown };
  if (body.type !== 'map' || typeof body.value !== 'object' || body.value === null) {
    throw new Error(`${what}: not a map (type ${JSON.stringify(body.type)}): is --bucket-type the archive's type?`);
  }
  return { kind: 'map', registers: body.value as Record<string, unknown>, ...(typeof body.context === 'string' ? { context: body.context } : {}) };
}

export type UpdateOutcome = { readonly ok: true } | { readonly ok: false; readonly detail: string };

/** Assigns both registers; a 400 (Riak refusing this one update) is an outcome, anything else throws. */
export async function updateMap(
  http: RiakHttp,
  bucketType: string,
  bucket: string,
  key: string,
  write: MamWrite,
  context: string | undefined,
): Promise<UpdateOutcome> {
  const body = JSON.stringify({
    update: { [MAM_TYPE]: write.mamType, [MSG_OWNER_JID]: write.owner },
    ...(context === undefined ? {} : { context }),
  });
  const response = await http.request('POST', datatypePath(bucketType, bucket, key), { type: 'application/json', bytes: Buffer.from(body, 'utf8') });
  if (response.status === 204 || response.status === 200) return { ok: true };
  if (response.status === 400) return { ok: false, detail: `Riak refused the update: ${response.body.toString('utf8').trim().slice(0, 300)}` };
  throw statusError(`updating ${bucket}/${key}`, response);
}
