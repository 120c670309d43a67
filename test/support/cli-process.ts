/**
 * Runs `node bin/mim-sender-jid.js ...` as a child process for the CLI tests: either to completion
 * with some stdin (runCli), or kept open for a conversation (startCli). Every child is killed when
 * the test ends, passed or failed (t.after), and runCli gives up after a bounded time.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** From dist/test/support/ or test/support/, the launcher is at the checkout's bin/. */
export const CLI_LAUNCHER = resolve(here, here.includes('dist') ? '../../../bin/mim-sender-jid.js' : '../../bin/mim-sender-jid.js');

const RUN_TIMEOUT_MS = 120_000;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function spawnCli(t: TestContext, args: readonly string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [CLI_LAUNCHER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Runs the CLI with `input` on stdin (written in pieces of `chunkBytes` if given) and collects its output. */
export function runCli(t: TestContext, args: readonly string[], input: Uint8Array, chunkBytes?: number): Promise<CliResult> {
  const child = spawnCli(t, args);
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => undefined); // the CLI may stop reading early (protocol error)
  if (chunkBytes === undefined) {
    child.stdin.end(input);
  } else {
    for (let i = 0; i < input.length; i += chunkBytes) child.stdin.write(input.subarray(i, i + chunkBytes));
    child.stdin.end();
  }
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mim-sender-jid ${args.join(' ')} did not finish in ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** A running CLI for a conversation: write some input, wait for some output. */
export interface CliConversation {
  write(bytes: Uint8Array): void;
  /** Resolves with the next `n` bytes of stdout; rejects after timeoutMs. */
  read(n: number, timeoutMs?: number): Promise<Buffer>;
  end(): Promise<number | null>;
}

export function startCli(t: TestContext, args: readonly string[]): CliConversation {
  const child = spawnCli(t, args);
  let buffered = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    waiter?.();
  });
  const closed = new Promise<number | null>((r) => child.on('close', r));
  return {
    write: (bytes) => child.stdin.write(bytes),
    read: (n, timeoutMs = 10_000) =>
      new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${n} bytes of answer within ${timeoutMs} ms (have ${buffered.length})`)), timeoutMs);
        const check = (): void => {
          if (buffered.length < n) return;
          clearTimeout(timer);
          waiter = undefined;
          const got = buffered.subarray(0, n);
          buffered = buffered.subarray(n);
          resolvePromise(got);
        };
        waiter = check;
        check();
      }),
    end: () => {
      child.stdin.end();
      return closed;
    },
  };
}
