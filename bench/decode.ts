/**
 * In-process decode benchmark (one core: this one thread), on MongooseIM-shaped messages made by
 * Erlang (test/support/erlang-payloads.escript: bodies of 20 to 420 characters, 2% one-to-one chat).
 * For each format, our items/s beside a baseline on the same payloads in the same process:
 *   eterm             baseline: a plain byte scan (XOR of every payload byte): the least any reader does
 *   compressed eterm  baseline: zlib.inflateSync alone
 *   xml               baseline: fast-xml-parser's XMLParser.parse alone (UTF-8 decoding included)
 * Rates are per second of this thread's CPU time (wall-clock rates printed beside them).
 * Run: npm run bench:decode   (BENCH_MESSAGES=100000 BENCH_SECONDS=3 by default)
 */
import { inflateSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { extractSenderJid, isSuccess, referenceCode, type Answer } from '../services/decode/index.js';
import { erlangRandomMessages, type ExpectedAnswer, type PayloadRecord } from '../test/support/erlang-payloads.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SEED = Number(process.env.BENCH_SEED ?? 42);

/**
 * Runs `work` over all payloads repeatedly for about SECONDS; returns items per second of this
 * thread's CPU time (user + system), which other processes on a shared machine do not inflate
 * as they do wall time. The wall-clock rate is kept for the printout.
 */
function itemsPerSecond(payloads: readonly Uint8Array[], work: (p: Uint8Array) => unknown): number {
  for (let i = 0; i < Math.min(payloads.length, 20_000); i++) work(payloads[i]); // warm-up
  let items = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const budget = BigInt(Math.round(SECONDS * 1e9));
  let elapsed: bigint;
  do {
    for (const p of payloads) work(p);
    items += payloads.length;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  const cpu = process.cpuUsage(cpuStart);
  lastWallRate = items / (Number(elapsed) / 1e9);
  return items / ((cpu.user + cpu.system) / 1e6);
}
let lastWallRate = 0;

function same(answer: Answer, expected: ExpectedAnswer): boolean {
  return isSuccess(answer) ? 'jid' in expected && expected.jid === answer.jid : 'code' in expected && expected.code === referenceCode(answer);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en').padStart(11);

/** Measures ours, then the baseline, and prints one line (CPU-time rates; wall-clock rates in brackets). */
function row(
  name: string,
  payloads: readonly Uint8Array[],
  ours: (p: Uint8Array) => unknown,
  baselineName: string,
  baseline: (p: Uint8Array) => unknown,
): void {
  const oursRate = itemsPerSecond(payloads, ours);
  const oursWall = lastWallRate;
  const baseRate = itemsPerSecond(payloads, baseline);
  const baseWall = lastWallRate;
  console.log(
    `${name.padEnd(17)} ${fmt(oursRate)} items/s (wall ${fmt(oursWall).trim()})   ${baselineName.padEnd(28)} ${fmt(baseRate)} items/s (wall ${fmt(baseWall).trim()})   ratio ${(oursRate / baseRate).toFixed(2)}`,
  );
}

function main(): void {
  const started = Date.now();
  const records = erlangRandomMessages(MESSAGES, SEED);
  const pick = (filter: (r: PayloadRecord, i: number) => boolean): PayloadRecord[] => records.filter(filter);
  const eterm = pick((r, i) => i % 3 === 0);
  const compressed = pick((r, i) => i % 3 === 1);
  const xml = pick((r, i) => i % 3 === 2);
  const bytes = (rs: PayloadRecord[]): number => rs.reduce((n, r) => n + r.payload.length, 0) / rs.length;
  console.log(
    `decode bench: ${MESSAGES.toLocaleString('en')} messages from Erlang (seed ${SEED}) in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `mean sizes: eterm ${bytes(eterm).toFixed(0)} B, compressed ${bytes(compressed).toFixed(0)} B (${compressed.filter((r) => r.payload[1] === 80).length} really compressed), xml ${bytes(xml).toFixed(0)} B; ` +
      `node ${process.version}, ${SECONDS} s per measure, one thread`,
  );

  for (const [name, rs, format] of [
    ['eterm', eterm, 'eterm'],
    ['compressed eterm', compressed, 'eterm'],
    ['xml', xml, 'xml'],
  ] as const) {
    const wrong = rs.filter((r) => !same(extractSenderJid(r.payload, format), r.expected)).length;
    if (wrong > 0) console.log(`!! ${name}: ${wrong} answers differ from Erlang's`);
  }

  // Each payload its own Buffer, one format's payloads allocated together, as a database driver
  // hands rows over (not views into the generator's file, where the three formats interleave).
  const own = (rs: PayloadRecord[]): Uint8Array[] => rs.map((r) => Buffer.from(r.payload));
  const etermPayloads = own(eterm);
  const compressedPayloads = own(compressed);
  const xmlPayloads = own(xml);
  let sink = 0;
  const byteScan = (p: Uint8Array): void => {
    let x = 0;
    for (let i = 0; i < p.length; i++) x ^= p[i];
    sink ^= x;
  };
  const parser = new XMLParser({ ignoreAttributes: false });
  const utf8 = new TextDecoder();

  row('eterm', etermPayloads, (p) => extractSenderJid(p, 'eterm'), 'byte scan (XOR every byte)', byteScan);
  row(
    'compressed eterm',
    compressedPayloads,
    (p) => extractSenderJid(p, 'eterm'),
    'zlib.inflateSync alone',
    (p) => (p[1] === 80 ? inflateSync(p.subarray(6)) : p),
  );
  row(
    'xml',
    xmlPayloads,
    (p) => extractSenderJid(p, 'xml'),
    'fast-xml-parser parse alone',
    (p) => parser.parse(utf8.decode(p)),
  );
  if (sink === 0.5) console.log(''); // keeps the byte scan from being optimised away
}

main();
