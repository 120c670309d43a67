/**
 * Runs `node bin/mim-sender-jid.js ...` to its end, killed (SIGKILL) after `timeoutMs`: for the
 * tests of what must fail fast, where a hang is the failure (the status is then the signal's
 * name, never a pass). No stdin.
 */
import { spawn } from 'node:child_process';
import { CLI_LAUNCHER } from './cli-process.js';
import { stopAtExit } from './stop-at-exit.js';

export interface BoundedRun {
  /** Exit code, or the signal's name when killed (`SIGKILL` after the timeout). */
  readonly status: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** `cwd`: where the command runs (a default report path lands there). */
export function runCliBounded(args: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<BoundedRun> {
  const child = spawn(process.execPath, [CLI_LAUNCHER, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const forget = stopAtExit(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      forget();
      resolve({ status: code ?? signal ?? 'unknown', stdout, stderr });
    });
  });
}
