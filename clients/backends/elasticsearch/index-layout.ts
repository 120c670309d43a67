/**
 * Where the walked archive lives in the cluster and the one mapping change its upgrade needs
 * (walk-target.ts: `from_jid` in the MUC archive, `is_groupchat` in the one-to-one archive).
 * MongooseIM 3.3 wrote index `muc_messages` with mapping type `muc` (Elasticsearch 5/6);
 * Elasticsearch 7+ and OpenSearch indices are typeless. `--type` says which one we talk to.
 */
import { SchemaNotReadyError } from '../../pipeline/run-migration.js';
import type { SchemaStatus } from '../../pipeline/types.js';
import { UsageError } from '../registry.js';
import { SearchHttp, errorOf } from './search-http.js';
import { SENDER_WALK, type WalkTarget } from './walk-target.js';

/**
 * `from_jid` is mapped, but not as a keyword: the schema step cannot be done by adding a field
 * (a mapping field cannot change type in place), so it is the schema step's status (4), with
 * its own words instead of a request to run.
 */
export class MappingConflictError extends SchemaNotReadyError {
  constructor(
    backendName: string,
    readonly reason: string,
  ) {
    super(backendName, [reason], []);
    this.message = `the ${backendName} archive is not ready for the backfill: ${reason}`;
    this.name = 'MappingConflictError';
  }
}

export const DEFAULT_INDEX = SENDER_WALK.defaultIndex;

export interface IndexLayout {
  readonly index: string;
  /** Mapping type (`muc`, `pm`) for Elasticsearch 5/6 typed indices, undefined for typeless ones. */
  readonly type?: string;
  /** What the walk fills (the sender's `from_jid` when absent). */
  readonly target?: WalkTarget;
}

export function targetOf(layout: IndexLayout): WalkTarget {
  return layout.target ?? SENDER_WALK;
}

/** The mapping the walk's field needs, as the request body's `properties`. */
function fieldMapping(layout: IndexLayout): Record<string, { type: string }> {
  const target = targetOf(layout);
  return { [target.field]: { type: target.fieldType } };
}

export function indexPath(layout: IndexLayout): string {
  return `/${encodeURIComponent(layout.index)}`;
}

export function mappingUpdatePath(layout: IndexLayout): string {
  return layout.type === undefined ? `${indexPath(layout)}/_mapping` : `${indexPath(layout)}/_mapping/${encodeURIComponent(layout.type)}`;
}

/** The request that adds the walk's field, as the operator would send it. */
export function mappingRequest(layout: IndexLayout): string {
  return `PUT ${mappingUpdatePath(layout)} ${JSON.stringify({ properties: fieldMapping(layout) })}`;
}

type Properties = Record<string, { type?: string } | undefined>;
type MappingsOf = Record<string, { mappings?: Record<string, unknown> }>;

/** The index's field mappings; throws a clear error when the index is missing or the type is wrong. */
async function readProperties(http: SearchHttp, layout: IndexLayout): Promise<Properties> {
  const response = await http.request<MappingsOf>('GET', `${indexPath(layout)}/_mapping`);
  if (response.status === 404)
    throw new Error(
      `index '${layout.index}' does not exist on ${http.describeNodes()} (--index names MongooseIM's ${targetOf(layout).archive} index, default ${targetOf(layout).defaultIndex})`,
    );
  if (response.status >= 300) throw errorOf('GET', `${indexPath(layout)}/_mapping`, response);
  // An alias (or a pattern) answers with the concrete indices' names: a walk, its checkpoints and
  // the mapping change are for one index, and writes through an alias over several fail or land
  // in whichever index is the write index.
  const indices = Object.keys(response.body).sort();
  if (indices.length !== 1) {
    throw new UsageError(
      `--index '${layout.index}' names ${indices.length} indices (${indices.slice(0, 10).join(', ')}${indices.length > 10 ? ', ...' : ''}): run once per index, with --index set to each one's own name`,
    );
  }
  if (indices[0] !== layout.index) await checkWriteIndex(http, layout, indices[0]);
  const concrete = Object.values(response.body)[0];
  const mappings = concrete?.mappings ?? {};
  const typed = Object.keys(mappings).filter(
    (k) => k !== 'properties' && k !== '_doc' && typeof mappings[k] === 'object' && mappings[k] !== null && 'properties' in (mappings[k] as object),
  );
  if (layout.type === undefined) {
    if (!('properties' in mappings) && typed.length > 0) {
      throw new Error(`index '${layout.index}' has mapping type '${typed[0]}' (an Elasticsearch 5/6 typed index): add --type ${typed[0]}`);
    }
    return (mappings.properties ?? (mappings._doc as { properties?: Properties } | undefined)?.properties ?? {}) as Properties;
  }
  const ofType = mappings[layout.type] as { properties?: Properties } | undefined;
  if (ofType === undefined) {
    throw new Error(
      `index '${layout.index}' has no mapping type '${layout.type}'${'properties' in mappings ? ' (it is typeless, as on Elasticsearch 7+ and OpenSearch): drop --type' : ''}`,
    );
  }
  return ofType.properties ?? {};
}

