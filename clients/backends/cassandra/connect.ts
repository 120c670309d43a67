/**
 * Turns the Cassandra flags into a connected cassandra-driver Client: token-aware routing inside
 * the local data centre, BigInt for `bigint` columns (message ids exceed 2^53), and a short
 * reconnection delay so that a restarted node is used again within seconds.
 */
import cassandra from 'cassandra-driver';
import { UsageError } from '../registry.js';
import type { Credentials, TlsFiles } from '../credentials.js';

export const DEFAULT_PORT = 9042;
export const DEFAULT_KEYSPACE = 'mongooseim';
export const DEFAULT_LOCAL_DC = 'datacenter1';
export const DEFAULT_CONSISTENCY = 'LOCAL_QUORUM';
/** Reconnection attempts to a lost node: from half a second, doubling, at most every 5 s. */
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 5_000;

const CONSISTENCY_LEVELS: Record<string, number> = {
  ONE: cassandra.types.consistencies.one,
  TWO: cassandra.types.consistencies.two,
  THREE: cassandra.types.consistencies.three,
  QUORUM: cassandra.types.consistencies.quorum,
  ALL: cassandra.types.consistencies.all,
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  EACH_QUORUM: cassandra.types.consistencies.eachQuorum,
  LOCAL_ONE: cassandra.types.consistencies.localOne,
};

export function parseConsistency(value: string): number {
  const level = CONSISTENCY_LEVELS[value.toUpperCase()];
  if (level === undefined) throw new UsageError(`--consistency must be one of ${Object.keys(CONSISTENCY_LEVELS).join(', ')}, got '${value}'`);
  return level;
}

/** `HOST[:PORT][,HOST[:PORT]...]`, IPv6 in brackets (`[::1]:9042`), into `host:port` strings. */
export function parseContactPoints(value: string): string[] {
  const points = value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (points.length === 0) throw new UsageError('--contact-points needs at least one HOST[:PORT]');
  return points.map((point) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(point);
    if (match === null) throw new UsageError(`--contact-points: '${point}' is not HOST[:PORT]`);
    const port = match[2] === undefined ? DEFAULT_PORT : Number(match[2]);
    if (port < 1 || port > 65535) throw new UsageError(`--contact-points: port ${match[2]} of '${point}' is not 1-65535`);
    return `${match[1]}:${port}`;
  });
}

/** A keyspace name as CQL takes it unquoted (letters, digits, underscores; at most 48). */
export function parseKeyspace(value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(value)) throw new UsageError(`--keyspace: '${value}' is not a keyspace name (letters, digits, _; at most 48)`);
  return value;
}

export interface ConnectOptions {
  readonly contactPoints: string[];
  readonly localDataCenter: string;
  readonly credentials?: Credentials;
  readonly tls?: TlsFiles;
  /** Connections per node: batches in flight share them. */
  readonly connectionsPerHost?: number;
}

export async function connectCassandra(options: ConnectOptions): Promise<cassandra.Client> {
  const { policies, auth } = cassandra;
  const client = new cassandra.Client({
    contactPoints: options.contactPoints,
    localDataCenter: options.localDataCenter,
    policies: {
      loadBalancing: new policies.loadBalancing.TokenAwarePolicy(new policies.loadBalancing.DCAwareRoundRobinPolicy(options.localDataCenter)),
      reconnection: new policies.reconnection.ExponentialReconnectionPolicy(RECONNECT_BASE_MS, RECONNECT_MAX_MS, false),
    },
    encoding: { useBigIntAsLong: true },
    ...(options.credentials === undefined ? {} : { authProvider: new auth.PlainTextAuthProvider(options.credentials.username, options.credentials.password) }),
    ...(options.tls === undefined
      ? {}
      : {
          sslOptions: {
            rejectUnauthorized: true,
            ...(options.tls.ca === undefined ? {} : { ca: [options.tls.ca] }),
            ...(options.tls.cert === undefined ? {} : { cert: options.tls.cert, key: options.tls.key }),
          },
        }),
    ...(options.connectionsPerHost === undefined
      ? {}
      : { pooling: { coreConnectionsPerHost: { [cassandra.types.distance.local]: options.connectionsPerHost } } }),
  });
  try {
    await client.connect();
  } catch (error) {
    await client.shutdown().catch(() => {});
    throw error;
  }
  return client;
}
