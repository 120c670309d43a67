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
 *
 * Standard input and output are read and written synchronously (fs.readSync on fd 0 into one
 * reused buffer, fs.writeSync on fd 1): the loop has nothing else to wait for, and the stream layer
 * of process.stdin (a new buffer, a chunk object and a promise per read, their garbage) cost about
 * a third as much as decoding a plain term.
 */
import { readSync, writeSync } from 'node:fs';
import { extractSenderJid, isSuccess, referenceCode, type DecodeLimits, type PayloadFormat } from '../services/decode/index.js';
import type { Subcommand } from './cli.js';
import { DECODE_LIMIT_HELP, readDecodeCommandLine } from './decode-limit-options.js';

const USAGE = `usage: mim-sender-jid stdio [options] eterm|xml|auto
Reads LENGTH\\nPAYLOAD records on stdin, answers LENGTH\\nJID, -1\\n or -2\\n on stdout (the reference escript's protocol).
  --verbose                   one line on stderr for each -1/-2, with its reason
${DECODE_LIMIT_HELP}
`;

/** A length line longer than this cannot be a number we accept: report it rather than buffer on. */
const MAX_LENGTH_LINE_BYTES = 32;
/** The fast path reads a length line of at most this many digits (well inside Number's safe integers). */
const FAST_LENGTH_DIGITS = 15;
const NEWLINE = 0x0a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const EMPTY = new Uint8Array(0);
/** Room for the answers of one chunk; grown when a chunk needs more. */
const INITIAL_OUTPUT_BYTES = 16 * 1024;

export class StdioProtocolError extends Error {}

/**
 * The record parser and answerer, separate from the process streams so that it can be driven by any input.
 *
 * The hot path is per record, so it allocates nothing the decoder does not need: a length line of
 * plain digits followed by its whole payload in the same chunk is read straight from the bytes, the
 * payload is handed to the decoder as a view of the chunk, and answers are written as bytes into
 * one output buffer per chunk. Everything else (a length line or payload split across reads, signs,
 * over-long or bad length lines, skipped oversized payloads) takes the general path below, which
 * keeps the protocol's exact rules.
 */
export class StdioSession {
  /** A length line being read across chunks (general path); '' between records. */
  private lengthLine = '';
  /** Payload bytes still to come for the current record; -1 while a length line is being read. */
  private remaining = -1;
  private payloadParts: Uint8Array[] = [];
  private skipping = false;
  private declaredLength = 0;
  private recordNumber = 0;
  private out: Buffer = Buffer.allocUnsafe(INITIAL_OUTPUT_BYTES);
  private outLength = 0;
  /** Encoded answers (`LENGTH\nJID`) of recent JIDs; bounded by emptying when full. */
  private readonly answers = new Map<string, Uint8Array>();

  constructor(
    private readonly format: PayloadFormat,
    private readonly limits: DecodeLimits,
    private readonly diagnostic: ((line: string) => void) | undefined,
  ) {}

  /** Set when the input broke the protocol: nothing after it is read. */
  protocolError: StdioProtocolError | undefined;

  /**
   * Consumes one chunk of input; returns the answers it completed (maybe empty), including those
   * before a protocol error, which is then left in protocolError. The returned bytes are a view of
   * the session's output buffer, good until the next push: write or copy them before. The chunk
   * is not kept: the caller may read the next input into the same bytes.
   */
  push(chunk: Uint8Array): Buffer {
    if (this.protocolError) return EMPTY_OUTPUT;
    try {
      this.consume(chunk);
    } catch (error) {
      if (!(error instanceof StdioProtocolError)) throw error;
      this.protocolError = error;
    }
    return this.takeOutput();
  }

  private consume(chunk: Uint8Array): void {
    const end = chunk.length;
    const maxPayloadBytes = this.limits.maxPayloadBytes;
    let pos = 0;
    while (pos < end) {
      if (this.remaining < 0) {
        if (this.lengthLine === '') {
          // Fast path: DIGITS\n and the whole payload in this chunk.
          let i = pos;
          let length = 0;
          const digitsEnd = Math.min(end, pos + FAST_LENGTH_DIGITS);
          while (i < digitsEnd) {
            const c = chunk[i];
            if (c < DIGIT_0 || c > DIGIT_9) break;
            length = length * 10 + (c - DIGIT_0);
            i++;
          }
          if (i > pos && i < end && chunk[i] === NEWLINE) {
            const start = i + 1;
            if (length <= end - start && length <= maxPayloadBytes) {
              this.recordNumber++;
              this.answer(length === 0 ? EMPTY : chunk.subarray(start, start + length));
              pos = start + length;
              continue;
            }
            pos = start;
            this.startRecord(length);
            continue;
          }
        }
        // General path: the length line, maybe in pieces, checked as binary_to_integer/1 reads it.
        const newline = chunk.indexOf(NEWLINE, pos);
        const lineEnd = newline < 0 ? end : newline;
        this.lengthLine += Buffer.from(chunk.buffer, chunk.byteOffset + pos, lineEnd - pos).toString('latin1');
        if (this.lengthLine.length > MAX_LENGTH_LINE_BYTES) this.badLengthLine();
        if (newline < 0) break;
        pos = newline + 1;
        this.startRecord(this.parseLengthLine());
        continue;
      }
      const take = Math.min(this.remaining, end - pos);
      // A copy: the caller reuses the chunk's bytes for its next read.
      if (!this.skipping) this.payloadParts.push(Uint8Array.prototype.slice.call(chunk, pos, pos + take));
      this.remaining -= take;
      pos += take;
      if (this.remaining === 0) this.finishRecord();
    }
  }

