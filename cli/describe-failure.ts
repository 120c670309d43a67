/**
 * A failure as the operator reads it: one line, what is wrong and what to do. The drivers' own
 * errors are recognised by their codes (never by loading the drivers here): a refused or
 * unresolvable address, a refused login, a missing database, and Cassandra's "no host" error,
 * whose message embeds each host's error with its stack.
 */

/** Network errors of Node's sockets, by code: what happened, in words. */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'nothing is listening there (connection refused)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS not answering)',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the server closed the connection',
};

/** Login refused: PostgreSQL SQLSTATE 28P01/28000, MySQL/MariaDB 1045/1044/1698, MSSQL ELOGIN. */
const LOGIN_CODES = new Set(['28P01', '28000', 'ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR', 'ELOGIN']);
/** Database missing: PostgreSQL 3D000, MySQL/MariaDB 1049. */
const NO_DATABASE_CODES = new Set(['3D000', 'ER_BAD_DB_ERROR']);

interface Coded {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  errors?: unknown;
  innerErrors?: unknown;
  originalError?: unknown;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0].trim();
}

/** The network error inside `error` (itself, an AggregateError's first, a driver's wrapped one), if any. */
function networkCause(error: unknown): { code: string; where: string } | null {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth++) {
    const c = e as Coded;
    if (typeof c.code === 'string' && c.code in NETWORK) {
      const where =
        typeof c.address === 'string' ? `${c.address}${c.port === undefined ? '' : `:${String(c.port)}`}` : typeof c.hostname === 'string' ? c.hostname : '';
      return { code: c.code, where };
    }
    e = Array.isArray(c.errors) ? c.errors[0] : (c.originalError ?? (e as { cause?: unknown }).cause);
  }
  return null;
}

function describeNetwork(cause: { code: string; where: string }, flag: string): string {
  return `cannot connect${cause.where === '' ? '' : ` to ${cause.where}`}: ${NETWORK[cause.code]}; check ${flag} and that the server is running`;
}

/** cassandra-driver's NoHostAvailableError: `innerErrors` maps each host tried to its error. */
function describeNoHost(innerErrors: Record<string, unknown>): string {
  const hosts = Object.entries(innerErrors);
  if (hosts.length === 0) return 'no Cassandra node could be reached; check --contact-points and that Cassandra is running';
  const each = hosts.map(([host, e]) => {
    const message = e instanceof Error ? firstLine(e.message) : firstLine(String(e));
    if (/localDataCenter/.test(message)) {
      const found = /data centers: \[([^\]]*)\]/.exec(message)?.[1];
      return `${host}: --local-dc names no data centre of this cluster${found === undefined ? '' : ` (it has: ${found})`}`;
    }
    const network = networkCause(e);
    if (network !== null) return `${host}: ${NETWORK[network.code]}`;
    return `${host}: ${message}`;
  });
  const hint = each.some((line) => line.includes('--local-dc'))
    ? 'give --local-dc one of those data centres'
    : 'check --contact-points and that Cassandra is running';
  return `no Cassandra node could be used: ${each.join('; ')}; ${hint}`;
}

export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return firstLine(String(error));
  const coded = error as Error & Coded;
  if (error.name === 'NoHostAvailableError' && coded.innerErrors !== null && typeof coded.innerErrors === 'object') {
    return describeNoHost(coded.innerErrors as Record<string, unknown>);
  }
  if (error.name === 'AuthenticationError')
    return `Cassandra refused the login: ${firstLine(error.message)}; check --username and the password (--password-file or the environment)`;
  const code = typeof coded.code === 'string' ? coded.code : undefined;
  if (code !== undefined && LOGIN_CODES.has(code)) {
    return `the database refused the login: ${firstLine(error.message)}; check the user and password in --url (or MIM_SENDER_JID_DB_URL) and the server's access rules`;
  }
  if (code !== undefined && NO_DATABASE_CODES.has(code)) return `${firstLine(error.message)}; check the database name in --url`;
  const network = networkCause(error);
  if (network !== null) return describeNetwork(network, '--url');
  // Anything else on one line, without stack lines some drivers embed in their messages.
  const message = error.message
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
  return message === '' ? error.name : message;
}
