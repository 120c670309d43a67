/**
 * Payloads made by a real Erlang VM with the origin_id and is_groupchat answers MongooseIM's own
 * functions give for them (test/support/erlang-fields.escript: get_origin_id/1 and is_groupchat/1
 * with the exml_query of MongooseIM 3.7.0, copied as they were).
 *
 *   erlangFieldCases()                    named edge cases (eterm in three encodings, xml where writable)
 *   erlangFieldMessages(n, seed)          n realistic messages x (eterm, compressed eterm, xml)
 *   erlangFieldOracle(payloads, maxDepth) Erlang's answers for each eterm payload
 *
 * Throws if escript cannot be run: a test that needs Erlang fails rather than skips.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { supportEscript } from './escript-runner.js';

/** origin_id: the id, null (none: the column stays NULL), or 'malformed'. */
export type ExpectedOriginId = { readonly originId: string | null } | 'malformed';
/** is_groupchat: the boolean, or 'malformed'. */
export type ExpectedGroupchat = boolean | 'malformed';

export interface FieldRecord {
  readonly name: string;
  readonly format: 'eterm' | 'xml';
  readonly payload: Uint8Array;
  readonly originId: ExpectedOriginId;
  readonly isGroupchat: ExpectedGroupchat;
}

const escript = supportEscript('erlang-fields');

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readAnswers(buf: Buffer, pos: number): [ExpectedOriginId, ExpectedGroupchat, number] {
  const kind = buf[pos];
  const n = buf.readUInt32BE(pos + 1);
  const end = pos + 5 + n;
  let originId: ExpectedOriginId;
  if (kind === 0) originId = { originId: utf8.decode(buf.subarray(pos + 5, end)) };
  else if (kind === 1) originId = { originId: null };
  else if (kind === 2) originId = 'malformed';
  else throw new Error(`erlang-fields: bad origin_id kind ${kind} at byte ${pos}`);
  const g = buf[end];
  if (g > 2) throw new Error(`erlang-fields: bad is_groupchat answer ${g} at byte ${end}`);
  const isGroupchat: ExpectedGroupchat = g === 2 ? 'malformed' : g === 1;
  return [originId, isGroupchat, end + 1];
}

function readRecords(file: string): FieldRecord[] {
  const buf = readFileSync(file);
  const records: FieldRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nameLength = buf.readUInt16BE(pos);
    const name = buf.toString('utf8', pos + 2, pos + 2 + nameLength);
    pos += 2 + nameLength;
    const format = buf[pos] === 0x65 ? 'eterm' : 'xml';
    const payloadLength = buf.readUInt32BE(pos + 1);
    const payload = buf.subarray(pos + 5, pos + 5 + payloadLength);
    pos += 5 + payloadLength;
    const [originId, isGroupchat, next] = readAnswers(buf, pos);
    pos = next;
    records.push({ name, format, payload, originId, isGroupchat });
  }
  return records;
}

export function erlangFieldCases(): FieldRecord[] {
  return escript.withTempDir((dir) => {
    const out = join(dir, 'cases.bin');
    escript.run(['cases', out]);
    return readRecords(out);
  });
}

/**
 * `count` realistic messages of a user's or a room's archive (chat, groupchat, normal, no type;
 * an origin-id in 70% of them, at a random place among the children, sometimes without id or in
 * another namespace), each as three consecutive records: eterm, compressed eterm, xml. Seeded.
 */
export function erlangFieldMessages(count: number, seed: number): FieldRecord[] {
  return escript.withTempDir((dir) => {
    const out = join(dir, 'random.bin');
    escript.run(['random', String(count), String(seed), out]);
    return readRecords(out);
  });
}

/** Erlang's answers for each eterm payload, in order: one VM for the whole batch. */
export function erlangFieldOracle(payloads: readonly Uint8Array[], maxDepth = 512): { originId: ExpectedOriginId; isGroupchat: ExpectedGroupchat }[] {
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
    const answers: { originId: ExpectedOriginId; isGroupchat: ExpectedGroupchat }[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const [originId, isGroupchat, next] = readAnswers(buf, pos);
      answers.push({ originId, isGroupchat });
      pos = next;
    }
    if (answers.length !== payloads.length) throw new Error(`erlang-fields: oracle answered ${answers.length} of ${payloads.length}`);
    return answers;
  });
}
