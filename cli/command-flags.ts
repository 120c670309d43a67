/**
 * The flags of `migrate` and `verify`, one entry each: name, type, default, help, which commands
 * and which backends take it, and how its value is read. The parser, the help text and the
 * per-flag checks are driven by this table (as `services/sidecar/config.ts` does for `serve`);
 * adding a flag is one entry here, and its typed value appears in `ParsedCommand.flags`.
 *
 * A backend's own flags stay in its `BackendDefinition` (adding a backend needs no change here).
 * Checks between flags (--sample with --complete, TLS files with --sidecar) stay with the command.
 */
import type { FlagSpec, FlagValues } from '../clients/backends/registry.js';
import { UsageError } from '../clients/backends/registry.js';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_RETRIES,
  MAX_BATCH_SIZE,
  MAX_CONCURRENCY,
  MAX_SHARDS,
} from '../clients/pipeline/run-migration.js';
import { DEFAULT_VERIFY_SAMPLE } from '../clients/pipeline/run-verify.js';
import type { ShardSpec } from '../clients/pipeline/types.js';
import type { PayloadFormat } from '../services/decode/index.js';
import { DEFAULT_DECODE_LIMITS } from '../services/decode/index.js';

export type Command = 'migrate' | 'verify';
/** Where a flag's help stands: `decoding` and `walk` are migrate's headed sections, `verify` verify's own. */
export type HelpSection = 'decoding' | 'walk' | 'verify';

export const URL_ENV = 'MIM_SENDER_JID_DB_URL';
export const DEFAULT_PROGRESS_INTERVAL_S = 10;
export const DEFAULT_STOP_GRACE_S = 30;

export interface FlagHelp {
  readonly section: HelpSection;
  /** The value's placeholder (N, PATH); none for a boolean. */
  readonly value?: string;
  /** What stands left of the text, when it is not `--name VALUE` (several flags on one line). */
  readonly label?: string;
  /** Lines after the first are continuation lines. */
  readonly text: string;
}

export interface CommandFlag<T> {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly commands: readonly Command[];
  /** The backends that take it; absent: every backend. Elsewhere it is an unknown option. */
  readonly backends?: readonly string[];
  /** Its help, or one per command where the flag means something else to each. */
  readonly help?: FlagHelp | Readonly<Partial<Record<Command, FlagHelp>>>;
  /** Flags whose help stands on another flag's line (`label`): the test of the help checks it is there. */
  readonly helpOn?: string;
  /** The raw value (undefined when not given) as the command uses it; throws UsageError. */
  readonly read: (raw: FlagValues[string]) => T;
}

function flag<T>(definition: CommandFlag<T>): CommandFlag<T> {
  return definition;
}

