/**
 * Starts `mim-sender-jid serve` as a real process (the built bin/ launcher) for tests that need
 * the command itself: signals, exit codes, environment variables. The caller must `stop()` it in
 * a finally/after hook; stop() kills it if it has not exited by itself, and so does the end of
 * the test process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopAtExit } from './stop-at-exit.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/support -> repo
const START_TIMEOUT_MS = 30_000;

export interface SidecarProcess {
  readonly child: ChildProcess;
  /** The gRPC address it logged ("sidecar serving"). */
  readonly address: string;
  readonly metricsAddress: string | null;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited, or rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<number | string>;
  /** Kills the process (SIGKILL) if still running, and waits for it. */
  stop(): Promise<void>;
}

export async function startSidecarProcess(args: string[] = [], env: Record<string, string> = {}): Promise<SidecarProcess> {
  const child = spawn(process.execPath, ['bin/mim-sender-jid.js', 'serve', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forgetAtExit = stopAtExit(() => void child.kill('SIGKILL'));
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let pending = '';
  let exit: number | string | null = null;
  const exitPromise = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = code ?? signal ?? 'unknown';
      forgetAtExit();
      resolve(exit);
    });
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const serving = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within ${START_TIMEOUT_MS} ms; stderr: ${stderr}`)), START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'sidecar serving') {
            clearTimeout(timer);
            resolve(entry);
          }
        } catch {
          logs.push({ unparsed: line });
        }
      }
    });
    void exitPromise.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before serving; stderr: ${stderr}`));
    });
  });

  const stop = async (): Promise<void> => {
    if (exit === null) {
      child.kill('SIGKILL');
      await exitPromise;
    }
  };
  let entry: Record<string, unknown>;
  try {
    entry = await serving;
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    child,
    address: String(entry.address),
    metricsAddress: typeof entry.metrics === 'string' ? entry.metrics : null,
    logs,
    stderr: () => stderr,
    exited: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`serve did not exit within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return await Promise.race([exitPromise, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    stop,
  };
}