  /** Input ended: fine between records, a protocol error inside one. */
  end(): void {
    if (this.protocolError || (this.remaining < 0 && this.lengthLine === '')) return;
    const where =
      this.remaining < 0
        ? `inside the length line '${printable(this.lengthLine)}'`
        : `${this.remaining} bytes short of the ${this.declaredLength}-byte payload`;
    this.protocolError = new StdioProtocolError(`input ended in record ${this.recordNumber + 1}, ${where}`);
  }

  private badLengthLine(): never {
    throw new StdioProtocolError(`record ${this.recordNumber + 1}: length line '${printable(this.lengthLine)}' is not a byte count`);
  }

  private parseLengthLine(): number {
    // What binary_to_integer/1 takes (an optional sign, decimal digits), and not negative.
    if (!/^[+-]?[0-9]+$/.test(this.lengthLine)) this.badLengthLine();
    const length = Math.abs(Number(this.lengthLine)) === 0 ? 0 : Number(this.lengthLine);
    if (length < 0 || !Number.isSafeInteger(length)) this.badLengthLine();
    this.lengthLine = '';
    return length;
  }

  /** A record whose payload is not (all) in the chunk at hand, or is skipped: gathered or counted down. */
  private startRecord(length: number): void {
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
      this.writeFailure(MINUS_ONE);
      this.diagnostic?.(
        `mim-sender-jid stdio: record ${this.recordNumber}: -1 (payload_too_large: payload of ${this.declaredLength} bytes is over the limit of ${this.limits.maxPayloadBytes} (maxPayloadBytes))`,
      );
      return;
    }
    const parts = this.payloadParts;
    this.payloadParts = [];
    this.answer(parts.length === 1 ? parts[0] : parts.length === 0 ? EMPTY : Buffer.concat(parts));
  }

  private answer(payload: Uint8Array): void {
    const answer = extractSenderJid(payload, this.format, this.limits);
    if (isSuccess(answer)) {
      this.writeJid(answer.jid);
      return;
    }
    const code = referenceCode(answer);
    this.writeFailure(code === '-2' ? MINUS_TWO : MINUS_ONE);
    this.diagnostic?.(`mim-sender-jid stdio: record ${this.recordNumber}: ${code} (${answer.reason}: ${answer.detail})`);
  }

  private writeFailure(code: Uint8Array): void {
    this.reserve(3);
    this.out.set(code, this.outLength);
    this.outLength += 3;
  }

  /**
   * Archives repeat their senders, and the decoder hands back the same string for a repeated
   * sender: its encoded answer is kept, so most records copy a few bytes instead of encoding.
   */
  private writeJid(jid: string): void {
    let encoded = this.answers.get(jid);
    if (encoded === undefined) {
      const at = this.outLength;
      this.encodeJid(jid);
      // A copy (Buffer.slice would be a view keeping the whole output buffer alive).
      encoded = Uint8Array.prototype.slice.call(this.out, at, this.outLength);
      if (this.answers.size >= ANSWER_CACHE_ENTRIES) this.answers.clear();
      this.answers.set(jid, encoded);
      return;
    }
    const n = encoded.length;
    this.reserve(n);
    const out = this.out;
    const at = this.outLength;
    // A loop: for answers of a few dozen bytes it costs less than TypedArray.prototype.set.
    for (let i = 0; i < n; i++) out[at + i] = encoded[i];
    this.outLength = at + n;
  }

  /** `LENGTH\nJID`, LENGTH in UTF-8 bytes, encoded here: JIDs are short, a call into the runtime costs more. */
  private encodeJid(jid: string): void {
    const n = jid.length;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const c = jid.charCodeAt(i);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(jid.charCodeAt(i + 1))) {
        bytes += 4;
        i++;
      } else bytes += 3; // a lone surrogate becomes U+FFFD, as Buffer.from(string) writes it
    }
    const digits = decimalDigits(bytes);
    this.reserve(digits + 1 + bytes);
    const out = this.out;
    const at = this.outLength;
    let q = at + digits;
    out[q] = NEWLINE;
    for (let v = bytes; q > at; v = Math.floor(v / 10)) out[--q] = DIGIT_0 + (v % 10);
    let p = at + digits + 1;
    for (let i = 0; i < n; i++) {
      let c = jid.charCodeAt(i);
      if (c < 0x80) {
        out[p++] = c;
      } else if (c < 0x800) {
        out[p++] = 0xc0 | (c >> 6);
        out[p++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(jid.charCodeAt(i + 1))) {
        c = 0x10000 + ((c - 0xd800) << 10) + (jid.charCodeAt(++i) - 0xdc00);
        out[p++] = 0xf0 | (c >> 18);
        out[p++] = 0x80 | ((c >> 12) & 0x3f);
        out[p++] = 0x80 | ((c >> 6) & 0x3f);
        out[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        out[p++] = 0xe0 | (c >> 12);
        out[p++] = 0x80 | ((c >> 6) & 0x3f);
        out[p++] = 0x80 | (c & 0x3f);
      }
    }
    this.outLength = p;
  }

  private reserve(bytes: number): void {
    if (this.outLength + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.outLength + bytes));
    this.out.copy(bigger, 0, 0, this.outLength);
    this.out = bigger;
  }

  private takeOutput(): Buffer {
    if (this.outLength === 0) return EMPTY_OUTPUT;
    const done = this.out.subarray(0, this.outLength);
    this.outLength = 0;
    return done;
  }
}