export function parseCount(name: string, value: unknown, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} must be a whole number >= ${min}, got '${String(value)}'`);
  }
  return Number(value);
}

export function parseShard(value: unknown): ShardSpec {
  if (value === undefined) return { index: 0, count: 1 };
  const m = typeof value === 'string' ? /^(\d+)\/(\d+)$/.exec(value) : null;
  if (m === null || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
    throw new UsageError(`--shard must be K/N with 0 <= K < N (e.g. 0/4), got '${String(value)}'`);
  }
  return { index: Number(m[1]), count: Number(m[2]) };
}

const BOTH: readonly Command[] = ['migrate', 'verify'];
const text = (raw: FlagValues[string]): string | undefined => raw as string | undefined;
const given = (raw: FlagValues[string]): boolean => raw === true;

function count(name: string, min: number, fallback: number): (raw: FlagValues[string]) => number;
function count(name: string, min: number): (raw: FlagValues[string]) => number | undefined;
function count(name: string, min: number, fallback?: number) {
  return (raw: FlagValues[string]) => parseCount(name, raw, min) ?? fallback;
}

const SIDECAR_HELP = `decode with running sidecars; default: decoding threads in this process.
TARGET: HOST:PORT (one sidecar); HOST:PORT,HOST:PORT,... (several:
IP addresses as they are, [v6]:PORT in brackets; host names looked up
once at start, never again); dns:///NAME:PORT (every address NAME
resolves to, looked up again by gRPC when a connection is lost).
Several sidecars: each request goes to the next ready one (gRPC's
round_robin); one that is shutting down or gone gets no new requests`;

/** In help order within each section. */
export const COMMAND_FLAGS = {
  // Each backend's usage says what its URL is; the value falls back on the environment.
  url: flag({ name: 'url', type: 'string', commands: BOTH, read: (raw) => nonEmpty(text(raw) ?? process.env[URL_ENV]) }),

  sample: flag({
    name: 'sample',
    type: 'string',
    commands: ['verify'],
    help: { section: 'verify', value: 'N', text: `records to check (default ${DEFAULT_VERIFY_SAMPLE})` },
    read: count('sample', 1, DEFAULT_VERIFY_SAMPLE),
  }),
  complete: flag({
    name: 'complete',
    type: 'boolean',
    commands: ['verify'],
    help: { section: 'verify', text: 'check every record instead of a sample' },
    read: given,
  }),

  sidecar: flag({ name: 'sidecar', type: 'string', commands: BOTH, help: { section: 'decoding', value: 'TARGET', text: SIDECAR_HELP }, read: text }),
  sidecarCa: flag({
    name: 'sidecar-ca',
    type: 'string',
    commands: BOTH,
    help: { section: 'decoding', value: 'PEM', text: 'TLS to --sidecar: CA that signed its certificate' },
    read: text,
  }),
  sidecarCert: flag({
    name: 'sidecar-cert',
    type: 'string',
    commands: BOTH,
    help: { section: 'decoding', value: 'PEM', text: 'with --sidecar-key: our client certificate (mutual TLS)' },
    read: text,
  }),
  sidecarKey: flag({
    name: 'sidecar-key',
    type: 'string',
    commands: BOTH,
    help: { section: 'decoding', value: 'PEM', text: 'private key of --sidecar-cert' },
    read: text,
  }),
  workers: flag({
    name: 'workers',
    type: 'string',
    commands: BOTH,
    help: { section: 'decoding', value: 'N', text: 'decoding threads in this process (default: core count)' },
    read: count('workers', 1),
  }),
  format: flag({
    name: 'format',
    type: 'string',
    commands: BOTH,
    help: { section: 'decoding', value: 'F', text: "payload format: eterm, xml, auto (default: the backend's own)" },
    read: (raw): PayloadFormat | undefined => {
      const format = text(raw);
      if (format !== undefined && format !== 'eterm' && format !== 'xml' && format !== 'auto') {
        throw new UsageError(`--format must be eterm, xml or auto, got '${format}'`);
      }
      return format;
    },
  }),
  // The decoder's limits: read as the sidecar's flags by decode-limit-options.ts (kept as text here).
  maxPayloadBytes: flag({
    name: 'max-payload-bytes',
    type: 'string',
    commands: BOTH,
    help: {
      section: 'decoding',
      value: 'N',
      text: `decoding in this process: largest payload decoded (default ${DEFAULT_DECODE_LIMITS.maxPayloadBytes});