/** An alias over one index must let writes through (`is_write_index` not false). */
async function checkWriteIndex(http: SearchHttp, layout: IndexLayout, concrete: string): Promise<void> {
  const response = await http.request<Record<string, { aliases?: Record<string, { is_write_index?: boolean }> }>>(
    'GET',
    `/_alias/${encodeURIComponent(layout.index)}`,
  );
  if (response.status >= 300) return; // not an alias after all
  if (response.body[concrete]?.aliases?.[layout.index]?.is_write_index === false) {
    throw new UsageError(`--index '${layout.index}' is an alias of index '${concrete}' without a write index: run with --index ${concrete}`);
  }
}

/** The schema step's status, and the type the walk's field is mapped as (when mapped). */
export interface MappingStatus extends SchemaStatus {
  readonly mappedAs?: string;
}

export async function checkMapping(http: SearchHttp, layout: IndexLayout): Promise<MappingStatus> {
  const properties = await readProperties(http, layout);
  const target = targetOf(layout);
  if (target !== SENDER_WALK) checkKeyField(layout, target, properties);
  const mapped = properties[target.field];
  if (mapped === undefined) {
    return {
      ready: false,
      missing: [`field ${target.field} (${target.fieldType}) in the mapping of index '${layout.index}'`],
      statements: [mappingRequest(layout)],
      ...(target === SENDER_WALK ? {} : { guide: "MongooseIM 6.2.1's mapping (priv/elasticsearch/pm.json)" }),
    };
  }
  if (mapped.type !== undefined && target.textTypes.includes(mapped.type)) return { ready: true, missing: [], statements: [], mappedAs: mapped.type };
  if (mapped.type !== target.fieldType) {
    throw new MappingConflictError(
      'elasticsearch',
      `index '${layout.index}' maps ${target.field} as '${mapped.type ?? 'object'}', not ${target.fieldType} (${target.neededBy}, and a field's type cannot change in place): reindex into an index whose mapping has ${target.field} as ${target.fieldType}, then run the backfill on it`,
    );
  }
  return { ready: true, missing: [], statements: [], mappedAs: mapped.type };
}

/**
 * The walk sorts on its key field: an index without it as a keyword is not the archive this walk
 * is for (the MUC archive given to the is_groupchat walk, say), and nothing is changed in it.
 */
function checkKeyField(layout: IndexLayout, target: WalkTarget, properties: Properties): void {
  const key = properties[target.keyField];
  if (key?.type === 'keyword') return;
  throw new UsageError(
    `index '${layout.index}' has no keyword field ${target.keyField}${key === undefined ? '' : ` (it maps it as '${key.type ?? 'object'}')`}: it is not MongooseIM's ${target.archive}, which the ${target.field} walk fills (default index ${target.defaultIndex})`,
  );
}

/** Adds the walk's field when missing; idempotent (a mapping that has it is left alone). */
export async function applyMapping(http: SearchHttp, layout: IndexLayout): Promise<string[]> {
  const status = await checkMapping(http, layout);
  if (status.ready) return [];
  await http.ok('PUT', mappingUpdatePath(layout), { properties: fieldMapping(layout) });
  return status.statements;
}
