/**
 * What `migrate` and `verify` share: the backend as first argument with its own flags, the
 * database URL, and where decoding happens (in this process, or a sidecar with optional TLS).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BACKEND_KINDS, loadBackend, UsageError, type BackendDefinition, type FlagValues } from '../clients/backends/registry.js';
import { parseSidecarTarget, SidecarTargetError, tlsProblem, type ParsedSidecarTarget } from '../clients/decoder-client/sidecar-target.js';
import type { DecodeLimits, PayloadFormat } from '../services/decode/index.js';
import { flagUsage, parseArgsOptions, readFlags, type Command, type CommandFlagValues } from './command-flags.js';
import { DECODE_LIMIT_OPTIONS, decodeLimitsFromFlags } from './decode-limit-options.js';

export { UsageError };
/** An error for the user: one line, what is wrong and what to do. */
export { describeFailure } from './describe-failure.js';

export { parseCount, parseShard, URL_ENV } from './command-flags.js';

/** The decoding flags' help, as both commands print it. */
export const DECODER_USAGE = flagUsage('migrate', 'decoding');

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
  /** As parsed (the backend reads its own flags and --url here). */
  readonly values: FlagValues;
  /** The command's flags, read and checked one by one (command-flags.ts). */
  readonly flags: CommandFlagValues;
  readonly decoder: DecoderArgs;
}

/** The backend named by the first argument, or null when the first argument asks for help. */
export async function backendOf(argv: readonly string[]): Promise<BackendDefinition | null> {
  const first = argv[0];
  if (first === undefined || first === '-h' || first === '--help') return null;
  if (first.startsWith('-')) throw new UsageError(`the backend comes first: one of ${BACKEND_KINDS.join(', ')}, got '${first}'`);
  return loadBackend(first);
}

/**
 * Parses `KIND [flags]` with the command's flags (command-flags.ts) and the backend's (a backend's
 * flag wins a name clash). `checkFirst` sees the flags as given, before any value is read.
 */
export function parseCommand(
  argv: readonly string[],
  definition: BackendDefinition,
  command: Command,
  checkFirst?: (values: FlagValues) => void,
): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(1), allowPositionals: true, options: { ...parseArgsOptions(command, definition.kind), ...definition.flags } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  checkFirst?.(values as FlagValues);
  const flags = readFlags(command, definition.kind, values as FlagValues);
  const withUrl: FlagValues = { ...(values as FlagValues), url: flags.url };
  return { definition, values: withUrl, flags, decoder: parseDecoderArgs(withUrl, flags) };
}

function parseDecoderArgs(values: FlagValues, flags: CommandFlagValues): DecoderArgs {
  const sidecar = flags.sidecar;
  let target: ParsedSidecarTarget | undefined;
  if (sidecar !== undefined) {
    try {
      target = parseSidecarTarget(sidecar);
    } catch (error) {
      if (!(error instanceof SidecarTargetError)) throw error;
      throw new UsageError(`--sidecar: ${error.message}`);
    }
  }
  const tlsFiles: Record<string, string | undefined> = { ca: flags.sidecarCa, cert: flags.sidecarCert, key: flags.sidecarKey };
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
    workers: flags.workers,
    format: flags.format,
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
export async function readCommandLine(
  command: Command,
  argv: readonly string[],
  usage: (kind?: string, own?: string) => Promise<string>,
  checks: { readonly first?: (values: FlagValues) => void; readonly then?: (parsed: ParsedCommand) => void },
): Promise<ParsedCommand | number> {
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
    const parsed = parseCommand(argv, definition, command, checks.first);
    checks.then?.(parsed);
    return parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(
      `mim-sender-jid ${command}: ${error.message}\n(mim-sender-jid ${command} ${kind === undefined ? '' : `${kind} `}--help for the options)\n`,
    );
    return 2;
  }
}
