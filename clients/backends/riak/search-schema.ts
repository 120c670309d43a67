/**
 * The upgrade guide's Riak step 1: upload MongooseIM 3.4's `tools/mam_search_schema.xml` as the
 * search schema `mam`. The file is the operator's (we do not ship MongooseIM's). The second half
 * of the step, reloading the index, only a Riak node's console can do: we print it.
 */
import { RiakHttpError, statusError, type RiakHttp } from './riak-http.js';

export const SCHEMA_NAME = 'mam';
export const NEW_FIELDS = ['msg_owner_jid_register', 'mam_type_register'] as const;
const SCHEMA_PATH = `/search/schema/${SCHEMA_NAME}`;

export const RELOAD_STEP =
  'On one Riak node, in its Erlang console (riak attach): yz_index:reload(<<"mam">>). ' +
  '(or restart the Riak nodes one at a time). Objects updated before that reload are not indexed by the new fields: reload before the backfill.';

/** The field names a schema declares with `<field name="...">`. */
export function declaredFields(schema: string): Set<string> {
  return new Set([...schema.matchAll(/<field\b[^>]*\bname\s*=\s*["']([^"']+)["']/g)].map((m) => m[1]));
}

export function missingFields(schema: string): string[] {
  const fields = declaredFields(schema);
  return NEW_FIELDS.filter((f) => !fields.has(f));
}

/** The schema stored in Riak, or null when there is none. */
export async function readSchema(http: RiakHttp): Promise<Buffer | null> {
  const response = await http.request('GET', SCHEMA_PATH);
  if (response.status === 404) return null;
  if (response.status !== 200) throw statusError(`reading search schema '${SCHEMA_NAME}'`, response);
  return response.body;
}

/** Uploads `file` unless Riak holds the same bytes already; checks it by reading it back. */
export async function uploadSchema(http: RiakHttp, file: Buffer, fileName: string): Promise<'uploaded' | 'unchanged'> {
  const missing = missingFields(file.toString('utf8'));
  if (missing.length > 0) {
    throw new RiakHttpError(
      `--apply-schema ${fileName}: the file declares no field ${missing.join(' or ')}: ` + "is it MongooseIM 3.4's tools/mam_search_schema.xml?",
      0,
      false,
    );
  }
  const before = await readSchema(http);
  if (before !== null && before.equals(file)) return 'unchanged';
  const response = await http.request('PUT', SCHEMA_PATH, { type: 'application/xml', bytes: file });
  if (response.status !== 204 && response.status !== 200) throw statusError(`uploading search schema '${SCHEMA_NAME}'`, response);
  const after = await readSchema(http);
  if (after === null || !after.equals(file)) {
    throw new RiakHttpError(
      `uploading search schema '${SCHEMA_NAME}': reading it back gave ${after === null ? 'nothing' : 'other bytes'} than ${fileName}`,
      0,
      false,
    );
  }
  return 'uploaded';
}
