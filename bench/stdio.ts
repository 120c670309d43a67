/**
 * `mim-sender-jid stdio` against an Erlang VM answering the same protocol, on the same corpus, in
 * the same run. The corpus is made by Erlang (test/support/erlang-payloads.escript: MongooseIM-shaped
 * MUC messages, bodies of 20 to 420 characters, 2% one-to-one chat): BENCH_MESSAGES messages, each as
 * a plain term, a compressed term and XML, so 3 x BENCH_MESSAGES records, written as `LENGTH\nPAYLOAD`
 * files, one per format. Both sides read their file through a pipe (`cat FILE | ...`) and write
 * their answers to a file:
 *
 *   ours     node bin/mim-sender-jid.js stdio eterm|xml
 *   Erlang   escript bench/stdio-baseline.escript eterm|xml   (the reference escript's loop:
 *            file:read_line + file:read + binary_to_term and the reference's rules; xml through xmerl)
 *
 * Each side's output is compared byte for byte with the other's and with the answers the generator
 * computed. Timing: CPU time (user + system, all threads) of each command, which a busy shared
 * machine does not inflate as it does wall time; the best of BENCH_ROUNDS interleaved rounds, minus
 * the best start-up cost of the same command on empty input (printed beside it), so the ratio is
 * one of records per CPU second while running. Wall-clock rates are printed beside them. The
 * Erlang VM runs without scheduler busy-waiting (see the escript), so its CPU time is its work.
 * Ratios are ours / Erlang's.
 *
 * Beside them, the in-process decoder: a fresh Node process that reads the same file, splits it into
 * payload views (not timed), then calls extractSenderJid on each payload, timed by its own
 * process.cpuUsage (best of BENCH_ROUNDS). The ratio stdio / in-process (records per CPU second) is
 * what framing, reading stdin and writing answers cost on top of decoding: 1.0 would be free.
 * Target >= 0.8 for each format.
 *
 * Run: npm run build && node dist/bench/stdio.js   (BENCH_MESSAGES=80000 BENCH_ROUNDS=3 BENCH_SEED=42;
 *      BENCH_CORPUS_DIR=DIR keeps the corpus there for the next run; BENCH_ERLANG=0 leaves the Erlang side out)
 * Targets: plain >= 5x, compressed >= 2.5x, xml >= 20x.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractSenderJid, isSuccess, type PayloadFormat } from '../services/decode/index.js';
import { erlangRandomMessages, referenceOutput, type PayloadRecord } from '../test/support/erlang-payloads.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 80_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SEED = Number(process.env.BENCH_SEED ?? 42);
/** Where to keep the corpus between runs (made again only when missing); a temp dir by default. */
const CORPUS_DIR = process.env.BENCH_CORPUS_DIR;
/** BENCH_ERLANG=0 leaves the Erlang side out (it takes most of a run's time): only stdio ÷ in-process is printed. */
const WITH_ERLANG = process.env.BENCH_ERLANG !== '0';

const here = dirname(fileURLToPath(import.meta.url));
/** From dist/bench/ or bench/: the checkout's root. */
const root = resolve(here, here.includes(join('dist', 'bench')) ? '../..' : '..');
const CLI = join(root, 'bin', 'mim-sender-jid.js');
const BASELINE = join(root, 'bench', 'stdio-baseline.escript');

interface Corpus {
  readonly name: string;
  readonly format: 'eterm' | 'xml';
  readonly file: string;
  readonly records: number;
  readonly bytes: number;
  readonly expected: Buffer;
}

interface Side {
  readonly name: string;
  readonly command: (format: 'eterm' | 'xml') => string[];
}

const SIDES: readonly Side[] = [
  { name: 'ours', command: (format) => [process.execPath, CLI, 'stdio', format] },
  ...(WITH_ERLANG ? [{ name: 'Erlang', command: (format: 'eterm' | 'xml') => ['escript', BASELINE, format] }] : []),
];

interface Timing {
  /** Wall clock of the pipeline, seconds. */
  readonly wall: number;
  /** User + system CPU time of the command and its threads (not of `cat`), seconds. */
  readonly cpu: number;
}

