/**
 * XML decoding speed: our extractFromXml against fast-xml-parser's parse alone (the baseline the
 * decoder issue names), on the same generated MongooseIM-shaped payloads, in the same process,
 * on one core. Prints items per CPU second (and per wall-clock second) for each, and the ratio.
 *
 *   npm run bench:xml [-- --count 20000 --seconds 3 --seed 1]
 */
import { parseArgs } from 'node:util';
import { XMLParser } from 'fast-xml-parser';
import { isSuccess, DEFAULT_DECODE_LIMITS, extractFromXml } from '../services/decode/index.js';
import { realisticMessage } from '../test/support/xml-messages.js';
import { seededRandom } from '../cli/demo/seeded-random.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
  },
});
const count = Number(values.count);
const seconds = Number(values.seconds);
const rand = seededRandom(Number(values.seed));
const payloads: Buffer[] = Array.from({ length: count }, () => Buffer.from(realisticMessage(rand), 'utf8'));
const totalBytes = payloads.reduce((sum, p) => sum + p.length, 0);

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US').padStart(11);

/**
 * Runs `work` over all payloads, round after round, for about `seconds`. Returns items per CPU
 * second of this (single-threaded) process, which stays meaningful on a shared machine; items per
 * wall-clock second are printed beside it.
 */
function measure(label: string, work: (p: Buffer) => unknown): number {
  let sink = 0;
  for (let k = 0; k < Math.min(2000, payloads.length); k++) sink += work(payloads[k]) ? 1 : 0; // warm-up
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let items = 0;
  let now = start;
  while (now < deadline) {
    for (const p of payloads) sink += work(p) ? 1 : 0;
    items += payloads.length;
    now = process.hrtime.bigint();
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const perCpu = items / cpuSeconds;
  const perWall = items / (Number(now - start) / 1e9);
  console.log(`${label.padEnd(30)} ${fmt(perCpu)} items/CPU-s ${fmt(perWall)} items/wall-s  (${items} items)${sink < 0 ? '!' : ''}`);
  return perCpu;
}

const limits = DEFAULT_DECODE_LIMITS;
let ok = 0;
for (const p of payloads) if (isSuccess(extractFromXml(p, limits))) ok += 1;
console.log(`${count} payloads, mean ${Math.round(totalBytes / count)} bytes, ${ok} answer a JID (the rest are 1:1 chats)`);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  trimValues: false,
  processEntities: { enabled: true, maxEntityCount: 100, maxTotalExpansions: 1000, maxExpandedLength: 100_000 },
});
const ours = measure('extractFromXml (ours)', (p) => extractFromXml(p, limits));
const baseline = measure('fast-xml-parser parse alone', (p) => parser.parse(p));
console.log(`ratio (CPU time): ${(ours / baseline).toFixed(1)}x the baseline`);
