/**
 * Where MongooseIM's MUC archive lives in the cluster and the one mapping change the upgrade
 * needs. MongooseIM 3.3 wrote index `muc_messages` with mapping type `muc` (Elasticsearch 5/6);
 * Elasticsearch 7+ and OpenSearch indices are typeless. `--type` says which one we talk to.
 */
import type { SchemaStatus } from '../../pipeline/types.js';
import { SearchHttp, errorOf } from './search-http.js';

export const DEFAULT_INDEX = 'muc_messages';
export const FROM_JID_MAPPING = { from_jid: { type: 'keyword' } } as const;

export interface IndexLayout {
  readonly index: string;
  /** Mapping type (`muc`) for Elasticsearch 5/6 typed indices, undefined for typeless ones. */
  readonly type?: string;
}

export function indexPath(layout: IndexLayout): string {
  return `/${encodeURIComponent(layout.index)}`;
}

export function mappingUpdatePath(layout: IndexLayout): string {
  return layout.type === undefined ? `${indexPath(layout)}/_mapping` : `${indexPath(layout)}/_mapping/${encodeURIComponent(layout.type)}`;
}

/** The request that adds `from_jid`, as the operator would send it. */
export function mappingRequest(layout: IndexLayout): string {
  return `PUT ${mappingUpdatePath(layout)} ${JSON.stringify({ properties: FROM_JID_MAPPING })}`;
}

type Properties = Record<string, { type?: string } | undefined>;
type MappingsOf = Record<string, { mappings?: Record<string, unknown> }>;

/** The index's field mappings; throws a clear error when the index is missing or the type is wrong. */
async function readProperties(http: SearchHttp, layout: IndexLayout): Promise<Properties> {
  const response = await http.request<MappingsOf>('GET', `${indexPath(layout)}/_mapping`);
  if (response.status === 404) throw new Error(`index '${layout.index}' does not exist on ${http.describeNodes()} (--index names MongooseIM's MUC archive index, default ${DEFAULT_INDEX})`);
  if (response.status >= 300) throw errorOf('GET', `${indexPath(layout)}/_mapping`, response);
  // An alias answers with the concrete index's name.
  const concrete = Object.values(response.body)[0];
  const mappings = concrete?.mappings ?? {};
  const typed = Object.keys(mappings).filter((k) => k !== 'properties' && k !== '_doc' && typeof mappings[k] === 'object' && mappings[k] !== null && 'properties' in (mappings[k] as object));
  if (layout.type === undefined) {
    if (!('properties' in mappings) && typed.length > 0) {
      throw new Error(`index '${layout.index}' has mapping type '${typed[0]}' (an Elasticsearch 5/6 typed index): add --type ${typed[0]}`);
    }
    return (mappings.properties ?? (mappings._doc as { properties?: Properties } | undefined)?.properties ?? {}) as Properties;
  }
  const ofType = mappings[layout.type] as { properties?: Properties } | undefined;
  if (ofType === undefined) {
    throw new Error(`index '${layout.index}' has no mapping type '${layout.type}'${'properties' in mappings ? ' (it is typeless, as on Elasticsearch 7+ and OpenSearch): drop --type' : ''}`);
  }
  return ofType.properties ?? {};
}

export async function checkMapping(http: SearchHttp, layout: IndexLayout): Promise<SchemaStatus> {
  const properties = await readProperties(http, layout);
  const fromJid = properties.from_jid;
  if (fromJid === undefined) {
    return { ready: false, missing: [`field from_jid (keyword) in the mapping of index '${layout.index}'`], statements: [mappingRequest(layout)] };
  }
  if (fromJid.type !== 'keyword') {
    throw new Error(`index '${layout.index}' maps from_jid as '${fromJid.type ?? 'object'}', not keyword: MongooseIM 3.4 queries it with a term filter; fix the mapping (reindex) before the backfill`);
  }
  return { ready: true, missing: [], statements: [] };
}

/** Adds `from_jid` when missing; idempotent (a mapping that has it is left alone). */
export async function applyMapping(http: SearchHttp, layout: IndexLayout): Promise<string[]> {
  const status = await checkMapping(http, layout);
  if (status.ready) return [];
  await http.ok('PUT', mappingUpdatePath(layout), { properties: FROM_JID_MAPPING });
  return status.statements;
}
