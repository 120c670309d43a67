/**
 * The Node side of `npm run bench:native-inflate` (bench/native-inflate/run.sh): makes the
 * Erlang-made compressed terms the native inflaters are measured on, writes them to the file given
 * (each a 4-byte little-endian length and the payload), and measures on the same payloads, in
 * this process, what the decoder pays today: inflating through its reused zlib handle, and the
 * whole decode (inflate + term walk). CPU µs per payload, best of 5.
 *
 *   node dist/bench/native-inflate/payloads.js FILE   (BENCH_MESSAGES, default 30,000 messages; BENCH_SEED)
 */
import { writeFileSync } from 'node:fs';
import { DEFAULT_DECODE_LIMITS, extractSenderJid, isSuccess } from '../../services/decode/index.js';
import { inflateCompressedTerm } from '../../services/decode/eterm-inflate.js';
import { erlangRandomMessages } from '../../test/support/erlang-payloads.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 30_000);
const SEED = Number(process.env.BENCH_SEED ?? 42);
const ROUNDS = 5;
const PASSES = 10;

function microsPerPayload(payloads: readonly Uint8Array[], work: (p: Uint8Array) => void): number {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.cpuUsage();
    for (let pass = 0; pass < PASSES; pass++) for (const p of payloads) work(p);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / (PASSES * payloads.length));
  }
  return best;
}

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node dist/bench/native-inflate/payloads.js FILE');
  process.exit(2);
}
// Every third record of each message is its compressed term.
const records = erlangRandomMessages(MESSAGES, SEED).filter((r, i) => i % 3 === 1 && r.format === 'eterm');
const payloads = records.map((r) => r.payload);
const parts: Uint8Array[] = [];
for (const payload of payloads) {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(payload.length);
  parts.push(length, payload);
}
writeFileSync(file, Buffer.concat(parts));

// Every answer is checked against Erlang's once, outside the timed loops.
records.forEach((r, i) => {
  const answer = extractSenderJid(r.payload, 'eterm');
  const same = isSuccess(answer) ? 'jid' in r.expected && r.expected.jid === answer.jid : 'code' in r.expected;
  if (!same) throw new Error(`payload ${i} (${r.name}): the decoder's answer differs from Erlang's`);
  if (!(inflateCompressedTerm(r.payload, DEFAULT_DECODE_LIMITS) instanceof Uint8Array)) throw new Error(`payload ${i} (${r.name}) does not inflate`);
});
const inflating = microsPerPayload(payloads, (p) => inflateCompressedTerm(p, DEFAULT_DECODE_LIMITS));
const decoding = microsPerPayload(payloads, (p) => extractSenderJid(p, 'eterm'));
const meanBytes = payloads.reduce((sum, p) => sum + p.length, 0) / payloads.length;
console.log(
  `Node ${process.version}, one thread, ${payloads.length} Erlang-made compressed terms (${Math.round(meanBytes)} B mean), CPU µs per payload (best of ${ROUNDS}):`,
);
console.log(`  the decoder's inflating (Node's zlib, one reused handle)   ${inflating.toFixed(2)}`);
console.log(`  the decoder whole (inflate + term walk)                    ${decoding.toFixed(2)}`);
