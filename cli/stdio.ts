/**
 * `mim-sender-jid stdio eterm|xml|auto`: a drop-in for MongooseIM's
 * sender-jid-from-mam-message.escript. Records `LENGTH\nPAYLOAD` come in on stdin; for each, in
 * order, `LENGTH\nJID` (no newline after the JID), `-1\n` or `-2\n` goes out on stdout, byte for
 * byte as the reference writes it. Unlike the reference: an empty payload answers -1 and the loop
 * goes on; a payload over --max-payload-bytes is skipped without being held in memory and answers
 * -1; diagnostics go to stderr only (--verbose: one line per -1/-2); a length line that is not a
 * number, or input ending inside a record, is reported on stderr and exits 1.
 *
 * Answers are gathered while input is ready and written when the chunk at hand is used up, so an
 * interactive caller gets each answer at once and a pipe of a million records pays one write per
 * read, not one per record.
 */
import { parseArgs } from 'node:util';
import { extractSenderJid, isSuccess, referenceCode, type DecodeLimits, type PayloadFormat } from '../services/decode/index.js';
import type { Subcommand } from './cli.js';
import { DECODE_LIMIT_HELP, DECODE_LIMIT_OPTIONS, decodeLimitsFromFlags } from './decode-limit-options.js';

const USAGE = `usage: mim-sender-jid stdio [options] eterm|xml|auto
Reads LENGTH\\nPAYLOAD records on stdin, answers LENGTH\\nJID, -1\\n or -2\\n on stdout (the reference escript's protocol).
  --verbose                   one line on stderr for each -1/-2, with its reason
${DECODE_LIMIT_HELP}
`;

/** A length line longer than this cannot be a number we accept: report it rather than buffer on. */
const MAX_LENGTH_LINE_BYTES = 32;

export class StdioProtocolError extends Error {}

/** The record parser and answerer, separate from the process streams so that it can be driven by any input. */
export class StdioSession {
  private lengthLine = '';
  /** Payload bytes still to come for the current record; -1 while a length line is being read. */
  private remaining = -1;
  private payloadParts: Uint8Array[] = [];
  private skipping = false;
  private declaredLength = 0;
  private recordNumber = 0;
  private out: string[] = [];

  constructor(
    private readonly format: PayloadFormat,
    private readonly limits: DecodeLimits,
    private readonly diagnostic: ((line: string) => void) | undefined,
  ) {}

  /** Set when the input broke the protocol: nothing after it is read. */
  protocolError: StdioProtocolError | undefined;

  /**
   * Consumes one chunk of input; returns the answers it completed (maybe ''), including those
   * before a protocol error, which is then left in protocolError.
   */
  push(chunk: Uint8Array): string {
    if (this.protocolError) return '';
    try {
      this.consume(chunk);
    } catch (error) {
      if (!(error instanceof StdioProtocolError)) throw error;
      this.protocolError = error;
    }
    return this.takeOutput();
  }