/** Runs `cat input | command > output`; the command's CPU time comes from `times` in the subshell that waited for it. */
function timed(command: readonly string[], input: string, output: string): Timing {
  const start = process.hrtime.bigint();
  const script = 'set -o pipefail; in=$1; out=$2; shift 2; cat -- "$in" | { "$@" > "$out" || exit $?; times; }';
  const result = spawnSync('bash', ['-c', script, 'bench', input, output, ...command], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${command.join(' ')} < ${input}: exit ${result.status}: ${result.stderr}`);
  // `times`: the subshell's own user/system line, then its children's: "0m1.234s 0m0.056s".
  const children = result.stdout.trim().split('\n')[1] ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (seconds.length !== 2) throw new Error(`cannot read the CPU time of ${command.join(' ')} from ${JSON.stringify(result.stdout)}`);
  return { wall, cpu: seconds[0] + seconds[1] };
}

function frame(records: readonly PayloadRecord[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const r of records) parts.push(Buffer.from(`${r.payload.length}\n`), r.payload);
  return Buffer.concat(parts);
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** The three corpus files and the answers the generator computed for them (reused from `dir` when there). */
function makeCorpora(dir: string): Corpus[] {
  const kinds = [
    ['plain terms', 'eterm', 0],
    ['compressed terms', 'eterm', 1],
    ['xml', 'xml', 2],
  ] as const;
  const path = (k: number, what: string): string => join(dir, `stdio-${MESSAGES}-${SEED}-${k}.${what}`);
  if (!kinds.every(([, , k]) => existsSync(path(k, 'expected')))) {
    mkdirSync(dir, { recursive: true });
    const all = erlangRandomMessages(MESSAGES, SEED);
    for (const [, , k] of kinds) {
      const records = all.filter((_, i) => i % 3 === k);
      writeFileSync(path(k, 'bin'), frame(records));
      writeFileSync(path(k, 'expected'), Buffer.concat(records.map((r) => referenceOutput(r.expected))));
    }
  }
  return kinds.map(([name, format, k]) => {
    const file = path(k, 'bin');
    const expected = readFileSync(path(k, 'expected'));
    return { name, format, file, records: countRecords(readFileSync(file)), bytes: statSync(file).size, expected };
  });
}

function countRecords(framed: Buffer): number {
  let records = 0;
  for (let pos = 0; pos < framed.length; records++) {
    const newline = framed.indexOf(0x0a, pos);
    pos = newline + 1 + Number(framed.toString('latin1', pos, newline));
  }
  return records;
}

/** The run with the least CPU time (the one least disturbed by the rest of the machine). */
function best(runs: readonly Timing[]): Timing {
  return runs.reduce((a, b) => (b.cpu < a.cpu ? b : a));
}

const rate = (n: number): string => Math.round(n).toLocaleString('en').padStart(9);

/** Child mode: the decoder alone on the file's payloads; prints its CPU seconds (user + system). */
function inProcess(format: PayloadFormat, file: string): void {
  const framed = readFileSync(file);
  const payloads: Uint8Array[] = [];
  for (let pos = 0; pos < framed.length;) {
    const newline = framed.indexOf(0x0a, pos);
    const length = Number(framed.toString('latin1', pos, newline));
    payloads.push(framed.subarray(newline + 1, newline + 1 + length));
    pos = newline + 1 + length;
  }
  const before = process.cpuUsage();
  let ok = 0;
  for (const payload of payloads) if (isSuccess(extractSenderJid(payload, format))) ok++;
  const used = process.cpuUsage(before);
  console.log(JSON.stringify({ cpu: (used.user + used.system) / 1e6, ok }));
}

function inProcessCpu(format: PayloadFormat, file: string): number {
  const result = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--in-process', format, file], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`in-process decoder on ${file}: exit ${result.status}: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { cpu: number }).cpu;
}

