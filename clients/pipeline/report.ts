/**
 * The JSONL report of every record not written: one line per record, the backend's own key
 * fields (`room_id`/`id` for SQL, `room_jid`/`with_nick`/`id` for Cassandra, ...) then `reason`
 * and `detail`. Lines are appended before their batch commits, so that a crash can repeat a line
 * (the batch is walked again on resume) but never lose one; within one run a record is reported
 * once. A run resumed from its checkpoint appends to the same file (`--reset` truncates it).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
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
  append(rows: readonly ReportedRecord[]): void;
  close(): void;
}

export function reportLine(row: ReportedRecord): string {
  return JSON.stringify({ ...row.fields, reason: row.reason, detail: row.detail }) + '\n';
}

/** Synchronous appends: one small write per batch, done before the next batch is accounted. */
export class JsonlReport implements ReportSink {
  private fd: number | null;
  /** Lines the file held before this run (earlier runs of the same shard). */
  readonly linesBefore: number;

  constructor(readonly path: string, truncate: boolean) {
    mkdirSync(dirname(path), { recursive: true });
    this.linesBefore = truncate || !existsSync(path) ? 0 : countLines(path);
    this.fd = openSync(path, truncate ? 'w' : 'a');
  }

  append(rows: readonly ReportedRecord[]): void {
    if (rows.length === 0 || this.fd === null) return;
    writeSync(this.fd, rows.map(reportLine).join(''));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function countLines(path: string): number {
  const bytes = readFileSync(path);
  let lines = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
  return lines;
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

export class MemoryReport<Key = any> implements ReportSink {
  readonly rows: ReportedRecord<Key>[] = [];
  append(rows: readonly ReportedRecord[]): void {
    this.rows.push(...(rows as ReportedRecord<Key>[]));
  }
  close(): void {}
}
