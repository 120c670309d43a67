/**
 * The upgrade guide's step 1 for Cassandra (`from_jid` and its secondary index), checked through
 * `system_schema` and applied idempotently, plus the small table where our walks keep their place.
 */
import type { Client } from 'cassandra-driver';
import type { SchemaStatus } from '../../pipeline/types.js';

export const MESSAGE_TABLE = 'mam_muc_message';
export const CHECKPOINT_TABLE = 'mim_sender_jid_checkpoint';
/** The name `CREATE INDEX ON mam_muc_message (from_jid)` (the guide's statement) gives its index. */
export const FROM_JID_INDEX = 'mam_muc_message_from_jid_idx';

export function addColumnStatement(keyspace: string): string {
  return `ALTER TABLE ${keyspace}.${MESSAGE_TABLE} ADD from_jid varchar`;
}

export function createIndexStatement(keyspace: string): string {
  return `CREATE INDEX IF NOT EXISTS ${FROM_JID_INDEX} ON ${keyspace}.${MESSAGE_TABLE} (from_jid)`;
}

export function createCheckpointTableStatement(keyspace: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${keyspace}.${CHECKPOINT_TABLE} (` +
    'walk varchar PRIMARY KEY, last_token bigint, room_jid varchar, with_nick varchar, id bigint, updated_at timestamp)'
  );
}

interface Found {
  readonly hasColumn: boolean;
  readonly hasIndex: boolean;
}

async function inspect(client: Client, keyspace: string): Promise<Found> {
  const name = keyspace.toLowerCase(); // unquoted CQL identifiers are case-folded
  const columns = await client.execute('SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?', [name, MESSAGE_TABLE], {
    prepare: true,
  });
  if (columns.rows.length === 0) {
    throw new Error(
      `keyspace '${keyspace}' has no table ${MESSAGE_TABLE}: is it MongooseIM's MAM keyspace (--keyspace), with mod_mam_muc_cassandra_arch's schema?`,
    );
  }
  const hasColumn = columns.rows.some((r) => r['column_name'] === 'from_jid');
  const indexes = await client.execute('SELECT options FROM system_schema.indexes WHERE keyspace_name = ? AND table_name = ?', [name, MESSAGE_TABLE], {
    prepare: true,
  });
  // Any index on the column counts, whatever its name (the guide's statement leaves it unnamed).
  const hasIndex = indexes.rows.some((r) => (r['options'] as Record<string, string> | null)?.['target'] === 'from_jid');
  return { hasColumn, hasIndex };
}

export async function checkSchema(client: Client, keyspace: string): Promise<SchemaStatus> {
  const found = await inspect(client, keyspace);
  const missing: string[] = [];
  const statements: string[] = [];
  if (!found.hasColumn) {
    missing.push(`column from_jid of ${keyspace}.${MESSAGE_TABLE}`);
    statements.push(addColumnStatement(keyspace));
  }
  if (!found.hasIndex) {
    missing.push(`the secondary index on ${keyspace}.${MESSAGE_TABLE} (from_jid) (MongooseIM 3.4's GDPR lookup uses it)`);
    statements.push(createIndexStatement(keyspace));
  }
  return { ready: missing.length === 0, missing, statements };
}

/** Runs what is missing; the driver waits for schema agreement after each statement. */
export async function applySchema(client: Client, keyspace: string): Promise<string[]> {
  const { statements } = await checkSchema(client, keyspace);
  for (const statement of statements) await client.execute(statement);
  return statements;
}

/** How `id` is stored inside a partition: the walk's resume query depends on it. */
export type IdOrder = 'asc' | 'desc';

/**
 * The table's key as the walk needs it: partition key `(room_jid, with_nick)`, `id` the only
 * clustering column. MongooseIM's schema stores `id DESC`, but a table made by hand may say
 * `ASC`; the order is read here, not assumed, since resuming inside a partition with the wrong one
 * passes over the rest of that partition.
 */
export async function readIdOrder(client: Client, keyspace: string): Promise<IdOrder> {
  const table = `${keyspace}.${MESSAGE_TABLE}`;
  const columns = await client.execute(
    'SELECT column_name, kind, position, clustering_order FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?',
    [keyspace.toLowerCase(), MESSAGE_TABLE],
    { prepare: true },
  );
  if (columns.rows.length === 0) throw new Error(`keyspace '${keyspace}' has no table ${MESSAGE_TABLE}: is it MongooseIM's MAM keyspace (--keyspace)?`);
  const ofKind = (kind: string): string[] =>
    columns.rows
      .filter((r) => r['kind'] === kind)
      .sort((a, b) => Number(a['position']) - Number(b['position']))
      .map((r) => r['column_name'] as string);
  const partitionKey = ofKind('partition_key');
  const clustering = ofKind('clustering');
  if (partitionKey.join(',') !== 'room_jid,with_nick' || clustering.join(',') !== 'id') {
    throw new Error(
      `${table} has PRIMARY KEY ((${partitionKey.join(', ')})${clustering.map((c) => `, ${c}`).join('')}), ` +
        `not ((room_jid, with_nick), id) as MongooseIM's schema: refusing to walk a table of another shape`,
    );
  }
  const order = columns.rows.find((r) => r['column_name'] === 'id')?.['clustering_order'];
  if (order !== 'asc' && order !== 'desc') throw new Error(`${table}: unknown clustering order '${String(order)}' of id`);
  return order;
}
