/** `migrate elasticsearch` / `verify elasticsearch`: flags, usage, and opening the backend. */
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, readCredentials, readTlsFiles } from '../credentials.js';
import { UsageError, type BackendDefinition, type FlagValues, type OpenContext } from '../registry.js';
import { checkUrl } from '../url-check.js';
import { ElasticsearchBackend } from './elasticsearch-backend.js';
import { PARTITION_COUNT } from './partition-plan.js';
import { SearchHttp } from './search-http.js';
import { GROUPCHAT_WALK, SENDER_WALK, type WalkTarget } from './walk-target.js';

/** `--field`: the sender (3.4, the MUC archive) or is_groupchat (6.2.1, the one-to-one archive). */
function walkOf(field: unknown): WalkTarget {
  if (field === undefined || field === 'sender') return SENDER_WALK;
  if (field === 'is_groupchat') return GROUPCHAT_WALK;
  if (field === 'origin_id') {
    throw new UsageError(
      "--field origin_id: MongooseIM's search archives store no origin_id (retraction by origin-id needs an RDBMS archive), so there is nothing to backfill: use sender or is_groupchat",
    );
  }
  throw new UsageError(`--field must be sender or is_groupchat for elasticsearch, got '${String(field)}'`);
}

/** Nodes from `--url`: comma-separated http(s) URLs, without credentials in them. */
export function parseNodes(url: string | undefined): URL[] {
  if (url === undefined || url.trim() === '') throw new UsageError('elasticsearch needs --url http://HOST:9200 (several nodes: comma-separated)');
  const parts = url.split(',');
  return parts.map((part, i) =>
    checkUrl(parts.length === 1 ? '--url' : `--url (node ${i + 1})`, part.trim(), {
      schemes: ['http', 'https'],
      example: 'http://HOST:9200',
      credentialsElsewhere: 'use --username and --password-file',
    }),
  );
}

const definition: BackendDefinition = {
  kind: 'elasticsearch',
  maxShards: PARTITION_COUNT,
  summary: 'Elasticsearch 6/7 or OpenSearch 1/2: set from_jid in the MUC archive index (--field: is_groupchat)',
  flags: {
    index: { type: 'string' },
    type: { type: 'string' },
    field: { type: 'string' },
    ...CREDENTIAL_FLAGS,
  },
  usage: `  --url URL[,URL...]     Elasticsearch/OpenSearch nodes, e.g. http://127.0.0.1:9200
  --field F              what to backfill: sender (default: from_jid in the MUC archive, 3.4) or
                         is_groupchat (the one-to-one archive, 6.2.1)
  --index NAME           the archive index (default ${SENDER_WALK.defaultIndex}; ${GROUPCHAT_WALK.defaultIndex} for --field is_groupchat)
  --type NAME            mapping type of an Elasticsearch 5/6 typed index (MongooseIM: muc, or pm
                         for the one-to-one archive); omit on Elasticsearch 7+ and OpenSearch
${CREDENTIAL_USAGE}`,
  async open(values: FlagValues, context: OpenContext) {
    const nodes = parseNodes(values.url as string | undefined);
    const target = walkOf(values.field);
    const index = (values.index as string | undefined) ?? target.defaultIndex;
    // `_all`, `-x`, `+x`, wildcards and lists name many indices (a mapping change would reach every one).
    if (index === '' || /^[_\-+]/.test(index) || /[\s,*"<>|?\\/#:]/.test(index)) {
      throw new UsageError(`--index: '${index}' is not the name of one index (no leading _ - or +, no wildcards, commas, spaces or any of " < > | ? \\ / # :)`);
    }
    const type = values.type as string | undefined;
    if (type !== undefined && !/^[A-Za-z0-9_-]+$/.test(type)) throw new UsageError(`--type: '${type}' is not a mapping type name`);
    const credentials = readCredentials(values);
    const tls = readTlsFiles(values);
    if (tls !== undefined && nodes.some((n) => n.protocol !== 'https:')) throw new UsageError('--tls-* given but --url is not https://');
    const http = new SearchHttp({ nodes, credentials, tls, maxSockets: Math.max(4, context.concurrency * 2) });
    context.log(
      `elasticsearch: ${http.describeNodes()}, index ${index}${type === undefined ? '' : `, type ${type}`}${target === SENDER_WALK ? '' : `, field ${target.field}`}${credentials === undefined ? '' : `, as ${credentials.username}`}`,
    );
    const layout = { index, ...(type === undefined ? {} : { type }), ...(target === SENDER_WALK ? {} : { target }) };
    return new ElasticsearchBackend(http, layout, undefined, context.log);
  },
};

export default definition;
