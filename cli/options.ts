/**
 * What `migrate` and `verify` share: the backend as first argument with its own flags, the
 * database URL, and where decoding happens (in this process, or a sidecar with optional TLS).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BACKEND_KINDS, loadBackend, UsageError, type BackendDefinition, type FlagSpec, type FlagValues } from '../clients/backends/registry.js';
import type { ShardSpec } from '../clients/pipeline/types.js';
import { parseSidecarTarget, SidecarTargetError, tlsProblem, type ParsedSidecarTarget } from '../clients/decoder-client/sidecar-target.js';
import type { DecodeLimits, PayloadFormat } from '../services/decode/index.js';
import { DEFAULT_DECODE_LIMITS } from '../services/decode/index.js';
import { DECODE_LIMIT_OPTIONS, decodeLimitsFromFlags } from './decode-limit-options.js';

export { UsageError };
/** An error for the user: one line, what is wrong and what to do. */
export { describeFailure } from './describe-failure.js';

export const URL_ENV = 'MIM_SENDER_JID_DB_URL';

/** The flags of `migrate` and `verify` besides their own and their backend's: the URL, where decoding happens, --help. */
export const SHARED_FLAGS: Readonly<Record<string, FlagSpec>> = {
  url: { type: 'string' },
  sidecar: { type: 'string' },
  'sidecar-ca': { type: 'string' },
  'sidecar-cert': { type: 'string' },
  'sidecar-key': { type: 'string' },
  workers: { type: 'string' },
  format: { type: 'string' },
  ...DECODE_LIMIT_OPTIONS,
  help: { type: 'boolean', short: 'h' },
};

/** `--url` is parsed here for every backend (env ${URL_ENV}); each backend's usage says what its URL is. */
export const DECODER_USAGE = `  --sidecar TARGET       decode with running sidecars; default: decoding threads in this process.
                         TARGET: HOST:PORT (one sidecar); HOST:PORT,HOST:PORT,... (several:
                         IP addresses as they are, [v6]:PORT in brackets; host names looked up
                         once at start, never again); dns:///NAME:PORT (every address NAME
                         resolves to, looked up again by gRPC when a connection is lost).
                         Several sidecars: each request goes to the next ready one (gRPC's
                         round_robin); one that is shutting down or gone gets no new requests
  --sidecar-ca PEM       TLS to --sidecar: CA that signed its certificate
  --sidecar-cert PEM     with --sidecar-key: our client certificate (mutual TLS)
  --sidecar-key PEM      private key of --sidecar-cert
  --workers N            decoding threads in this process (default: core count)
  --format F             payload format: eterm, xml, auto (default: the backend's own)
  --max-payload-bytes N  decoding in this process: largest payload decoded (default ${DEFAULT_DECODE_LIMITS.maxPayloadBytes});
                         a larger one is reported payload_too_large. With --sidecar: the sidecar's own flag
  --max-decompressed-bytes N, --max-depth N, --max-xml-attributes N
                         decoding in this process: the decoder's other limits (as the sidecar's flags)`;

export interface DecoderArgs {
  readonly sidecar: string | undefined;
  readonly workers: number | undefined;
  readonly format: PayloadFormat | undefined;
  /** TLS to a remote sidecar: CA to check it, and our certificate and key for mutual TLS. */
  readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Limits of decoding in this process, when a flag sets one (a sidecar keeps its own). */
  readonly limits: DecodeLimits | undefined;
}

export interface ParsedCommand {
  readonly definition: BackendDefinition;
  readonly values: FlagValues;
  readonly decoder: DecoderArgs;
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

/** The backend named by the first argument, or null when the first argument asks for help. */
export async function backendOf(argv: readonly string[]): Promise<BackendDefinition | null> {
  const first = argv[0];
  if (first === undefined || first === '-h' || first === '--help') return null;
  if (first.startsWith('-')) throw new UsageError(`the backend comes first: one of ${BACKEND_KINDS.join(', ')}, got '${first}'`);
  return loadBackend(first);
}

/** Parses `KIND [flags]` with the common flags, the command's own and the backend's (a backend's flag wins a name clash). */
export function parseCommand(argv: readonly string[], definition: BackendDefinition, commandFlags: Readonly<Record<string, FlagSpec>>): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(1), allowPositionals: true, options: { ...SHARED_FLAGS, ...commandFlags, ...definition.flags } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const url = (values.url as string | undefined) ?? process.env[URL_ENV];
  const withUrl: FlagValues = { ...(values as FlagValues), url: url === '' ? undefined : url };
  return { definition, values: withUrl, decoder: parseDecoderArgs(withUrl) };
}