a larger one is reported payload_too_large. With --sidecar: the sidecar's own flag`,
    },
    read: text,
  }),
  maxDecompressedBytes: flag({
    name: 'max-decompressed-bytes',
    type: 'string',
    commands: BOTH,
    help: {
      section: 'decoding',
      label: '--max-decompressed-bytes N, --max-depth N, --max-xml-attributes N',
      text: "decoding in this process: the decoder's other limits (as the sidecar's flags)",
    },
    read: text,
  }),
  maxDepth: flag({ name: 'max-depth', type: 'string', commands: BOTH, helpOn: 'max-decompressed-bytes', read: text }),
  maxXmlAttributes: flag({ name: 'max-xml-attributes', type: 'string', commands: BOTH, helpOn: 'max-decompressed-bytes', read: text }),

  batchSize: flag({
    name: 'batch-size',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'N', text: `records per page, decode request and write (default ${DEFAULT_BATCH_SIZE}, at most ${MAX_BATCH_SIZE})` },
    read: count('batch-size', 1, DEFAULT_BATCH_SIZE),
  }),
  maxBatchBytes: flag({
    name: 'max-batch-bytes',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'N', text: `payload bytes per page at most: a page stops early when full (default ${DEFAULT_MAX_BATCH_BYTES})` },
    read: count('max-batch-bytes', 1, DEFAULT_MAX_BATCH_BYTES),
  }),
  concurrency: flag({
    name: 'concurrency',
    type: 'string',
    commands: ['migrate'],
    help: {
      section: 'walk',
      value: 'N',
      text: `batches in flight (decoding or writing) while the next pages are read (default ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY})`,
    },
    read: count('concurrency', 1, DEFAULT_CONCURRENCY),
  }),
  limit: flag({
    name: 'limit',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'N', text: 'walk at most N records in this run' },
    read: count('limit', 0),
  }),
  shard: flag({
    name: 'shard',
    type: 'string',
    commands: BOTH,
    help: {
      migrate: { section: 'walk', value: 'K/N', text: `handle only the K-th of N disjoint parts (run N processes, K = 0..N-1; N at most ${MAX_SHARDS})` },
      verify: { section: 'verify', value: 'K/N', text: 'with --complete: only the K-th of N parts, as migrate --shard K/N' },
    },
    read: parseShard,
  }),
  maxRate: flag({
    name: 'max-rate',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'R', text: 'at most R records per second on average (default: uncapped)' },
    read: (raw): number | undefined => {
      if (raw === undefined) return undefined;
      const rate = Number(raw);
      if (!(rate > 0) || !Number.isFinite(rate)) throw new UsageError(`--max-rate must be a positive number of records per second, got '${String(raw)}'`);
      return rate;
    },
  }),
  dryRun: flag({
    name: 'dry-run',
    type: 'boolean',
    commands: ['migrate'],
    help: {
      section: 'walk',
      text: `decode and report, write nothing (no checkpoint either; its report is
its own: ...-dry-run.jsonl, also beside a --report PATH given)`,
    },
    read: given,
  }),
  applySchema: flag({
    name: 'apply-schema',
    type: 'boolean',
    commands: ['migrate'],
    help: { section: 'walk', text: "run the upgrade guide's schema step when something is missing" },
    // A backend may take a value here (Riak: the schema file, its own flag wins); any value means "apply".
    read: (raw) => raw !== undefined && raw !== false,
  }),
  reset: flag({
    name: 'reset',
    type: 'boolean',
    commands: ['migrate'],
    help: {
      section: 'walk',
      text: `forget this shard's checkpoints and start from the beginning (truncates the
report; with --dry-run: only the dry run's, and no checkpoint is touched)`,
    },
    read: given,
  }),
  report: flag({
    name: 'report',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'PATH', text: 'JSONL of records not written (default ./mim-sender-jid-report-KIND-shard-K-of-N.jsonl)' },
    read: text,
  }),
  reports: flag({
    name: 'report',
    type: 'string',
    multiple: true,
    commands: ['verify'],
    help: {
      section: 'verify',
      value: 'PATH',
      text: `with --complete: a report file of migrate (repeat for several; default
migrate's own for the shard, ./mim-sender-jid-report-KIND-shard-K-of-N.jsonl)`,
    },
    read: (raw) => raw as string[] | undefined,
  }),
  maxRetries: flag({
    name: 'max-retries',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'N', text: `retries of transient failures (connection lost, node restart) (default ${DEFAULT_MAX_RETRIES})` },
    read: count('max-retries', 0, DEFAULT_MAX_RETRIES),
  }),
  progressInterval: flag({
    name: 'progress-interval',
    type: 'string',
    commands: ['migrate'],
    help: { section: 'walk', value: 'S', text: `seconds between progress lines when stderr is not a terminal (default ${DEFAULT_PROGRESS_INTERVAL_S})` },
    read: count('progress-interval', 1, DEFAULT_PROGRESS_INTERVAL_S),
  }),
  stopGrace: flag({
    name: 'stop-grace',
    type: 'string',
    commands: ['migrate'],
    help: {
      section: 'walk',
      value: 'S',
      text: `after Ctrl-C or SIGTERM, seconds given to the batches in flight before quitting anyway (default ${DEFAULT_STOP_GRACE_S})`,
    },
    read: count('stop-grace', 1, DEFAULT_STOP_GRACE_S),
  }),

  help: flag({ name: 'help', type: 'boolean', short: 'h', commands: BOTH, read: given }),
};

