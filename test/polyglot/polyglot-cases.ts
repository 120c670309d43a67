/**
 * For the polyglot examples (clients/go, clients/java): payload files made by a real Erlang VM
 * (test/support/erlang-payloads.ts), and a check of the lines an example prints
 * (`FILE<TAB>user@server` or `FILE<TAB>ERROR_CODE_...<TAB>detail`) against Erlang's answers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { erlangCases, erlangRandomMessages, type ExpectedAnswer, type PayloadRecord } from '../support/erlang-payloads.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/polyglot -> repo
export const run = promisify(execFile);

/** A setup script's first run on a fresh machine downloads from the registries and compiles. */
export const SETUP_TIMEOUT_MS = 170_000;

export interface PayloadFiles {
  readonly files: string[];
  readonly records: PayloadRecord[];
}

export interface PolyglotPayloads {
  /** Every named eterm case of the generator (every -1/-2 rule, Unicode, compression): send with --format eterm. */
  readonly eterm: PayloadFiles;
  /** Realistic messages as XML: send with --format xml. */
  readonly xml: PayloadFiles;
  /** Realistic messages as eterm, compressed eterm and XML, mixed: send with the default format (auto). */
  readonly mixed: PayloadFiles;
}

function writeAll(dir: string, prefix: string, records: PayloadRecord[]): PayloadFiles {
  const files = records.map((r, i) => {
    const file = join(dir, `${prefix}-${String(i).padStart(3, '0')}.${r.format === 'xml' ? 'xml' : 'bin'}`);
    writeFileSync(file, r.payload);
    return file;
  });
  return { files, records };
}

export function writePolyglotPayloads(dir: string): PolyglotPayloads {
  const eterm = erlangCases().filter((c) => c.format === 'eterm');
  const kinds = new Set(eterm.map((c) => ('jid' in c.expected ? 'jid' : c.expected.code)));
  assert.deepEqual([...kinds].sort(), ['-1', '-2', 'jid'], 'the Erlang cases must hold all three answers');
  const random = erlangRandomMessages(40, 4_242);
  const xml = random.filter((r) => r.format === 'xml');
  assert.ok(xml.length >= 40 && random.some((r) => r.format === 'eterm' && r.payload[1] === 80), 'the random messages must hold XML and compressed terms');
  return { eterm: writeAll(dir, 'eterm', eterm), xml: writeAll(dir, 'xml', xml), mixed: writeAll(dir, 'mixed', random) };
}

/** What the examples print for Erlang's answer: the JID, or the error codes that stand for -1/-2. */
function acceptable(expected: ExpectedAnswer): { jid: string } | { codes: string[] } {
  if ('jid' in expected) {
    const at = expected.jid.indexOf('@');
    if (at <= 0) return { codes: ['ERROR_CODE_JID_WITHOUT_LOCAL_PART'] };
    if (at === expected.jid.length - 1) return { codes: ['ERROR_CODE_JID_WITHOUT_DOMAIN'] };
    return { jid: expected.jid };
  }
  return expected.code === '-2' ? { codes: ['ERROR_CODE_NOT_GROUPCHAT'] } : { codes: ['ERROR_CODE_MALFORMED', 'ERROR_CODE_PAYLOAD_TOO_LARGE'] };
}

/**
 * Checks an example's stdout: one answer per file, in order, keyed by the file's path, each the
 * answer Erlang gives. Answers are cut at the next file's key, so a JID or detail holding a
 * newline cannot shift the lines.
 */
export function assertAnswersMatchErlang(stdout: string, payloads: PayloadFiles): void {
  const { files, records } = payloads;
  assert.ok(stdout.endsWith('\n'), `output ends without a newline: ${stdout.slice(-200)}`);
  let pos = 0;
  for (let i = 0; i < files.length; i++) {
    const prefix = `${files[i]}\t`;
    assert.equal(
      stdout.slice(pos, pos + prefix.length),
      prefix,
      `answer ${i} (${records[i].name}) is not keyed by its file; output from there: ${stdout.slice(pos, pos + 300)}`,
    );
    const end = i + 1 < files.length ? stdout.indexOf(`\n${files[i + 1]}\t`, pos) : stdout.length - 1;
    assert.ok(end > pos, `no answer after ${files[i]}`);
    const fields = stdout.slice(pos + prefix.length, end).split('\t');
    const expected = acceptable(records[i].expected);
    const what = `${records[i].name} (${files[i]}): printed ${JSON.stringify(fields)}, Erlang ${JSON.stringify(records[i].expected)}`;
    if ('jid' in expected) {
      assert.deepEqual(fields, [expected.jid], what);
    } else {
      assert.ok(fields.length >= 2, what);
      assert.ok(expected.codes.includes(fields[0]), what);
      assert.ok(fields.slice(1).join('\t').length > 0, `${what}: no detail`);
    }
    pos = end + 1;
  }
  assert.equal(pos, stdout.length, `output after the last answer: ${stdout.slice(pos, pos + 300)}`);
}
