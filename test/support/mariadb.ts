/**
 * A real MariaDB for tests: Debian's `mariadbd`, a fresh datadir made by `mariadb-install-db` in a
 * temp directory, its own socket and a free loopback port, run as the `mysql` system user when we
 * are root. Grant tables are skipped (loopback only, throwaway data), so any user name connects
 * without a password. Started and stopped as every test server is (server-lifecycle.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { childServer, launchTestServer, type TestServer } from './server-lifecycle.js';

export const MARIADBD = process.env.MIM_MARIADBD ?? '/usr/sbin/mariadbd';
export const MARIADB_INSTALL_DB = process.env.MIM_MARIADB_INSTALL_DB ?? '/usr/bin/mariadb-install-db';
const RUN_AS = 'mysql';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export interface MariadbServer extends TestServer {
  /** `mysql://root@127.0.0.1:PORT/mim` */
  readonly url: string;
  readonly port: number;
}

/** `grants`: check privileges (tests of a user without CREATE); by default every user may do anything. */
export async function startMariadb(options: { database?: string; durable?: boolean; grants?: boolean } = {}): Promise<MariadbServer> {
  for (const binary of [MARIADBD, MARIADB_INSTALL_DB]) {
    if (!existsSync(binary)) throw new Error(`${binary} not found (install Debian's mariadb-server: test/support/install-system-deps.sh)`);
  }
  const root = mkdtempSync(join(tmpdir(), 'mim-mariadb-'));
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const socket = join(root, 'mariadb.sock');
  const logFile = join(root, 'error.log');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', [RUN_AS, root]);
  const install = spawnSync(
    MARIADB_INSTALL_DB,
    ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(asRoot ? [`--user=${RUN_AS}`] : [])],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed (${install.status}):\n${install.stdout}\n${install.stderr}`);
  const port = await freeLoopbackPort();
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--pid-file=${join(root, 'mariadb.pid')}`,
    `--log-error=${logFile}`,
    ...(options.grants ? [] : ['--skip-grant-tables']),
    '--skip-log-bin',
    // Tests trade durability for speed; `durable` keeps InnoDB's defaults (flush at commit, doublewrite).
    ...(options.durable ? [] : ['--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0']),
    '--innodb-buffer-pool-size=256M',
    '--max-allowed-packet=256M',
    '--max-connections=200',
    ...(asRoot ? [`--user=${RUN_AS}`] : []),
  ];
  const server = await launchTestServer(
    root,
    childServer({
      name: 'mariadbd',
      spawn: () => spawn(MARIADBD, args, { stdio: 'ignore' }),
      ready: async () => {
        try {
          await (await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' })).end();
          return true;
        } catch (error) {
          return (error as Error).message;
        }
      },
      readyTimeoutMs: READY_TIMEOUT_MS,
      pollMs: 200,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      logTail: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n') : ''),
    }),
  );
  const database = options.database ?? 'mim';
  const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
  await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  await admin.end();
  return { ...server, url: `mysql://root@127.0.0.1:${port}/${database}`, port };
}

/** MongooseIM 3.3.0's `priv/mysql.sql` tables for the MUC archive (no sender_id yet). */
export const MONGOOSEIM_33_MYSQL_SCHEMA = [
  `CREATE TABLE mam_server_user(
     id INT UNSIGNED NOT NULL AUTO_INCREMENT,
     server    varchar(250) CHARACTER SET binary NOT NULL,
     user_name varchar(250) CHARACTER SET binary NOT NULL,
     PRIMARY KEY(id) USING HASH,
     CONSTRAINT uc_mam_server_user_name UNIQUE USING HASH (server, user_name)
   ) CHARACTER SET utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE mam_muc_message(
     id BIGINT UNSIGNED NOT NULL,
     room_id INT UNSIGNED NOT NULL,
     nick_name varchar(250) NOT NULL,
     message mediumblob NOT NULL,
     search_body mediumtext,
     PRIMARY KEY (room_id, id)
   ) CHARACTER SET utf8mb4 ROW_FORMAT=DYNAMIC`,
];
