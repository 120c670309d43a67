/** `mim-sender-jid extract`: one payload from a file or stdin, raw or hex, answered as Erlang answers it. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../support/cli-process.js';
import { erlangCases, erlangRandomMessages } from '../support/erlang-payloads.js';

const cases = erlangCases();

test('extract answers every named case, from a raw file and as PostgreSQL hex on stdin', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'extract-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sample = [...cases.filter((c) => c.format === 'eterm' && !c.name.endsWith('(minor 2)')), ...erlangRandomMessages(5, 3)];
  for (const [i, c] of sample.entries()) {
    const file = join(dir, `payload-${i}`);
    writeFileSync(file, c.payload);
    const format = c.format === 'xml' ? 'xml' : 'eterm';
    const raw = await runCli(t, ['extract', '--format', format, file], new Uint8Array());
    const hex = await runCli(t, ['extract', '--hex', '-'], Buffer.from(`\\x${Buffer.from(c.payload).toString('hex')}\n`));
    for (const result of [raw, hex]) {
      const out = result.stdout.toString('utf8');
      if ('jid' in c.expected) {
        assert.equal(result.code, 0, `${c.name}: ${out} ${result.stderr}`);
        assert.equal(out, `${c.expected.jid}\n`, c.name);
      } else {
        assert.equal(result.code, 1, `${c.name}: ${out}`);
        // The answer code first, then the reason and what was wrong.
        assert.match(out, new RegExp(`^${c.expected.code} (malformed|not_groupchat|payload_too_large): .+\\n$`), c.name);
      }
    }
  }
});

test('extract refuses input that is not hex under --hex, and unknown formats', async (t) => {
  const notHex = await runCli(t, ['extract', '--hex', '-'], Buffer.from('\\x83zz'));
  assert.equal(notHex.code, 2);
  assert.match(notHex.stderr, /not hex/);
  const badFormat = await runCli(t, ['extract', '--format', 'json', '-'], Buffer.from('x'));
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /--format must be/);
});

test('extract stops reading stdin at the payload limit instead of holding all of it', async () => {
  const { spawn } = await import('node:child_process');
  const { CLI_LAUNCHER } = await import('../support/cli-process.js');
  const child = spawn(process.execPath, [CLI_LAUNCHER, 'extract', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.on('error', () => undefined); // it stops reading: EPIPE is the point
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const chunk = Buffer.alloc(1024 * 1024);
  const offered = 512; // MiB: far more than the 1 MiB limit
  let written = 0;
  let done = false;
  void exited.then(() => (done = true));
  for (let i = 0; i < offered && !done; i++) {
    const more = child.stdin.write(chunk);
    written++;
    if (!more) await Promise.race([new Promise((r) => child.stdin.once('drain', r)), exited]);
  }
  child.stdin.end();
  assert.equal(await exited, 1);
  assert.match(out, /^-1 payload_too_large: input is over 1048576 bytes/);
  assert.ok(written < 16, `the child took ${written} MiB of ${offered} before stopping`);
});
