/**
 * `mim-sender-jid migrate riak --url https://HOST:8098[,https://HOST2:8098] ...`: the Riak
 * backend's flags and how to open it. See clients/backends/riak/README.md.
 */
import { readFileSync } from 'node:fs';
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, readCredentials, readTlsFiles } from '../credentials.js';
import { UsageError, type BackendDefinition, type FlagValues, type OpenContext } from '../registry.js';
import { checkUrl } from '../url-check.js';
import type { ListingMode } from './key-listing.js';
import { RiakHttp } from './riak-http.js';
import { RiakBackend } from './riak-backend.js';

export const DEFAULT_BUCKET_TYPE = 'mam_yz';
export const DEFAULT_REQUEST_CONCURRENCY = 16;
export const MAX_REQUEST_CONCURRENCY = 256;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const USAGE = `  --url URL[,URL...]     Riak nodes' HTTP(S) listeners (http(s)://HOST:8098), used in turn
  --bucket-type T        bucket type of the archive (default ${DEFAULT_BUCKET_TYPE})
  --listing stream|2i    how keys are listed: streamed key listing (default, any storage
                         backend) or pages of the $bucket index (LevelDB or memory backend only)
  --request-concurrency N  fetches and updates in flight per page (default ${DEFAULT_REQUEST_CONCURRENCY})
  --request-timeout MS   a request with no answer for this long is retried (default ${DEFAULT_REQUEST_TIMEOUT_MS})
  --apply-schema FILE    upload FILE (MongooseIM 3.4's tools/mam_search_schema.xml) as search
                         schema 'mam', check it, and print the index reload step
${CREDENTIAL_USAGE}`;

function parseNodes(raw: string | undefined): URL[] {
  if (raw === undefined || raw === '') throw new UsageError('--url is required: the Riak nodes, e.g. --url https://riak1:8098,https://riak2:8098');
  const parts = raw.split(',');
  return parts.map((part, i) =>
    checkUrl(parts.length === 1 ? '--url' : `--url (node ${i + 1})`, part.trim(), {
      schemes: ['http', 'https'],
      example: 'https://HOST:8098',
      credentialsElsewhere: 'use --username with --password-file or the environment',
    }),
  );
}

function parseCount(flag: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) throw new UsageError(`--${flag} must be an integer from 1 to ${max}, got '${raw}'`);
  return n;
}

function readSchemaFile(value: string | boolean | undefined): { name: string; bytes: Buffer } | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true || value === '') throw new UsageError('--apply-schema needs the schema file: --apply-schema PATH/TO/mam_search_schema.xml');
  try {
    return { name: value, bytes: readFileSync(value) };
  } catch (error) {
    throw new UsageError(`--apply-schema: cannot read ${value}: ${(error as Error).message}`);
  }
}

async function open(values: FlagValues, context: OpenContext) {
  const nodes = parseNodes(values.url as string | undefined);
  if (values.format === 'eterm') {
    throw new UsageError("--format eterm: Riak's HTTP JSON API cannot carry Erlang-term packets; MongooseIM stores XML in Riak by default");
  }
  const credentials = readCredentials(values);
  const tls = readTlsFiles(values);
  const plain = nodes.filter((n) => n.protocol === 'http:');
  if (credentials !== undefined && plain.length > 0) {
    throw new UsageError(`--username over ${plain[0].origin} would send the password in clear; Riak security answers plain HTTP with 426: use https://`);
  }
  if (tls !== undefined && plain.length > 0) throw new UsageError(`--tls-* flags need https:// URLs, got ${plain[0].origin}`);
  const listing = (values.listing as string | undefined) ?? 'stream';
  if (listing !== 'stream' && listing !== '2i') throw new UsageError(`--listing must be stream or 2i, got '${listing}'`);
  const requestConcurrency = parseCount(
    'request-concurrency',
    values['request-concurrency'] as string | undefined,
    DEFAULT_REQUEST_CONCURRENCY,
    MAX_REQUEST_CONCURRENCY,
  );
  const timeoutMs = parseCount('request-timeout', values['request-timeout'] as string | undefined, DEFAULT_REQUEST_TIMEOUT_MS, 3_600_000);
  const schemaFile = readSchemaFile(values['apply-schema'] as string | boolean | undefined);
  const http = new RiakHttp({
    nodes,
    ...(credentials === undefined ? {} : { credentials }),
    ...(tls === undefined ? {} : { tls }),
    // Every batch in flight may fetch or update with full concurrency, plus one socket per key stream.
    maxSockets: requestConcurrency * Math.max(1, context.concurrency) + context.concurrency + 2,
    timeoutMs,
  });
  return new RiakBackend({
    http,
    bucketType: (values['bucket-type'] as string | undefined) ?? DEFAULT_BUCKET_TYPE,
    listing: listing as ListingMode,
    requestConcurrency,
    ...(schemaFile === undefined ? {} : { schemaFile }),
    log: context.log,
  });
}

const definition: BackendDefinition = {
  kind: 'riak',
  summary: 'Riak KV mam_yz maps: sets mam_type_register and msg_owner_jid_register (XML packets, HTTP API)',
  flags: {
    ...CREDENTIAL_FLAGS,
    'bucket-type': { type: 'string' },
    listing: { type: 'string' },
    'request-concurrency': { type: 'string' },
    'request-timeout': { type: 'string' },
    'apply-schema': { type: 'string' },
  },
  usage: USAGE,
  open,
};

export default definition;
