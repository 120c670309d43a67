/**
 * Payloads made by a real Erlang VM, with the answers Erlang computes for them.
 * Runs test/support/erlang-payloads.escript (one VM per call, everything batched into files), so
 * tests, benches and other suites get MongooseIM-shaped payloads without hard-coded bytes.
 *
 *   erlangCases()                      named edge cases of the semantics page (3 encodings each)
 *   erlangRandomMessages(n, seed)      n realistic MUC messages x (eterm, compressed eterm, xml)
 *   erlangOracle(payloads, maxDepth)   Erlang's answer (binary_to_term + the reference rules) for each payload
 *   erlangLowercaseTable()             every code point string:lowercase/1 changes, and into what
 *
 * Throws if escript cannot be run: a test that needs Erlang fails rather than skips.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { supportEscript } from './escript-runner.js';

/** What Erlang (the reference rules) answers: the bare JID, or the reference's -1 / -2. */
export type ExpectedAnswer = { readonly jid: string } | { readonly code: '-1' | '-2' };

export interface PayloadRecord {
  /** Says what the payload is, e.g. "type chat (minor 2)" or "random 17 compressed". */
  readonly name: string;
  readonly format: 'eterm' | 'xml';
  readonly payload: Uint8Array;
  readonly expected: ExpectedAnswer;
}

const escript = supportEscript('erlang-payloads');

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readAnswer(buf: Buffer, pos: number): [ExpectedAnswer, number] {
  const kind = buf[pos];
  const n = buf.readUInt32BE(pos + 1);
  const end = pos + 5 + n;
  if (kind === 0) return [{ jid: utf8.decode(buf.subarray(pos + 5, end)) }, end];
  if (kind === 1) return [{ code: '-1' }, end];
  if (kind === 2) return [{ code: '-2' }, end];
  throw new Error(`erlang-payloads: bad answer kind ${kind} at byte ${pos}`);
}

function readRecords(file: string): PayloadRecord[] {
  const buf = readFileSync(file);
  const records: PayloadRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nameLength = buf.readUInt16BE(pos);
    const name = buf.toString('utf8', pos + 2, pos + 2 + nameLength);
    pos += 2 + nameLength;
    const format = buf[pos] === 0x65 ? 'eterm' : 'xml';
    const payloadLength = buf.readUInt32BE(pos + 1);
    const payload = buf.subarray(pos + 5, pos + 5 + payloadLength);
    pos += 5 + payloadLength;
    const [expected, next] = readAnswer(buf, pos);
    pos = next;
    records.push({ name, format, payload, expected });
  }
  return records;
}

/** Named edge cases: every -1/-2 case of the semantics page, Unicode JIDs, compression edge cases. */
export function erlangCases(): PayloadRecord[] {
  return escript.withTempDir((dir) => {
    const out = join(dir, 'cases.bin');
    escript.run(['cases', out]);
    return readRecords(out);
  });
}

/**
 * `count` realistic MUC messages (bodies of 20 to 420 characters, 2% one-to-one chat without the
 * muc#user x, Unicode JIDs with random case and resources, minor_version 1 or 2), each returned as
 * three consecutive records: eterm, compressed eterm, xml (same expected answer). Seeded.
 */
export function erlangRandomMessages(count: number, seed: number): PayloadRecord[] {
  return escript.withTempDir((dir) => {
    const out = join(dir, 'random.bin');
    escript.run(['random', String(count), String(seed), out]);
    return readRecords(out);
  });
}

/** Erlang's answer for each eterm payload, in order: one VM for the whole batch. */
export function erlangOracle(payloads: readonly Uint8Array[], maxDepth = 512): ExpectedAnswer[] {
  return escript.withTempDir((dir) => {
    const input = join(dir, 'in.bin');
    const out = join(dir, 'out.bin');
    const parts: Uint8Array[] = [];
    for (const payload of payloads) {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(payload.length);
      parts.push(header, payload);
    }
    writeFileSync(input, Buffer.concat(parts));
    escript.run(['oracle', String(maxDepth), input, out]);
    const buf = readFileSync(out);
    const answers: ExpectedAnswer[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const [answer, next] = readAnswer(buf, pos);
      answers.push(answer);
      pos = next;
    }
    if (answers.length !== payloads.length) throw new Error(`erlang-payloads: oracle answered ${answers.length} of ${payloads.length}`);
    return answers;
  });
}

/** Code point -> its string:lowercase/1 image, for every code point that changes. */
export function erlangLowercaseTable(): Map<number, string> {
  return escript.withTempDir((dir) => {
    const out = join(dir, 'lower.bin');
    escript.run(['lowercase', out]);
    const buf = readFileSync(out);
    const table = new Map<number, string>();
    let pos = 0;
    while (pos < buf.length) {
      const cp = buf.readUInt32BE(pos);
      const n = buf[pos + 4];
      table.set(cp, buf.toString('utf8', pos + 5, pos + 5 + n));
      pos += 5 + n;
    }
    return table;
  });
}

/** The bytes the reference escript writes on stdout for this answer: `LENGTH\nJID`, `-1\n` or `-2\n`. */
export function referenceOutput(expected: ExpectedAnswer): Buffer {
  if ('jid' in expected) {
    const jid = Buffer.from(expected.jid, 'utf8');
    return Buffer.concat([Buffer.from(`${jid.length}\n`), jid]);
  }
  return Buffer.from(`${expected.code}\n`);
}
