/** `mim-sender-jid stdio`, spawned as operators run it, against answers computed by Erlang. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StdioSession } from '../../cli/stdio.js';
import { DEFAULT_DECODE_LIMITS } from '../../services/decode/index.js';
import { startCli, runCli } from '../support/cli-process.js';
import { REFERENCE_EXAMPLE_XML } from '../support/reference-example.js';
import { erlangCases, erlangRandomMessages, referenceOutput, type PayloadRecord } from '../support/erlang-payloads.js';

const record = (payload: Uint8Array): Buffer => Buffer.concat([Buffer.from(`${payload.length}\n`), payload]);
const stream = (records: readonly PayloadRecord[]): Buffer => Buffer.concat(records.map((r) => record(r.payload)));
const expectedOutput = (records: readonly PayloadRecord[]): Buffer => Buffer.concat(records.map((r) => referenceOutput(r.expected)));

const cases = erlangCases();
const referenceEterm = cases.find((c) => c.name === 'reference example (minor 1)');

const REFERENCE_XML = Buffer.from(REFERENCE_EXAMPLE_XML);

test('the reference example answers 37\\ngżegżółka@brzęczyszczykiewicz.pl, as eterm and as xml', async (t) => {
  assert.ok(referenceEterm);
  const want = Buffer.from('37\ngżegżółka@brzęczyszczykiewicz.pl');
  for (const [format, payload] of [
    ['eterm', referenceEterm.payload],
    ['xml', REFERENCE_XML],
    ['auto', referenceEterm.payload],
    ['auto', REFERENCE_XML],
  ] as const) {
    const result = await runCli(t, ['stdio', format], record(payload));
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout, want, `${format}: ${result.stdout.toString()}`);
    assert.equal(result.stderr, '');
  }
});

test('a long mixed stream round-trips byte for byte, whatever the read sizes', async (t) => {
  const records = [...erlangRandomMessages(700, 99), ...cases].filter((r) => r.format === 'eterm');
  const input = stream(records);
  const want = expectedOutput(records);
  for (const chunk of [undefined, 1, 7, 4096]) {
    const result = await runCli(t, ['stdio', 'eterm'], input, chunk);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.equals(want), `chunk ${chunk}: output differs at byte ${firstDifference(result.stdout, want)}`);
  }
});

test('auto mode takes eterm and xml records mixed in one stream', async (t) => {
  const records = erlangRandomMessages(300, 5);
  const result = await runCli(t, ['stdio', 'auto'], stream(records));
  assert.equal(result.code, 0, result.stderr);
  assert.ok(result.stdout.equals(expectedOutput(records)), `differs at byte ${firstDifference(result.stdout, expectedOutput(records))}`);
});

test('bad records in the middle (garbage, empty, too large) disturb nothing after them', async (t) => {
  const good = erlangRandomMessages(50, 11).filter((r) => r.format === 'eterm');
  const garbage = Buffer.concat([Buffer.of(0x83), Buffer.from('garbage that is no term')]);
  const tooLarge = Buffer.alloc(2048, 0x83);
  const input = Buffer.concat([stream(good.slice(0, 40)), record(garbage), Buffer.from('0\n'), record(tooLarge), stream(good.slice(40))]);
  const want = Buffer.concat([expectedOutput(good.slice(0, 40)), Buffer.from('-1\n-1\n-1\n'), expectedOutput(good.slice(40))]);
  const result = await runCli(t, ['stdio', '--max-payload-bytes', '1024', '--verbose', 'eterm'], input);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(result.stdout.equals(want), `differs at byte ${firstDifference(result.stdout, want)}`);
  // Diagnostics only on stderr, with the record numbers and reasons.
  assert.match(result.stderr, /record 41: -1 \(malformed/);
  assert.match(result.stderr, /record 42: -1 \(malformed: empty payload/);
  assert.match(result.stderr, /record 43: -1 \(payload_too_large/);
});

test('a length line that is not a number: answers before it, a message on stderr, exit 1', async (t) => {
  const good = cases.filter((c) => c.format === 'eterm').slice(0, 5);
  for (const bad of ['12\r\n', 'abc\n', '-3\n', ' 4\n']) {
    const result = await runCli(t, ['stdio', 'eterm'], Buffer.concat([stream(good), Buffer.from(bad), stream(good)]));
    assert.equal(result.code, 1, `${JSON.stringify(bad)}: exit ${result.code}`);
    assert.ok(result.stdout.equals(expectedOutput(good)), JSON.stringify(bad));
    assert.match(result.stderr, /record 6: length line .* is not a byte count/);
  }
});

test('input ending inside a record is reported and exits 1', async (t) => {
  assert.ok(referenceEterm);
  const whole = record(referenceEterm.payload);
  const result = await runCli(t, ['stdio', 'eterm'], whole.subarray(0, whole.length - 3));
  assert.equal(result.code, 1);
  assert.equal(result.stdout.length, 0);
  assert.match(result.stderr, /input ended in record 1, 3 bytes short/);
});

test('an interactive caller gets each answer before sending the next record', async (t) => {
  const records = cases.filter((c) => c.format === 'eterm').slice(0, 20);
  const cli = startCli(t, ['stdio', 'eterm']);
  for (const r of records) {
    cli.write(record(r.payload));
    const want = referenceOutput(r.expected);
    assert.deepEqual(await cli.read(want.length), want, r.name);
  }
  assert.equal(await cli.end(), 0);
});

test('an interactive caller that sends a record in pieces gets its answer when the last byte is in, without more input', async (t) => {
  const records = erlangRandomMessages(6, 21);
  const cli = startCli(t, ['stdio', 'auto']);
  for (const r of records) {
    const bytes = record(r.payload);
    const newline = bytes.indexOf(0x0a);
    // The length line in two writes, then the payload in three; the answer comes after the last.
    const cuts = [0, 1, newline + 1, newline + 2, newline + 1 + Math.floor(r.payload.length / 2), bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      if (cuts[i + 1] > cuts[i]) cli.write(bytes.subarray(cuts[i], cuts[i + 1]));
      // Let each piece be read on its own, so the records really arrive in pieces.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const want = referenceOutput(r.expected);
    assert.deepEqual(await cli.read(want.length), want, r.name);
  }
  assert.equal(await cli.end(), 0);
});

test('length lines as binary_to_integer reads them: signs, leading zeros, more digits than a fast read takes', async (t) => {
  const good = erlangRandomMessages(4, 8).filter((r) => r.format === 'eterm');
  const lines = (n: number): string[] => [`+${n}`, `000${n}`, `${String(n).padStart(30, '0')}`, `+${String(n).padStart(31, '0')}`];
  const input: Buffer[] = [];
  const want: Buffer[] = [];
  for (const r of good) {
    for (const line of lines(r.payload.length)) {
      input.push(Buffer.from(`${line}\n`), Buffer.from(r.payload));
      want.push(referenceOutput(r.expected));
    }
  }
  // Empty payloads written as -0, +0 and 00: -1 each, and the stream goes on.
  input.push(Buffer.from('-0\n+0\n00\n'), record(good[0].payload));
  want.push(Buffer.from('-1\n-1\n-1\n'), referenceOutput(good[0].expected));
  for (const chunk of [undefined, 1, 5]) {
    const result = await runCli(t, ['stdio', 'eterm'], Buffer.concat(input), chunk);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.equals(Buffer.concat(want)), `chunk ${chunk}: differs at byte ${firstDifference(result.stdout, Buffer.concat(want))}`);
  }
});

test('a record split across reads is answered right when the reader reuses its buffer for the next read', () => {
  // The command reads stdin into one reused buffer: what the session keeps of a record cut by a
  // read must be its own copy, and the answers it returns are good until the next push.
  const records = erlangRandomMessages(30, 17).filter((r) => r.format === 'eterm');
  const input = stream(records);
  const want = expectedOutput(records);
  for (const size of [1, 5, 97, 1000]) {
    const session = new StdioSession('eterm', DEFAULT_DECODE_LIMITS, undefined);
    const reused = Buffer.alloc(size);
    const out: Buffer[] = [];
    for (let at = 0; at < input.length; at += size) {
      const n = input.copy(reused, 0, at, at + size);
      out.push(Buffer.from(session.push(reused.subarray(0, n))));
      reused.fill(0xee);
    }
    session.end();
    assert.equal(session.protocolError, undefined);
    const got = Buffer.concat(out);
    assert.ok(got.equals(want), `reads of ${size}: differs at byte ${firstDifference(got, want)}`);
  }
});

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
