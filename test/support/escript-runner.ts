/**
 * Runs one of the Erlang scripts kept beside this file (test/support/*.escript) with a bounded time,
 * its output written to files in a temporary directory removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Big inputs (100,000 messages) take a few seconds of Erlang; bounded all the same. */
const ESCRIPT_TIMEOUT_MS = 300_000;

/** The escript lives in the source tree; this file runs from dist/test/support/ or test/support/. */
function scriptPath(script: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(join('dist', 'test')) ? resolve(here, '../../../test/support', script) : resolve(here, script);
}

export interface SupportEscript {
  run(args: string[]): void;
  withTempDir<R>(body: (dir: string) => R): R;
}

/** `name` is the script's base name, e.g. `erlang-payloads` for `erlang-payloads.escript`. */
export function supportEscript(name: string): SupportEscript {
  return {
    run(args) {
      const result = spawnSync('escript', [scriptPath(`${name}.escript`), ...args], { encoding: 'utf8', timeout: ESCRIPT_TIMEOUT_MS });
      if (result.error) throw new Error(`${name}: cannot run escript: ${result.error.message}`);
      if (result.status !== 0) throw new Error(`${name}: escript ${args[0]} exited ${result.status}: ${result.stderr}`);
    },
    withTempDir(body) {
      const dir = mkdtempSync(join(tmpdir(), `${name}-`));
      try {
        return body(dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