function parseDecoderArgs(values: FlagValues): DecoderArgs {
  const format = values.format as string | undefined;
  if (format !== undefined && format !== 'eterm' && format !== 'xml' && format !== 'auto') {
    throw new UsageError(`--format must be eterm, xml or auto, got '${format}'`);
  }
  const sidecar = values.sidecar as string | undefined;
  let target: ParsedSidecarTarget | undefined;
  if (sidecar !== undefined) {
    try {
      target = parseSidecarTarget(sidecar);
    } catch (error) {
      if (!(error instanceof SidecarTargetError)) throw error;
      throw new UsageError(`--sidecar: ${error.message}`);
    }
  }
  const tlsFiles = { ca: values['sidecar-ca'], cert: values['sidecar-cert'], key: values['sidecar-key'] } as Record<string, string | undefined>;
  let tls: DecoderArgs['tls'];
  if (Object.values(tlsFiles).some((v) => v !== undefined)) {
    if (sidecar === undefined) throw new UsageError('--sidecar-ca/--sidecar-cert/--sidecar-key need --sidecar TARGET');
    if ((tlsFiles.cert === undefined) !== (tlsFiles.key === undefined)) throw new UsageError('--sidecar-cert and --sidecar-key go together');
    const problem = target === undefined ? null : tlsProblem(target);
    if (problem !== null) throw new UsageError(`--sidecar: ${problem}`);
    tls = {};
    for (const [name, path] of Object.entries(tlsFiles)) {
      if (path === undefined) continue;
      try {
        tls[name as 'ca' | 'cert' | 'key'] = readFileSync(path);
      } catch (error) {
        throw new UsageError(`--sidecar-${name}: cannot read ${path}: ${(error as Error).message}`);
      }
    }
  }
  return {
    sidecar,
    workers: parseCount('workers', values.workers),
    format: format as PayloadFormat | undefined,
    tls,
    limits: parseDecodeLimits(values, sidecar),
  };
}

function parseDecodeLimits(values: FlagValues, sidecar: string | undefined): DecodeLimits | undefined {
  const given = Object.keys(DECODE_LIMIT_OPTIONS).filter((flag) => values[flag] !== undefined);
  if (given.length === 0) return undefined;
  // A remote sidecar decodes under the limits it was started with; a flag here would be ignored.
  if (sidecar !== undefined) throw new UsageError(`--${given[0]} sets decoding in this process: with --sidecar, start the sidecars with it`);
  const limits = decodeLimitsFromFlags(values as Record<string, string | undefined>);
  if (typeof limits === 'string') throw new UsageError(limits);
  return limits;
}

/** Every backend's one-line summary, for the usage text. */
export async function backendList(): Promise<string> {
  const lines: string[] = [];
  for (const kind of BACKEND_KINDS) lines.push(`  ${kind.padEnd(14)} ${(await loadBackend(kind)).summary}`);
  return lines.join('\n');
}

/**
 * The start both commands share: the backend named first, `--help` for it (or for the command),
 * then its flags parsed; usage errors printed with a pointer to `--help`. Returns the parsed
 * command, or the exit status when there is nothing more to do.
 */
export async function readCommandLine<T>(
  command: 'migrate' | 'verify',
  argv: readonly string[],
  commandFlags: Readonly<Record<string, FlagSpec>>,
  usage: (kind?: string, own?: string) => Promise<string>,
  refine: (parsed: ParsedCommand) => T,
): Promise<T | number> {
  let kind: string | undefined;
  try {
    const definition = await backendOf(argv);
    if (definition === null) {
      process.stdout.write((await usage()) + '\n');
      return argv.length === 0 ? 2 : 0;
    }
    kind = definition.kind;
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write((await usage(kind, definition.usage)) + '\n');
      return 0;
    }
    return refine(parseCommand(argv, definition, commandFlags));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(
      `mim-sender-jid ${command}: ${error.message}\n(mim-sender-jid ${command} ${kind === undefined ? '' : `${kind} `}--help for the options)\n`,
    );
    return 2;
  }
}
