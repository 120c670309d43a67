/** `migrate cassandra` / `verify cassandra`: the flags, and how they open the backend. */
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, readCredentials, readTlsFiles } from '../credentials.js';
import { UsageError, type BackendDefinition, type FlagValues, type OpenContext } from '../registry.js';
import { CassandraBackend } from './cassandra-backend.js';
import { DEFAULT_CONSISTENCY, DEFAULT_KEYSPACE, DEFAULT_LOCAL_DC, connectCassandra, parseConsistency, parseContactPoints, parseKeyspace } from './connect.js';
import { RANGE_COUNT } from './token-ranges.js';

const definition: BackendDefinition = {
  kind: 'cassandra',
  maxShards: RANGE_COUNT,
  summary: "MongooseIM's Cassandra MUC archive (mam_muc_message): sets from_jid on the with_nick = '' copies",
  flags: {
    'contact-points': { type: 'string' },
    keyspace: { type: 'string' },
    'local-dc': { type: 'string' },
    consistency: { type: 'string' },
    'fill-nick-copies': { type: 'boolean' },
    ...CREDENTIAL_FLAGS,
  },
  usage: `  --contact-points LIST  HOST[:PORT],... to connect to first (port 9042 unless given); required
  --keyspace KS          MongooseIM's keyspace (default ${DEFAULT_KEYSPACE})
  --local-dc DC          the data centre to read and write in (default ${DEFAULT_LOCAL_DC})
  --consistency LEVEL    for reads and writes (default ${DEFAULT_CONSISTENCY}; ONE, QUORUM, LOCAL_ONE, ...)
  --fill-nick-copies     also write '' into the nick copies (as MongooseIM 3.4 does for new messages)
${CREDENTIAL_USAGE}`,

  async open(values: FlagValues, context: OpenContext) {
    const contactPointsFlag = values['contact-points'];
    if (typeof contactPointsFlag !== 'string') throw new UsageError('cassandra needs --contact-points HOST[:PORT][,HOST[:PORT]...]');
    const contactPoints = parseContactPoints(contactPointsFlag);
    const keyspace = parseKeyspace(typeof values.keyspace === 'string' ? values.keyspace : DEFAULT_KEYSPACE);
    const localDataCenter = typeof values['local-dc'] === 'string' ? values['local-dc'] : DEFAULT_LOCAL_DC;
    const consistency = parseConsistency(typeof values.consistency === 'string' ? values.consistency : DEFAULT_CONSISTENCY);
    const credentials = readCredentials(values);
    const tls = readTlsFiles(values);
    const client = await connectCassandra({
      contactPoints,
      localDataCenter,
      ...(credentials === undefined ? {} : { credentials }),
      ...(tls === undefined ? {} : { tls }),
    });
    const hosts = client.hosts.values().filter((h) => h.datacenter === localDataCenter).length;
    context.log(
      `cassandra: connected to ${contactPoints.join(',')} (${hosts} node(s) in ${localDataCenter}), keyspace ${keyspace}` +
        `${credentials === undefined ? '' : ` as ${credentials.username}`}${tls === undefined ? '' : ', TLS'}`,
    );
    if (hosts === 0) {
      await client.shutdown();
      throw new UsageError(`--local-dc: no node of the cluster is in data centre '${localDataCenter}'`);
    }
    return new CassandraBackend({ client, keyspace, consistency, fillNickCopies: values['fill-nick-copies'] === true });
  },
};

export default definition;