type Table = typeof COMMAND_FLAGS;
/** Every flag's value as the command uses it (a flag of the other command: as if not given). */
export type CommandFlagValues = { readonly [K in keyof Table]: ReturnType<Table[K]['read']> };

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

type AnyTable = Readonly<Record<string, CommandFlag<unknown>>>;

function flagsOf(command: Command, kind: string | undefined, table: AnyTable = COMMAND_FLAGS): CommandFlag<unknown>[] {
  return Object.values(table).filter((f) => f.commands.includes(command) && (kind === undefined || f.backends === undefined || f.backends.includes(kind)));
}

/** The options for `node:util` parseArgs: this command's flags for this backend. */
export function parseArgsOptions(command: Command, kind: string, table: AnyTable = COMMAND_FLAGS): Record<string, FlagSpec> {
  const options: Record<string, FlagSpec> = {};
  for (const f of flagsOf(command, kind, table)) {
    options[f.name] = { type: f.type, ...(f.short === undefined ? {} : { short: f.short }), ...(f.multiple === true ? { multiple: true } : {}) };
  }
  return options;
}

/** Reads every flag of the table from parseArgs' values, in table order; the first bad value throws. */
export function readFlags(command: Command, kind: string, values: FlagValues): CommandFlagValues {
  const taken = new Set(flagsOf(command, kind));
  const result: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(COMMAND_FLAGS) as [string, CommandFlag<unknown>][]) {
    result[key] = f.read(taken.has(f) ? values[f.name] : undefined);
  }
  return result as CommandFlagValues;
}

const LABEL_WIDTH = 23;
const INDENT = ' '.repeat(2 + LABEL_WIDTH);

/** The help lines of one section, aligned (a label too long for its column puts the text below it). */
export function flagUsage(command: Command, section: HelpSection, kind?: string, table: AnyTable = COMMAND_FLAGS): string {
  const lines: string[] = [];
  for (const f of flagsOf(command, kind, table)) {
    const help = helpOf(f, command);
    if (help === undefined || help.section !== section) continue;
    const label = help.label ?? `--${f.name}${help.value === undefined ? '' : ` ${help.value}`}`;
    const textLines = help.text.split('\n');
    if (kind === undefined && f.backends !== undefined) textLines.push(`(${f.backends.join(', ')} only)`);
    if (label.length >= LABEL_WIDTH) lines.push(`  ${label}`, ...textLines.map((l) => INDENT + l));
    else lines.push(`  ${label.padEnd(LABEL_WIDTH)}${textLines[0]}`, ...textLines.slice(1).map((l) => INDENT + l));
  }
  return lines.join('\n');
}

export function helpOf(f: CommandFlag<unknown>, command: Command): FlagHelp | undefined {
  if (f.help === undefined || 'section' in f.help) return f.help as FlagHelp | undefined;
  return (f.help as Partial<Record<Command, FlagHelp>>)[command];
}