function main(): void {
  const dir = join(tmpdir(), `bench-stdio-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const started = Date.now();
    const empty = join(dir, 'empty.bin');
    writeFileSync(empty, '');
    const corpora = makeCorpora(CORPUS_DIR ?? dir);
    console.log(
      `stdio bench: ${(3 * MESSAGES).toLocaleString('en')} records made by Erlang (seed ${SEED}${CORPUS_DIR ? `, kept in ${CORPUS_DIR}` : ''}) in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `node ${process.version}; best of ${ROUNDS} rounds; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );

    // Start-up: the same commands on empty input.
    const startup = new Map<string, Timing>();
    for (const side of SIDES) {
      for (const format of ['eterm', 'xml'] as const) {
        const runs = Array.from({ length: ROUNDS }, () => timed(side.command(format), empty, join(dir, 'startup.out')));
        startup.set(`${side.name} ${format}`, best(runs));
      }
    }

    const ratios: string[] = [];
    const decodeRatios: string[] = [];
    for (const corpus of corpora) {
      const runs = new Map<string, Timing[]>(SIDES.map((side) => [side.name, []]));
      const outputs = new Map<string, Buffer>();
      const decodeRuns: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        decodeRuns.push(inProcessCpu(corpus.format, corpus.file));
        for (const side of SIDES) {
          const out = join(dir, `${side.name}.out`);
          runs.get(side.name)!.push(timed(side.command(corpus.format), corpus.file, out));
          if (round === 0) outputs.set(side.name, readFileSync(out));
        }
      }
      for (const side of SIDES) {
        const output = outputs.get(side.name)!;
        if (!output.equals(corpus.expected)) {
          console.log(`!! ${corpus.name}: ${side.name}'s answers differ from the generator's at byte ${firstDifference(output, corpus.expected)}`);
        }
      }
      const same = WITH_ERLANG ? outputs.get('ours')!.equals(outputs.get('Erlang')!) : outputs.get('ours')!.equals(corpus.expected);
      const cpuRate = new Map<string, number>();
      const wallRate = new Map<string, number>();
      const line: string[] = [];
      for (const side of SIDES) {
        const start = startup.get(`${side.name} ${corpus.format}`)!;
        const run = best(runs.get(side.name)!);
        cpuRate.set(side.name, corpus.records / Math.max(1e-3, run.cpu - start.cpu));
        wallRate.set(side.name, corpus.records / Math.max(1e-3, run.wall - start.wall));
        line.push(
          `${side.name} ${rate(cpuRate.get(side.name)!)}/s CPU (${run.cpu.toFixed(2)} s, start-up ${start.cpu.toFixed(2)}), ${rate(wallRate.get(side.name)!).trim()}/s wall (${run.wall.toFixed(2)} s)`,
        );
      }
      console.log(
        `${corpus.name}: ${corpus.records.toLocaleString('en')} records, ${(corpus.bytes / corpus.records).toFixed(0)} B mean, outputs ${same ? 'byte-identical' : 'DIFFER'}\n` +
          `  ${line.join('\n  ')}`,
      );
      if (WITH_ERLANG) {
        const ratio = cpuRate.get('ours')! / cpuRate.get('Erlang')!;
        const wallRatio = wallRate.get('ours')! / wallRate.get('Erlang')!;
        console.log(`  ratio ours/Erlang: ${ratio.toFixed(2)} (CPU time), ${wallRatio.toFixed(2)} (wall)`);
        ratios.push(`${corpus.name} ${ratio.toFixed(2)}x`);
      }
      const decodeRate = corpus.records / Math.min(...decodeRuns);
      const oursCpu = best(runs.get('ours')!).cpu - startup.get(`ours ${corpus.format}`)!.cpu;
      console.log(
        `  in-process decoder ${rate(decodeRate)}/s CPU (${Math.min(...decodeRuns).toFixed(2)} s); ours ${((1e6 * oursCpu) / corpus.records).toFixed(2)} µs/record against ${(1e6 / decodeRate).toFixed(2)} µs decoding\n` +
          `  ratio stdio/in-process: ${(cpuRate.get('ours')! / decodeRate).toFixed(2)} (CPU time)`,
      );
      decodeRatios.push(`${corpus.name} ${(cpuRate.get('ours')! / decodeRate).toFixed(2)}`);
    }
    if (WITH_ERLANG) {
      console.log(
        `ratios (ours / Erlang, records per CPU second, start-up excluded): ${ratios.join(', ')}   targets: plain >= 5x, compressed >= 2.5x, xml >= 20x`,
      );
    }
    console.log(`ratios (stdio / in-process decoder, records per CPU second, start-up excluded): ${decodeRatios.join(', ')}   target: >= 0.8 each`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--in-process') inProcess(process.argv[3] as PayloadFormat, process.argv[4]);
else main();
