/**
 * Writes ghz's request data for the load tests: batches of 1, 100 and 1,000 archived MUC
 * messages as MongooseIM 3.3 stores them in RDBMS (term_to_binary(Packet, [compressed]), made
 * by a real Erlang VM), base64 in ghz's JSON. Messages vary in sender, resource, id and body
 * length (20 to 600 characters).
 *
 *   node dist/bench/ghz/make-data.js OUT_DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { erlangEncode } from '../../test/support/term-encoder-erlang.js';
import { mucMessage, xmlTerm } from '../../cli/demo/term-encoder.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';

const DISTINCT_MESSAGES = 1_000;
const BATCH_SIZES = [1, 100, 1_000] as const;
/** Messages per stream call in the streaming scenario. */
export const STREAM_BATCHES_PER_CALL = 10;

const WORDS = ['hello', 'meeting', 'tomorrow', 'deploy', 'zażółć', 'gęślą', 'jaźń', 'ok', 'thanks', 'review', 'the', 'build', 'is', 'green', '👍', 'lunch?'];

function body(random: () => number): string {
  const target = 20 + Math.floor(random() * 580);
  const words: string[] = [];
  let length = 0;
  while (length < target) {
    const word = WORDS[Math.floor(random() * WORDS.length)];
    words.push(word);
    length += word.length + 1;
  }
  return words.join(' ');
}

function main(outDir: string): void {
  const random = seededRandom(20260325);
  const specs = Array.from({ length: DISTINCT_MESSAGES }, (_, i) => ({
    jid: `User${i % 250}@Example${i % 7}.COM/res-${Math.floor(random() * 1e6)}`,
    id: `m${i}-${Math.floor(random() * 1e9)}`,
    from: `room${i % 13}@muc.example.com/nick${i % 250}`,
    body: body(random),
  }));
  const encoded = erlangEncode(specs.map((spec) => xmlTerm(mucMessage(spec))));
  const payloads = encoded.map((e) => e.compressed);
  const compressedCount = payloads.filter((p) => p[1] === 80).length;
  if (compressedCount !== payloads.length) throw new Error(`only ${compressedCount} of ${payloads.length} payloads came out compressed`);

  mkdirSync(outDir, { recursive: true });
  const request = (size: number, offset = 0) => ({
    format: 'PAYLOAD_FORMAT_ETERM',
    items: Array.from({ length: size }, (_, i) => {
      const n = (offset + i) % payloads.length;
      return { key: String(n), payload: payloads[n].toString('base64') };
    }),
  });
  for (const size of BATCH_SIZES) {
    writeFileSync(join(outDir, `batch-${size}.json`), JSON.stringify(request(size)));
  }
  writeFileSync(
    join(outDir, `stream-${STREAM_BATCHES_PER_CALL}x1000.json`),
    JSON.stringify(Array.from({ length: STREAM_BATCHES_PER_CALL }, (_, b) => request(1_000, b * 100))),
  );
  const bytes = payloads.reduce((sum, p) => sum + p.length, 0);
  process.stdout.write(
    `bench/ghz: ${payloads.length} Erlang-made compressed payloads, ${Math.round(bytes / payloads.length)} bytes on average, written to ${outDir}\n`,
  );
}

main(process.argv[2] ?? 'bench/results/ghz/data');
