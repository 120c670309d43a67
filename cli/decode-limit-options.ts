/**
 * The decode limits as command-line flags, shared by `stdio` and `extract`
 * (same names as the sidecar's flags), and the command line those two commands share.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../services/decode/index.js';

export const DECODE_LIMIT_OPTIONS = {
  'max-payload-bytes': { type: 'string' },
  'max-decompressed-bytes': { type: 'string' },
  'max-depth': { type: 'string' },
  'max-xml-attributes': { type: 'string' },
} as const;

export const DECODE_LIMIT_HELP = [
  `  --max-payload-bytes N       largest payload accepted (default ${DEFAULT_DECODE_LIMITS.maxPayloadBytes}); larger: -1`,
  `  --max-decompressed-bytes N  largest size a compressed term may declare or inflate to (default ${DEFAULT_DECODE_LIMITS.maxDecompressedBytes})`,
  `  --max-depth N               deepest nesting of terms or XML elements (default ${DEFAULT_DECODE_LIMITS.maxDepth})`,
  `  --max-xml-attributes N      most attributes on one XML element (default ${DEFAULT_DECODE_LIMITS.maxXmlAttributes})`,
].join('\n');

const KEYS: Record<keyof typeof DECODE_LIMIT_OPTIONS, keyof DecodeLimits> = {
  'max-payload-bytes': 'maxPayloadBytes',
  'max-decompressed-bytes': 'maxDecompressedBytes',
  'max-depth': 'maxDepth',
  'max-xml-attributes': 'maxXmlAttributes',
};

/** @returns the limits, or a message naming the bad flag. */
export function decodeLimitsFromFlags(values: Partial<Record<keyof typeof DECODE_LIMIT_OPTIONS, string | undefined>>): DecodeLimits | string {
  const limits: Record<keyof DecodeLimits, number> = { ...DEFAULT_DECODE_LIMITS };
  for (const [flag, key] of Object.entries(KEYS) as [keyof typeof DECODE_LIMIT_OPTIONS, keyof DecodeLimits][]) {
    const raw = values[flag];
    if (raw === undefined) continue;
    if (!/^[1-9][0-9]*$/.test(raw) || !Number.isSafeInteger(Number(raw))) return `--${flag} needs a positive whole number, not '${raw}'`;
    limits[key] = Number(raw);
  }
  return limits;
}

/**
 * The command line of a decode command (`stdio`, `extract`): its own options plus the limits and
 * `--help`. Returns the values, positionals and limits, or the exit status when there is nothing
 * to run (help printed: 0; a bad flag, said on stderr with the usage: 2).
 */
export function readDecodeCommandLine(
  command: string,
  argv: string[],
  usage: string,
  own: NonNullable<ParseArgsConfig['options']>,
): { values: Record<string, string | boolean | undefined>; positionals: string[]; limits: DecodeLimits } | number {
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...DECODE_LIMIT_OPTIONS, ...own, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    process.stderr.write(`mim-sender-jid ${command}: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const limits = decodeLimitsFromFlags(parsed.values as Partial<Record<keyof typeof DECODE_LIMIT_OPTIONS, string>>);
  if (typeof limits === 'string') {
    process.stderr.write(`mim-sender-jid ${command}: ${limits}\n`);
    return 2;
  }
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals, limits };
}
