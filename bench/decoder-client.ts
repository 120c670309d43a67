/**
 * The two decoding paths of openDecoder() on the same compressed-eterm payloads (made by Erlang)
 * in the same run: the in-process pool (batches posted straight to the workers) against a gRPC
 * sidecar on loopback in this process (what `migrate` without --sidecar did before: encode,
 * HTTP/2 both ways, parse, then the same workers). Same workers count, same batch size, same
 * batches in flight. Prints items/s (wall clock) and how busy the main thread was (event-loop
 * utilisation: the thread that also drives the database), and the ratio.
 *
 * Run: npm run build && node dist/bench/decoder-client.js
 *   BENCH_MESSAGES=30000 BENCH_SECONDS=4 BENCH_BATCH=2000 BENCH_IN_FLIGHT=4 BENCH_WORKERS=(cores) BENCH_SEED=42
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { openDecoder, type Decoder, type ExtractItem } from '../clients/decoder-client/index.js';
import { startSidecar } from '../services/sidecar/server.js';
import { erlangRandomMessages } from '../test/support/erlang-payloads.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 30_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const BATCH = Number(process.env.BENCH_BATCH ?? 2_000); // migrate's default --batch-size
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 4);
const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
const SEED = Number(process.env.BENCH_SEED ?? 42);
const ROUNDS = 2; // each path twice, alternating, so that drift on a shared machine hits both

interface Measure {
  readonly itemsPerSecond: number;
  readonly mainThreadBusy: number;
}

/** Keeps IN_FLIGHT batches outstanding on one stream for about `seconds`. */
async function measure(decoder: Decoder, batches: readonly ExtractItem[][], seconds: number): Promise<Measure> {
  const stream = decoder.openStream('eterm');
  const started = performance.now();
  const elu = performance.eventLoopUtilization();
  const deadline = started + seconds * 1000;
  let items = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const batch = batches[next++ % batches.length];
      const results = await stream.extract(batch);
      if (results.length !== batch.length || !results[0].ok) throw new Error('wrong answer in the bench');
      items += results.length;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  await stream.end();
  const elapsed = (performance.now() - started) / 1000;
  return { itemsPerSecond: items / elapsed, mainThreadBusy: performance.eventLoopUtilization(elu).utilization };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en').padStart(9);

async function main(): Promise<void> {
  const records = erlangRandomMessages(MESSAGES, SEED).filter((r, i) => i % 3 === 1 && 'jid' in r.expected);
  // Each payload its own Buffer, as a database driver hands rows over.
  const items = records.map((r, i): ExtractItem => ({ key: String(i), payload: Buffer.from(r.payload) }));
  const batches: ExtractItem[][] = [];
  for (let i = 0; i + BATCH <= items.length; i += BATCH) batches.push(items.slice(i, i + BATCH));
  const meanBytes = items.reduce((n, item) => n + item.payload.length, 0) / items.length;
  console.log(
    `decoder-client bench: ${batches.length} batches of ${BATCH} compressed-eterm payloads (mean ${meanBytes.toFixed(0)} B, seed ${SEED}), ` +
      `${IN_FLIGHT} in flight, ${WORKERS} workers per path, ${SECONDS} s x ${ROUNDS} per path; node ${process.version}, ${availableParallelism()} cores`,
  );

  const sidecar = await startSidecar({ listen: '127.0.0.1:0', metricsListen: null, logLevel: 'warn', poolSize: WORKERS });
  const paths: [string, Decoder][] = [
    ['in-process pool', await openDecoder({ maxInFlightBatches: IN_FLIGHT, workers: WORKERS })],
    ['loopback gRPC', await openDecoder({ sidecar: sidecar.address, maxInFlightBatches: IN_FLIGHT })],
  ];
  try {
    for (const [, decoder] of paths) await measure(decoder, batches, 1); // warm-up: JIT, connections
    const results = new Map<string, Measure[]>(paths.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, decoder] of paths) results.get(name)!.push(await measure(decoder, batches, SECONDS));
    }
    const mean = (ms: Measure[]): Measure => ({
      itemsPerSecond: ms.reduce((n, m) => n + m.itemsPerSecond, 0) / ms.length,
      mainThreadBusy: ms.reduce((n, m) => n + m.mainThreadBusy, 0) / ms.length,
    });
    const summary = paths.map(([name]) => [name, mean(results.get(name)!)] as const);
    for (const [name, m] of summary) {
      const runs = results.get(name)!.map((r) => fmt(r.itemsPerSecond).trim()).join(', ');
      console.log(`${name.padEnd(16)} ${fmt(m.itemsPerSecond)} items/s (runs: ${runs})   main thread busy ${(m.mainThreadBusy * 100).toFixed(0)}%`);
    }
    const [local, loopback] = summary.map(([, m]) => m);
    console.log(
      `ratio in-process / loopback: ${(local.itemsPerSecond / loopback.itemsPerSecond).toFixed(2)} x items/s; ` +
        `main-thread busy per item: ${((local.mainThreadBusy / local.itemsPerSecond) / (loopback.mainThreadBusy / loopback.itemsPerSecond)).toFixed(2)} x`,
    );
  } finally {
    for (const [, decoder] of paths) await decoder.close();
    await sidecar.shutdown(1_000);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
