/** `migrate elasticsearch` / `verify elasticsearch`: flags, usage, and opening the backend. */
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, readCredentials, readTlsFiles } from '../credentials.js';
import { UsageError, type BackendDefinition, type FlagValues, type OpenContext } from '../registry.js';
import { checkUrl } from '../url-check.js';
import { ElasticsearchBackend } from './elasticsearch-backend.js';
import { DEFAULT_INDEX } from './index-layout.js';
import { PARTITION_COUNT } from './partition-plan.js';
import { SearchHttp } from './search-http.js';

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
  summary: 'Elasticsearch 6/7 or OpenSearch 1/2: set from_jid in the MUC archive index',
  flags: {
    index: { type: 'string' },
    type: { type: 'string' },
    ...CREDENTIAL_FLAGS,
  },
  usage: `  --url URL[,URL...]     Elasticsearch/OpenSearch nodes, e.g. http://127.0.0.1:9200
  --index NAME           MUC archive index (default ${DEFAULT_INDEX})
  --type NAME            mapping type of an Elasticsearch 5/6 typed index (MongooseIM 3.3: muc);
                         omit on Elasticsearch 7+ and OpenSearch
${CREDENTIAL_USAGE}`,
  async open(values: FlagValues, context: OpenContext) {
    const nodes = parseNodes(values.url as string | undefined);
    const index = (values.index as string | undefined) ?? DEFAULT_INDEX;
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
      `elasticsearch: ${http.describeNodes()}, index ${index}${type === undefined ? '' : `, type ${type}`}${credentials === undefined ? '' : `, as ${credentials.username}`}`,
    );
    return new ElasticsearchBackend(http, { index, ...(type === undefined ? {} : { type }) }, undefined, context.log);
  },
};

export default definition;
