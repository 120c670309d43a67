/**
 * The report read back: which records a report file names, streamed line by line (a report of a
 * long run may hold millions of lines, more than memory or one string can), for the end-of-run
 * accounting of `migrate` and for `verify --complete`.
 */
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * The key of one report line as the store side names it: the line's JSON object without `reason`
 * and `detail`, stringified again (the same text as `JSON.stringify(backend.describeKey(key))`,
 * since a report line is written as `{...describeKey(key), reason, detail}`). Null for a line that
 * is not such an object (a line cut by a kill, a stray edit).
 */
export function reportedKeyOfLine(line: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  // A line's identity is its key fields: everything but what was said about the record.
  const fields = { ...(value as Record<string, unknown>) };
  delete fields.reason;
  delete fields.detail;
  return JSON.stringify(fields);
}

/** A report line longer than this is no line we wrote: skipped unread, so memory stays bounded. */
export const MAX_REPORT_LINE_BYTES = 16 * 1024 * 1024;

/**
 * The key of every line of a report file, streamed: one line in memory at a time, whatever the
 * file's size. Lines that are not a report line are skipped. Refuses what is not a regular file
 * (a FIFO would never end, a device never hold a report).
 */
export async function* reportedKeys(path: string): AsyncGenerator<string> {
  const stat = statSync(path);
  if (!stat.isFile()) throw new Error(`report ${path} is not a regular file: give a file with --report`);
  const stream = createReadStream(path);
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        if (!tooLong && size + (nl - start) <= MAX_REPORT_LINE_BYTES) {
          parts.push(chunk.subarray(start, nl));
          const key = reportedKeyOfLine(Buffer.concat(parts).toString('utf8'));
          if (key !== null) yield key;
        }
        parts = [];
        size = 0;
        tooLong = false;
        start = nl + 1;
      }
      if (start < chunk.length && !tooLong) {
        size += chunk.length - start;
        if (size > MAX_REPORT_LINE_BYTES) {
          tooLong = true;
          parts = [];
        } else {
          parts.push(chunk.subarray(start));
        }
      }
    }
    if (!tooLong && parts.length > 0) {
      const key = reportedKeyOfLine(Buffer.concat(parts).toString('utf8'));
      if (key !== null) yield key;
    }
  } finally {
    stream.destroy();
  }
}

/**
 * True when `path` is a report that can be read back: a regular file. A missing path, or a device,
 * a FIFO or a directory given as the report (`--report /dev/null`), holds no line to read back.
 */
export function isReadableReport(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Removes from `pending` (keys as `reportedKeyOfLine` gives them) every key some line of the
 * report file holds; stops reading as soon as nothing is pending. A path that is no regular file
 * (missing, a device) holds nothing.
 */
export async function removeReportedKeys(path: string, pending: { delete(key: string): boolean; readonly size: number }): Promise<void> {
  if (pending.size === 0 || !isReadableReport(path)) return;
  for await (const key of reportedKeys(path)) {
    pending.delete(key);
    if (pending.size === 0) return;
  }
}

/**
 * The keys of a report file, at most `max` of them (the first ones; a path that is no regular
 * file holds none), streamed in.
 */
export async function readReportedKeySet(path: string, max: number): Promise<Set<string>> {
  const keys = new Set<string>();
  if (!isReadableReport(path)) return keys;
  for await (const key of reportedKeys(path)) {
    if (keys.size >= max) break;
    keys.add(key);
  }
  return keys;
}

/**
 * Where `migrate` keeps the report by default: one file per backend and shard, and a file of its
 * own for a dry run (which never touches what the real run reported).
 */
export function defaultReportPath(kind: string, shard: { readonly index: number; readonly count: number }, dryRun = false): string {
  return `mim-sender-jid-report-${kind}-shard-${shard.index}-of-${shard.count}${dryRun ? '-dry-run' : ''}.jsonl`;
}

/**
 * The report a `migrate` run writes to. A dry run never writes the real run's file, also when the
 * operator names it: a dry run given `--report r.jsonl` (the real run's command with `--dry-run`
 * added) writes `r-dry-run.jsonl`, because the real run takes records in its report as reported
 * and would never write them (a dry run under smaller limits reports records a real run can write),
 * and a dry `--reset` would empty it. Always, whatever the name says (a real run may have been
 * given `x-dry-run.jsonl` too); a path that is no regular file (`/dev/null`, a device, a pipe) stays.
 */
export function migrateReportPath(given: string | undefined, kind: string, shard: { readonly index: number; readonly count: number }, dryRun: boolean): string {
  if (given === undefined) return defaultReportPath(kind, shard, dryRun);
  // Only a regular file (or a path not there yet) has a place beside it: a device, a pipe or a
  // directory stays as given, for the report file to refuse (or, /dev/null, to keep nothing).
  if (!dryRun || given.endsWith('/') || !isFileOrMissing(given)) return given;
  const name = basename(given);
  const dot = name.lastIndexOf('.');
  const dryName = dot > 0 ? `${name.slice(0, dot)}-dry-run${name.slice(dot)}` : `${name}-dry-run`;
  return given.slice(0, given.length - name.length) + dryName;
}

function isFileOrMissing(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return true;
  }
}

/**
 * The kind in a report's default name: `postgres`, or `postgres-origin_id` for a `--field` walk
 * (its records are others'); several fields joined in a fixed order, whichever order they were named
 * in (`postgres-is_groupchat+origin_id`).
 */
export function reportKind(kind: string, field: unknown): string {
  if (typeof field !== 'string' || field === 'sender') return kind;
  const fields = field.split(',').map((f) => f.trim());
  return `${kind}-${fields.length === 1 ? field : [...new Set(fields)].sort().join('+')}`;
}
