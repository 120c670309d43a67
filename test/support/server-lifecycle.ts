/**
 * The one lifecycle of the servers the suites start (PostgreSQL, MariaDB, Cassandra,
 * OpenSearch/Elasticsearch): files in a temp directory of their own, free loopback ports, started
 * and waited for until ready, killed at process exit if a test dies first (stop-at-exit.ts), and
 * removed with their directory by `stop()`. A failed start leaves nothing behind and throws (the
 * test fails, never skips). A launcher gives only what is its own: how its server starts, answers
 * and stops (`ServerSteps`; `childServer` for a server that is one child process).
 *
 * The Riak double is no process: it listens on port 0 in this process and closes its sockets at
 * exit (riak-double.ts). The Erlang helpers run escript to its end under a timeout: no server.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { stopAtExit } from './stop-at-exit.js';

export interface TestServer {
  /** Stops the server, its data kept (tests of a server that went away). */
  stopServer(): Promise<void>;
  /** Starts it again on the same data and ports; resolves when it is ready. */
  startServer(): Promise<void>;
  /** stopServer, then startServer. */
  restart(): Promise<void>;
  /** Kills the server and removes its files. Idempotent. */
  stop(): Promise<void>;
}

/** What a launcher knows about its server. */
export interface ServerSteps {
  /** Starts it; resolves when it is ready, throws (with its log) when it is not. */
  start(): Promise<void>;
  /** Stops it the way it asks to be stopped; its data stays. */
  stop(): Promise<void>;
  /** Kills it at once (synchronous: it also runs at process exit). Its data is thrown away next. */
  kill(): void;
}

/** `count` distinct free ports on 127.0.0.1 (each bound and released: see free-port.ts). */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freeLoopbackPort());
  return [...ports];
}

/** Starts the server whose files are in `dir`; from here on it cannot outlive the test process. */
export async function launchTestServer(dir: string, steps: ServerSteps): Promise<TestServer> {
  const forgetAtExit = stopAtExit(() => steps.kill());
  const remove = async (): Promise<void> => {
    try {
      steps.kill();
      await steps.stop(); // after a kill: waits for the process to be gone
    } finally {
      forgetAtExit();
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    await steps.start();
  } catch (error) {
    await remove().catch(() => {});
    throw error;
  }
  let removed = false;
  return {
    stopServer: () => steps.stop(),
    startServer: () => steps.start(),
    async restart() {
      await steps.stop();
      await steps.start();
    },
    async stop() {
      if (removed) return;
      removed = true;
      await remove();
    },
  };
}

export interface ChildServerOptions {
  /** For messages: `mariadbd`, `Cassandra 5.0.9`. */
  readonly name: string;
  /** Spawns the server's process (a new one at each start). */
  readonly spawn: () => ChildProcess;
  /** true once the server answers; otherwise why not yet (for the message when time is up). */
  readonly ready: () => Promise<true | string>;
  readonly readyTimeoutMs: number;
  /** Between two `ready` probes. */
  readonly pollMs: number;
  /** After SIGTERM, how long before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** The end of the server's log, for a start that failed. */
  readonly logTail: () => string;
}

/** The steps of a server that is one child process: spawn and probe until ready, SIGTERM then SIGKILL. */
export function childServer(options: ChildServerOptions): ServerSteps {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const running = (c: ChildProcess | null): c is ChildProcess => c !== null && c.exitCode === null && c.signalCode === null;
  return {
    async start() {
      const started = options.spawn();
      child = started;
      let exitNote: string | undefined;
      exited = new Promise((resolve) => {
        started.once('exit', (code, signal) => {
          exitNote = `exited with ${code ?? signal}`;
          resolve();
        });
        started.once('error', (error) => {
          exitNote = `could not be run: ${error.message}`;
          resolve();
        });
      });
      const deadline = Date.now() + options.readyTimeoutMs;
      let why = 'no answer yet';
      while (Date.now() < deadline) {
        if (exitNote !== undefined) throw new Error(`${options.name} ${exitNote} before it was ready\n${options.logTail()}`);
        const answer = await options.ready();
        if (answer === true) return;
        why = answer;
        await new Promise((r) => setTimeout(r, options.pollMs));
      }
      started.kill('SIGKILL');
      throw new Error(`${options.name} not ready within ${options.readyTimeoutMs / 1000} s (${why})\n${options.logTail()}`);
    },
    async stop() {
      const stopping = child;
      if (stopping === null) return;
      if (running(stopping)) {
        stopping.kill('SIGTERM');
        const timer = setTimeout(() => stopping.kill('SIGKILL'), options.stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      await exited;
      child = null;
    },
    kill() {
      if (running(child)) child.kill('SIGKILL');
    },
  };
}
