#!/usr/bin/env node
// Thin launcher: the program is the compiled TypeScript in dist/ (built by `npm install`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('mim-sender-jid: dist/ is missing; run `npm install` (or `npm run build`) in the checkout first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command is done: a driver's leftover timers (cassandra-driver re-arms reconnection attempts
// after a node restart, even once shut down) must not keep the process alive. Output to pipes and
// files is written synchronously on Linux, so nothing is cut; an empty event loop exits sooner.
setTimeout(() => process.exit(code), 2000).unref();
