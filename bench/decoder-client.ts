/**
 * The two decoding paths of openDecoder() on the same compressed-eterm payloads (made by Erlang)
 * in the same run: the in-process pool (batches posted straight to the workers) against a gRPC
 * sidecar on loopback in this process (what `migrate` without --sidecar did before: encode,
 * HTTP/2 both ways, parse, then the same workers). Same workers count, same batch size, same
 * batches in flight. Prints items/s (wall clock), and CPU time per item: of the main thread (the
 * thread that also drives the database; Linux /proc) and of the whole process (all threads). On a
 * shared, loaded machine items/s swing with the neighbours; CPU per item much less.
 *
 * Run: npm run build && node dist/bench/decoder-client.js
 *   BENCH_MESSAGES=30000 BENCH_SECONDS=4 BENCH_BATCH=2000 BENCH_IN_FLIGHT=4 BENCH_WORKERS=(cores) BENCH_SEED=42
 */
import { readFileSync } from 'node:fs';
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
  /** CPU microseconds per item: the main thread's (NaN off Linux), and all threads'. */
  readonly mainCpuPerItem: number;
  readonly processCpuPerItem: number;
}

/** CPU time of the main thread in microseconds (utime + stime of /proc/self/task/PID/stat), or NaN. */
function mainThreadCpuMicros(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // fields 14 and 15, in USER_HZ (100) ticks
  } catch {
    return NaN;
  }
}

/** Keeps IN_FLIGHT batches outstanding on one stream for about `seconds`. */
async function measure(decoder: Decoder, batches: readonly ExtractItem[][], seconds: number): Promise<Measure> {
  const stream = decoder.openStream('eterm');
  const started = performance.now();
  const mainStart = mainThreadCpuMicros();
  const processStart = process.cpuUsage();
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
  const processCpu = process.cpuUsage(processStart);
  return {
    itemsPerSecond: items / elapsed,
    mainCpuPerItem: (mainThreadCpuMicros() - mainStart) / items,
    processCpuPerItem: (processCpu.user + processCpu.system) / items,
  };
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
    const average = (ms: Measure[], key: keyof Measure): number => ms.reduce((n, m) => n + m[key], 0) / ms.length;
    const mean = (ms: Measure[]): Measure => ({
      itemsPerSecond: average(ms, 'itemsPerSecond'),
      mainCpuPerItem: average(ms, 'mainCpuPerItem'),
      processCpuPerItem: average(ms, 'processCpuPerItem'),
    });
    const summary = paths.map(([name]) => [name, mean(results.get(name)!)] as const);
    for (const [name, m] of summary) {
      const runs = results
        .get(name)!
        .map((r) => fmt(r.itemsPerSecond).trim())
        .join(', ');
      console.log(
        `${name.padEnd(16)} ${fmt(m.itemsPerSecond)} items/s (runs: ${runs})   CPU per item: main thread ${m.mainCpuPerItem.toFixed(1)} us, all threads ${m.processCpuPerItem.toFixed(1)} us`,
      );
    }
    const [local, loopback] = summary.map(([, m]) => m);
    console.log(
      `ratio in-process / loopback: ${(local.itemsPerSecond / loopback.itemsPerSecond).toFixed(2)} x items/s; ` +
        `CPU per item ${(local.mainCpuPerItem / loopback.mainCpuPerItem).toFixed(2)} x on the main thread, ` +
        `${(local.processCpuPerItem / loopback.processCpuPerItem).toFixed(2)} x on all threads`,
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
