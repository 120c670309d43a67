/**
 * Runs `mim-sender-jid migrate ...` as a real process (the built bin/ launcher), for the tests
 * that kill it. Every process started here is SIGKILLed at exit if a test left it running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopAtExit } from './stop-at-exit.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/support -> repo

export interface MigrateProcess {
  readonly child: ChildProcess;
  /** Exit code, or the signal name when killed. */
  readonly done: Promise<{ status: number | string; stdout: string; stderr: string }>;
  kill9(): void;
}

/** `nodeOptions`: flags for the child's node before the launcher (e.g. `--import` of a probe). */
export function startMigrateProcess(args: readonly string[], nodeOptions: readonly string[] = []): MigrateProcess {
  const child = spawn(process.execPath, [...nodeOptions, 'bin/mim-sender-jid.js', 'migrate', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forgetAtExit = stopAtExit(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ status: number | string; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => {
      forgetAtExit();
      resolve({ status: code ?? signal ?? 'unknown', stdout, stderr });
    });
  });
  return { child, done, kill9: () => void child.kill('SIGKILL') };
}
