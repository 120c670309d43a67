/**
 * The flag table of `migrate` and `verify` (cli/command-flags.ts) drives the parser and the help:
 * every flag a command takes for a backend is in that command's `--help` for the backend, every
 * flag in the help is taken, and each flag's value is read by its entry (a bad one is exit 2
 * naming the flag). No server: every run stops before connecting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKEND_KINDS, loadBackend } from '../../clients/backends/registry.js';
import { COMMAND_FLAGS, flagUsage, parseArgsOptions, type Command, type CommandFlag } from '../../cli/command-flags.js';
import { parseCommand, UsageError } from '../../cli/options.js';
import { runCliBounded } from '../support/bounded-cli.js';

const CHILD_TIMEOUT_MS = 30_000;
const COMMANDS: readonly Command[] = ['migrate', 'verify'];

/** `--name` words at the start of a help line or after a comma (a shared line names several). */
function helpFlags(help: string): Set<string> {
  const names = new Set<string>();
  for (const m of help.matchAll(/^ {2}(--[a-z0-9-]+)|, (--[a-z0-9-]+)/gm)) names.add((m[1] ?? m[2]).slice(2));
  return names;
}

for (const command of COMMANDS) {
  test(`${command}: --help of each backend lists exactly the flags the parser takes`, async () => {
    for (const kind of BACKEND_KINDS) {
      const run = await runCliBounded([command, kind, '--help'], CHILD_TIMEOUT_MS);
      assert.equal(run.status, 0, run.stderr);
      const listed = helpFlags(run.stdout);
      const definition = await loadBackend(kind);
      const taken = new Set([...Object.keys(parseArgsOptions(command, kind)), ...Object.keys(definition.flags)]);
      // --help says itself; --url is told by the backend's own lines where the backend uses it.
      for (const name of taken) {
        if (name === 'help' || name === 'url') continue;
        assert.ok(listed.has(name), `${command} ${kind} takes --${name} but its --help does not list it`);
      }
      for (const name of listed) assert.ok(taken.has(name), `${command} ${kind} --help lists --${name}, which the parser does not take`);
    }
  });
}

test('each flag of the table is read by its own entry: a bad value names the flag', async () => {
  const definition = await loadBackend('postgres');
  const bad: Record<string, string> = { sample: '0', workers: '0', format: 'json', 'batch-size': 'x', 'max-rate': '-1', limit: '-1', shard: '2/2' };
  for (const [name, value] of Object.entries(bad)) {
    const entry = Object.values(COMMAND_FLAGS).find((f) => f.name === name);
    assert.ok(entry !== undefined, `--${name} is in the table`);
    const command = entry.commands[0];
    assert.throws(
      () => parseCommand(['postgres', '--url', 'postgres://u@h/d', `--${name}`, value], definition, command),
      (error: unknown) => error instanceof UsageError && error.message.includes(`--${name}`),
      `${command} --${name} ${value}`,
    );
  }
});

test('a flag of one command is an unknown option of the other', async () => {
  const definition = await loadBackend('postgres');
  for (const f of Object.values(COMMAND_FLAGS)) {
    for (const command of COMMANDS) {
      if (f.commands.includes(command) || Object.values(COMMAND_FLAGS).some((g) => g.name === f.name && g.commands.includes(command))) continue;
      const argv = ['postgres', '--url', 'postgres://u@h/d', `--${f.name}`, ...(f.type === 'string' ? ['1'] : [])];
      assert.throws(() => parseCommand(argv, definition, command), /Unknown option/, `${command} --${f.name}`);
    }
  }
});

test('the defaults stand in for flags not given', async () => {
  const { flags } = parseCommand(['postgres', '--url', 'postgres://u@h/d'], await loadBackend('postgres'), 'migrate');
  assert.deepEqual(flags.shard, { index: 0, count: 1 });
  assert.equal(typeof flags.batchSize, 'number');
  assert.equal(flags.dryRun, false);
  assert.equal(flags.limit, undefined);
});

test('a flag of some backends only: parsed and listed for those, unknown to the others, marked in the help of all', () => {
  const table: Record<string, CommandFlag<unknown>> = {
    field: {
      name: 'field',
      type: 'string',
      commands: ['migrate'],
      backends: ['postgres', 'mysql'],
      help: { section: 'walk', value: 'F', text: 'what to write' },
      read: (raw) => raw,
    },
  };
  assert.deepEqual(parseArgsOptions('migrate', 'postgres', table), { field: { type: 'string' } });
  assert.deepEqual(parseArgsOptions('migrate', 'cassandra', table), {});
  assert.deepEqual(parseArgsOptions('verify', 'postgres', table), {});
  assert.equal(flagUsage('migrate', 'walk', 'mysql', table), '  --field F              what to write');
  assert.equal(flagUsage('migrate', 'walk', 'riak', table), '');
  assert.equal(flagUsage('migrate', 'walk', undefined, table), '  --field F              what to write\n                         (postgres, mysql only)');
});
