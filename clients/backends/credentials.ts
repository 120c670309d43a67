/**
 * Flags shared by the backends that log in and speak TLS themselves (Cassandra, Elasticsearch,
 * Riak). A password is read from a file or the environment, never from a flag, so that it shows
 * neither in `ps` nor in shell history; nothing here ever logs it.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type FlagSpec, type FlagValues } from './registry.js';

export const PASSWORD_ENV = 'MIM_SENDER_JID_PASSWORD';

export const CREDENTIAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  username: { type: 'string' },
  'password-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
};

export const CREDENTIAL_USAGE = `  --username U           log in as U; the password from --password-file or env ${PASSWORD_ENV}
  --password-file F      file holding the password (one line; a trailing newline is ignored)
  --tls-ca PEM           TLS: CA that signed the server's certificate (also turns TLS on)
  --tls-cert PEM         with --tls-key: our client certificate (mutual TLS)
  --tls-key PEM          private key of --tls-cert`;

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface TlsFiles {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** `--username` with its password, or undefined when no username is given. */
export function readCredentials(values: FlagValues, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const username = values.username as string | undefined;
  const file = values['password-file'] as string | undefined;
  if (username === undefined) {
    if (file !== undefined) throw new UsageError('--password-file needs --username');
    return undefined;
  }
  let password: string | undefined;
  if (file !== undefined)
    password = readFlagFile('password-file', file)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  else password = env[PASSWORD_ENV];
  if (password === undefined) throw new UsageError(`--username needs a password: --password-file F or env ${PASSWORD_ENV}`);
  return { username, password };
}

/** The TLS files given, or undefined when none is (plain connections). */
export function readTlsFiles(values: FlagValues): TlsFiles | undefined {
  const ca = values['tls-ca'] as string | undefined;
  const cert = values['tls-cert'] as string | undefined;
  const key = values['tls-key'] as string | undefined;
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  return {
    ...(ca === undefined ? {} : { ca: readFlagFile('tls-ca', ca) }),
    ...(cert === undefined ? {} : { cert: readFlagFile('tls-cert', cert) }),
    ...(key === undefined ? {} : { key: readFlagFile('tls-key', key) }),
  };
}