  private consume(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining < 0) {
        const newline = chunk.indexOf(0x0a, pos);
        const end = newline < 0 ? chunk.length : newline;
        this.lengthLine += Buffer.from(chunk.buffer, chunk.byteOffset + pos, end - pos).toString('latin1');
        if (this.lengthLine.length > MAX_LENGTH_LINE_BYTES) this.badLengthLine();
        if (newline < 0) break;
        pos = newline + 1;
        this.startRecord();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - pos);
      if (!this.skipping) this.payloadParts.push(chunk.subarray(pos, pos + take));
      this.remaining -= take;
      pos += take;
      if (this.remaining === 0) this.finishRecord();
    }
  }

  /** Input ended: fine between records, a protocol error inside one. */
  end(): void {
    if (this.protocolError || (this.remaining < 0 && this.lengthLine === '')) return;
    const where = this.remaining < 0
      ? `inside the length line '${printable(this.lengthLine)}'`
      : `${this.remaining} bytes short of the ${this.declaredLength}-byte payload`;
    this.protocolError = new StdioProtocolError(`input ended in record ${this.recordNumber + 1}, ${where}`);
  }

  private badLengthLine(): never {
    throw new StdioProtocolError(`record ${this.recordNumber + 1}: length line '${printable(this.lengthLine)}' is not a byte count`);
  }

  private startRecord(): void {
    // What binary_to_integer/1 takes (an optional sign, decimal digits), and not negative.
    if (!/^[+-]?[0-9]+$/.test(this.lengthLine)) this.badLengthLine();
    const length = Math.abs(Number(this.lengthLine)) === 0 ? 0 : Number(this.lengthLine);
    if (length < 0 || !Number.isSafeInteger(length)) this.badLengthLine();
    this.lengthLine = '';
    this.declaredLength = length;
    this.remaining = length;
    this.skipping = length > this.limits.maxPayloadBytes;
    this.payloadParts = [];
    if (length === 0) this.finishRecord();
  }

  private finishRecord(): void {
    this.recordNumber++;
    this.remaining = -1;
    if (this.skipping) {
      this.failure('-1', `payload_too_large: payload of ${this.declaredLength} bytes is over the limit of ${this.limits.maxPayloadBytes} (maxPayloadBytes)`);
      return;
    }
    const parts = this.payloadParts;
    this.payloadParts = [];
    const payload = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const answer = extractSenderJid(payload, this.format, this.limits);
    if (isSuccess(answer)) {
      this.out.push(`${Buffer.byteLength(answer.jid)}\n${answer.jid}`);
    } else {
      this.failure(referenceCode(answer), `${answer.reason}: ${answer.detail}`);
    }
  }

  private failure(code: '-1' | '-2', why: string): void {
    this.out.push(`${code}\n`);
    this.diagnostic?.(`mim-sender-jid stdio: record ${this.recordNumber}: ${code} (${why})`);
  }

  private takeOutput(): string {
    if (this.out.length === 0) return '';
    const text = this.out.join('');
    this.out = [];
    return text;
  }
}

function printable(s: string): string {
  return JSON.stringify(s.length > MAX_LENGTH_LINE_BYTES ? `${s.slice(0, MAX_LENGTH_LINE_BYTES)}...` : s).slice(1, -1);
}

function write(text: string): Promise<void> | undefined {
  if (text === '') return undefined;
  if (process.stdout.write(text)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

const stdio: Subcommand = {
  summary: 'answer LENGTH\\nPAYLOAD records on stdin like the reference escript (eterm|xml|auto)',
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...DECODE_LIMIT_OPTIONS, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
    } catch (error) {
      process.stderr.write(`mim-sender-jid stdio: ${(error as Error).message}\n${USAGE}`);
      return 2;
    }
    if (parsed.values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const [format, ...extra] = parsed.positionals;
    if ((format !== 'eterm' && format !== 'xml' && format !== 'auto') || extra.length > 0) {
      process.stderr.write(`mim-sender-jid stdio: expected one format, eterm, xml or auto\n${USAGE}`);
      return 2;
    }
    const limits = decodeLimitsFromFlags(parsed.values);
    if (typeof limits === 'string') {
      process.stderr.write(`mim-sender-jid stdio: ${limits}\n`);
      return 2;
    }
    const diagnostic = parsed.values.verbose ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    const session = new StdioSession(format, limits, diagnostic);
    // A reader that goes away (head, a closed pipe) ends us quietly, as it would the reference.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(1);
    });
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      // Answers completed before a bad record still go out, in order.
      await write(session.push(chunk));
      if (session.protocolError) break;
    }
    session.end();
    if (session.protocolError) {
      process.stderr.write(`mim-sender-jid stdio: ${session.protocolError.message}\n`);
      return 1;
    }
    return 0;
  },
};

export default stdio;
