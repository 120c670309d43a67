/**
 * `mim-sender-jid extract [--format F] [--hex] FILE|-`: one payload in, one answer out, with the
 * reason for a -1 or -2: for looking at a single bad row. --hex takes the payload as hex text,
 * including PostgreSQL's bytea text form `\x...` (and `0x...`, whitespace ignored).
 * Prints the JID (exit 0), or `-1`/`-2` followed by the reason and detail (exit 1).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { extractSenderJid, isSuccess, referenceCode, type PayloadFormat } from '../services/decode/index.js';
import type { Subcommand } from './cli.js';
import { DECODE_LIMIT_HELP, readDecodeCommandLine } from './decode-limit-options.js';

const USAGE = `usage: mim-sender-jid extract [--format eterm|xml|auto] [--hex] FILE|-
Prints the sender JID of one payload, or -1/-2 with the reason.
  --format F                  payload format (default auto: first byte 131 is eterm, else xml)
  --hex                       the input is hex text (PostgreSQL's \\x... form accepted)
${DECODE_LIMIT_HELP}
`;

/** Hex text to bytes; undefined if it is not hex. */
export function parseHexPayload(text: string): Uint8Array | undefined {
  let hex = text.replace(/\s+/g, '');
  if (hex.startsWith('\\x') || hex.startsWith('0x') || hex.startsWith('0X')) hex = hex.slice(2);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

const extract: Subcommand = {
  summary: 'print the sender JID of one payload (raw or hex, file or stdin), or -1/-2 with the reason',
  async run(argv) {
    const parsed = readDecodeCommandLine('extract', argv, USAGE, { format: { type: 'string', default: 'auto' }, hex: { type: 'boolean' } });
    if (typeof parsed === 'number') return parsed;
    const format = parsed.values.format;
    if (format !== 'eterm' && format !== 'xml' && format !== 'auto') {
      process.stderr.write(`mim-sender-jid extract: --format must be eterm, xml or auto, not '${String(format)}'\n`);
      return 2;
    }
    if (parsed.positionals.length !== 1) {
      process.stderr.write(`mim-sender-jid extract: expected one FILE (or - for stdin)\n${USAGE}`);
      return 2;
    }
    const { limits } = parsed;
    const source = parsed.positionals[0];
    // Never read more than a payload within the limit can take (hex text: two digits a byte, plus
    // a prefix and some white space): input from outside is bounded before it is held.
    const readLimit = parsed.values.hex ? 2 * limits.maxPayloadBytes + HEX_SLACK_BYTES : limits.maxPayloadBytes;
    let input: { bytes: Buffer; truncated: boolean };
    try {
      input = source === '-' ? await readStdin(readLimit) : readFileUpTo(source, readLimit);
    } catch (error) {
      process.stderr.write(`mim-sender-jid extract: cannot read ${source}: ${(error as Error).message}\n`);
      return 2;
    }
    if (input.truncated) {
      process.stdout.write(
        `-1 payload_too_large: input is over ${readLimit} bytes (maxPayloadBytes ${limits.maxPayloadBytes}${parsed.values.hex ? ', as hex' : ''}); reading stopped there\n`,
      );
      return 1;
    }
    const raw = input.bytes;
    let payload: Uint8Array = raw;
    if (parsed.values.hex) {
      const decoded = parseHexPayload(raw.toString('latin1'));
      if (decoded === undefined) {
        process.stderr.write(`mim-sender-jid extract: --hex input is not hex text (an even number of 0-9a-f digits, optionally after \\x or 0x)\n`);
        return 2;
      }
      payload = decoded;
    }
    const answer = extractSenderJid(payload, format as PayloadFormat, limits);
    if (isSuccess(answer)) {
      process.stdout.write(`${answer.jid}\n`);
      return 0;
    }
    process.stdout.write(`${referenceCode(answer)} ${answer.reason}: ${answer.detail}\n`);
    return 1;
  },
};

const HEX_SLACK_BYTES = 4096;

/** Reads stdin up to `limit` bytes; stops reading (and says so) as soon as there is more. */
async function readStdin(limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    parts.push(chunk);
    length += chunk.length;
    if (length > limit) {
      process.stdin.destroy();
      return { bytes: Buffer.alloc(0), truncated: true };
    }
  }
  return { bytes: Buffer.concat(parts), truncated: false };
}

function readFileUpTo(path: string, limit: number): { bytes: Buffer; truncated: boolean } {
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).size > limit) return { bytes: Buffer.alloc(0), truncated: true };
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (let n = 1; n > 0 && length <= limit; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    return length > limit ? { bytes: Buffer.alloc(0), truncated: true } : { bytes: buffer.subarray(0, length), truncated: false };
  } finally {
    closeSync(fd);
  }
}

export default extract;