const EMPTY_OUTPUT = Buffer.alloc(0);

const ANSWER_CACHE_ENTRIES = 4096;
const MINUS_ONE = Buffer.from('-1\n');
const MINUS_TWO = Buffer.from('-2\n');

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function decimalDigits(n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  return digits;
}

function printable(s: string): string {
  return JSON.stringify(s.length > MAX_LENGTH_LINE_BYTES ? `${s.slice(0, MAX_LENGTH_LINE_BYTES)}...` : s).slice(1, -1);
}

/** Bytes read from stdin at a time (a pipe gives at most its capacity, 64 KiB by default, per read). */
const READ_BYTES = 256 * 1024;
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
/** Waits on a non-blocking descriptor that has nothing to give or take yet, from 1 ms doubling up to this. */
const MAX_WAIT_MS = 64;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/** The reader went away (a closed pipe, head): we end quietly, as the reference would. */
class ReaderGone extends Error {}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

/**
 * A descriptor handed to us non-blocking answers EAGAIN instead of waiting; the loop then sleeps
 * (no CPU) and retries, so such a caller is served too, at a latency of a few milliseconds.
 */
function backOff(waitedMs: number): number {
  const ms = Math.min(MAX_WAIT_MS, Math.max(1, 2 * waitedMs));
  Atomics.wait(waitCell, 0, 0, ms);
  return ms;
}

/** Reads what stdin has (at least one byte), or 0 at its end. */
function readInput(into: Uint8Array): number {
  for (let waited = 0; ;) {
    try {
      return readSync(STDIN, into, 0, into.length, null);
    } catch (error) {
      if (isErrno(error, 'EOF')) return 0; // how Windows says a pipe ended
      if (!isErrno(error, 'EAGAIN')) throw error;
      waited = backOff(waited);
    }
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0, waited = 0; at < bytes.length;) {
    try {
      at += writeSync(fd, bytes, at, bytes.length - at);
      waited = 0;
    } catch (error) {
      if (isErrno(error, 'EPIPE')) throw new ReaderGone();
      if (!isErrno(error, 'EAGAIN')) throw error;
      waited = backOff(waited);
    }
  }
}

const stdio: Subcommand = {
  summary: 'answer LENGTH\\nPAYLOAD records on stdin like the reference escript (eterm|xml|auto)',
  async run(argv) {
    const parsed = readDecodeCommandLine('stdio', argv, USAGE, { verbose: { type: 'boolean' } });
    if (typeof parsed === 'number') return parsed;
    const [format, ...extra] = parsed.positionals;
    if ((format !== 'eterm' && format !== 'xml' && format !== 'auto') || extra.length > 0) {
      process.stderr.write(`mim-sender-jid stdio: expected one format, eterm, xml or auto\n${USAGE}`);
      return 2;
    }
    const { limits } = parsed;
    // Diagnostics through the same synchronous writes, so they are never queued behind the loop.
    const diagnostic = parsed.values.verbose ? (line: string) => writeAll(STDERR, Buffer.from(`${line}\n`)) : undefined;
    const session = new StdioSession(format, limits, diagnostic);
    const input = Buffer.allocUnsafe(READ_BYTES);
    try {
      for (;;) {
        const n = readInput(input);
        if (n === 0) break;
        // Answers completed before a bad record still go out, in order.
        writeAll(STDOUT, session.push(input.subarray(0, n)));
        if (session.protocolError) break;
      }
    } catch (error) {
      if (error instanceof ReaderGone) return 1;
      throw error;
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
