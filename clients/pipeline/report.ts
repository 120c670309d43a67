/**
 * The JSONL report of every row not written: one line per row, `{room_id, id, reason, detail}`.
 * Lines are appended after their batch commits, so a retried batch is not reported twice; a run
 * resumed from its checkpoint appends to the same file (`--reset` truncates it).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NotWrittenReason, RowKey } from './types.js';

export interface NotWrittenRow {
  readonly key: RowKey;
  readonly reason: NotWrittenReason;
  readonly detail: string;
}

export interface ReportSink {
  append(rows: readonly NotWrittenRow[]): void;
  close(): void;
}

export function reportLine(row: NotWrittenRow): string {
  return JSON.stringify({ room_id: row.key.roomId, id: row.key.id, reason: row.reason, detail: row.detail }) + '\n';
}

/** Synchronous appends: one small write per batch, done before the next batch is accounted. */
export class JsonlReport implements ReportSink {
  private fd: number | null;

  constructor(readonly path: string, truncate: boolean) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, truncate ? 'w' : 'a');
  }

  append(rows: readonly NotWrittenRow[]): void {
    if (rows.length === 0 || this.fd === null) return;
    writeSync(this.fd, rows.map(reportLine).join(''));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export class MemoryReport implements ReportSink {
  readonly rows: NotWrittenRow[] = [];
  append(rows: readonly NotWrittenRow[]): void {
    this.rows.push(...rows);
  }
  close(): void {}
}
