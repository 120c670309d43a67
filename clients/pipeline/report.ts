/**
 * The JSONL report of every record not written: one line per record, the backend's own key
 * fields (`room_id`/`id` for SQL, `room_jid`/`with_nick`/`id` for Cassandra, ...) then `reason`
 * and `detail`. Lines are appended before their batch commits, so that a crash can repeat a line
 * (the batch is walked again on resume) but never lose one; within one run a record is reported
 * once. A run resumed from its checkpoint appends to the same file (`--reset` truncates it).
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, statSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import type { NotWrittenReason } from './types.js';

export interface ReportedRecord<Key = unknown> {
  readonly key: Key;
  /** The key as the backend names its fields. */
  readonly fields: Record<string, string>;
  readonly reason: NotWrittenReason;
  readonly detail: string;
}

export interface ReportSink {
  append(records: readonly ReportedRecord[]): void;
  close(): void;
}

export function reportLine(record: ReportedRecord): string {
  return JSON.stringify({ ...record.fields, reason: record.reason, detail: record.detail }) + '\n';
}

/** The report path cannot be used: the operator must give another one (a usage error). */
export class ReportFileError extends Error {
  override readonly name = 'ReportFileError';
}

/** Bytes read at a time when counting the lines of an existing report. */
const COUNT_CHUNK_BYTES = 1 << 20;

/** Synchronous appends: one small write per batch, done before the next batch is accounted. */
export class JsonlReport implements ReportSink {
  private fd: number | null;
  private before: number;
  /** `/dev/null`: the operator's way of keeping no report (nothing to count or truncate). */
  private readonly isNull: boolean;

  /**
   * Opens (creating when missing) a regular file for appending, or throws `ReportFileError`: a
   * device (but `/dev/null`), a pipe or a directory is refused before anything is read from it
   * (`/dev/full` reads forever, a FIFO without a reader blocks). `countExisting` false leaves `linesBefore` at 0.
   */
  constructor(
    readonly path: string,
    truncate: boolean,
    countExisting = !truncate,
  ) {
    const { fd, isNull } = openReportFile(path);
    this.fd = fd;
    this.isNull = isNull;
    try {
      if (truncate && !isNull) ftruncateSync(this.fd, 0);
      this.before = truncate || !countExisting ? 0 : countLines(this.fd);
    } catch (error) {
      closeSync(this.fd);
      throw new ReportFileError(`--report ${path}: cannot read it: ${(error as Error).message}`);
    }
  }

  /** Lines the file held before this run (earlier runs of the same shard). */
  get linesBefore(): number {
    return this.before;
  }

  /** Empties the file (`--reset`), once the run is sure to start. */
  truncate(): void {
    if (this.fd === null || this.isNull) return;
    ftruncateSync(this.fd, 0);
    this.before = 0;
  }

  append(records: readonly ReportedRecord[]): void {
    if (records.length === 0 || this.fd === null) return;
    writeSync(this.fd, records.map(reportLine).join(''));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a pipe';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function refuse(path: string, stats: Stats): ReportFileError {
  return new ReportFileError(`--report ${path} is ${kindOf(stats)}: give the path of a regular file (created when missing)`);
}

/** The null device: accepted as a report that keeps nothing (reading it ends at once). */
function isNullDevice(stats: Stats): boolean {
  if (!stats.isCharacterDevice()) return false;
  try {
    const nullDevice = statSync('/dev/null');
    return stats.rdev === nullDevice.rdev && nullDevice.isCharacterDevice();
  } catch {
    return false;
  }
}

function openReportFile(path: string): { fd: number; isNull: boolean } {
  let existing: Stats | undefined;
  try {
    existing = statSync(path);
  } catch {
    // Missing (created below) or unreadable (open says why).
  }
  if (existing !== undefined && !existing.isFile() && !isNullDevice(existing)) throw refuse(path, existing);
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true });
    // Read-write for counting its lines; non-blocking so that a FIFO swapped in after the check
    // cannot hang the open (it is refused just below).
    fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o644);
  } catch (error) {
    throw new ReportFileError(`--report ${path}: cannot create or open it: ${(error as Error).message}`);
  }
  const opened = fstatSync(fd);
  const isNull = !opened.isFile() && isNullDevice(opened);
  if (!opened.isFile() && !isNull) {
    closeSync(fd);
    throw refuse(path, opened);
  }
  return { fd, isNull };
}

/** Newlines in the file, read a chunk at a time: memory stays bounded whatever its size. */
function countLines(fd: number): number {
  const chunk = Buffer.allocUnsafe(COUNT_CHUNK_BYTES);
  let lines = 0;
  for (let position = 0; ;) {
    const n = readSync(fd, chunk, 0, chunk.length, position);
    if (n === 0) return lines;
    position += n;
    const read = n === chunk.length ? chunk : chunk.subarray(0, n);
    for (let i = read.indexOf(10); i !== -1; i = read.indexOf(10, i + 1)) lines++;
  }
}

/** Keys reported in this run (up to `cap`, so that memory stays bounded): a retried batch is not reported twice. */
export class ReportedInThisRun {
  private readonly keys = new Set<string>();

  constructor(private readonly cap = 1_000_000) {}

  /** True the first time this record is seen. */
  firstTime(record: ReportedRecord): boolean {
    const key = JSON.stringify(record.fields);
    if (this.keys.has(key)) return false;
    if (this.keys.size < this.cap) this.keys.add(key);
    return true;
  }

  /** True when this run reported the record with these key fields (`JSON.stringify(describeKey(key))`). */
  has(key: string): boolean {
    return this.keys.has(key);
  }
}

// A test's report of any backend's keys: the tests read them as their own key type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class MemoryReport<Key = any> implements ReportSink {
  readonly rows: ReportedRecord<Key>[] = [];
  append(records: readonly ReportedRecord[]): void {
    this.rows.push(...(records as ReportedRecord<Key>[]));
  }
  close(): void {}
}
