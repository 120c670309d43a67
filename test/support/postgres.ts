/**
 * A real PostgreSQL 15 for tests: Debian's server binaries, a fresh cluster in a temp directory,
 * listening on a free loopback port, run as the `postgres` system user when we are root
 * (PostgreSQL refuses to run as root). Started and stopped as every test server is
 * (server-lifecycle.ts). A missing binary fails loudly (never skipped).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../../cli/demo/mongooseim-33-schema.js';
import { launchTestServer, type TestServer } from './server-lifecycle.js';

export const PG_BIN_DIR = process.env.MIM_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const RUN_AS = 'postgres';
const START_TIMEOUT_S = 60;

/** stopServer is pg_ctl's `fast` shutdown: active connections are terminated. */
export interface PostgresServer extends TestServer {
  /** `postgres://postgres@127.0.0.1:PORT/mim` */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
}

function asServerUser(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ['runuser', ['-u', RUN_AS, '--', command, ...args]];
  return [command, args];
}

function run(command: string, args: string[], timeoutS = START_TIMEOUT_S): string {
  const [cmd, argv] = asServerUser(command, args);
  const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutS * 1000 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (status ${result.status}, ${result.error?.message ?? ''}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

export interface StartPostgresOptions {
  database?: string;
  /** Keep PostgreSQL's durable defaults (fsync, synchronous commit, full page writes); tests turn them off for speed. */
  durable?: boolean;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const initdb = join(PG_BIN_DIR, 'initdb');
  if (!existsSync(initdb)) {
    throw new Error(`PostgreSQL server binaries not found at ${PG_BIN_DIR} (install Debian's postgresql package: test/support/install-system-deps.sh)`);
  }
  const root = mkdtempSync(join(tmpdir(), 'mim-pg-'));
  chmodSync(root, 0o755);
  if (process.getuid?.() === 0) execFileSync('chown', [RUN_AS, root]);
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  run(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const port = await freeLoopbackPort();
  const serverOptions = [
    `-p ${port}`,
    `-k ${root}`,
    `-c listen_addresses=127.0.0.1`,
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    '-c max_connections=100',
    '-c shared_buffers=128MB',
  ].join(' ');
  const pgCtl = join(PG_BIN_DIR, 'pg_ctl');
  let started = false;
  const stopServer = (mode: 'fast' | 'immediate'): void => {
    if (!started) return;
    run(pgCtl, ['-D', dataDir, '-m', mode, '-w', 'stop']);
    started = false;
  };
  // pg_ctl waits for the server itself (-w): no process of ours to watch.
  const server = await launchTestServer(root, {
    async start() {
      try {
        run(pgCtl, ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', String(START_TIMEOUT_S), 'start']);
      } catch (error) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        throw new Error(`${(error as Error).message}\nserver log:\n${log}`, { cause: error });
      }
      started = true;
    },
    async stop() {
      stopServer('fast');
    },
    kill() {
      try {
        stopServer('immediate');
      } catch {
        // exit path: best effort
      }
    },
  });
  const database = options.database ?? 'mim';
  const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  return { ...server, url: `postgres://postgres@127.0.0.1:${port}/${database}`, port, dataDir };
}

export async function createMongooseIm33Schema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
  } finally {
    await client.end();
  }
}
