/**
 * Progress on stderr: a one-line bar redrawn in place on a terminal, a plain log line every
 * `intervalMs` otherwise (logs, CI, `| tee`).
 */
interface ProgressCounts {
  /** Records walked in this run: the summary's `records`. */
  readonly records: number;
  readonly written: number;
  /** Estimated records for the whole run (0 when unknown). */
  readonly estimate: number;
  readonly elapsedMs: number;
}

/**
 * The records without their write are `reported` in a migration (each has its report line: the
 * summary's `reported`) and `notWritten` in `verify --complete` (reported or not, it cannot say yet).
 */
export type ProgressSnapshot = ProgressCounts & ({ readonly reported: number } | { readonly notWritten: number });

export interface ProgressReporter {
  update(snapshot: ProgressSnapshot): void;
  finish(snapshot: ProgressSnapshot): void;
}

export const SILENT_PROGRESS: ProgressReporter = { update() {}, finish() {} };

const BAR_WIDTH = 30;

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

function unwritten(p: ProgressSnapshot): string {
  return 'reported' in p ? `${p.reported.toLocaleString('en-US')} reported` : `${p.notWritten.toLocaleString('en-US')} not written`;
}

export function describeProgress(p: ProgressSnapshot, withBar: boolean): string {
  const rate = p.elapsedMs > 0 ? (p.records * 1000) / p.elapsedMs : 0;
  // No estimate (a store that cannot count cheaply): no total, share or ETA rather than the walked
  // count posing as one ("N / ~N (100%), ETA 0:00" from the first page on).
  if (p.estimate <= 0) {
    return (
      `${p.records.toLocaleString('en-US')} records (total unknown), ` +
      `${p.written.toLocaleString('en-US')} written, ${unwritten(p)}, ` +
      `${Math.round(rate).toLocaleString('en-US')} records/s, elapsed ${formatDuration(p.elapsedMs)}, ETA unknown`
    );
  }
  const total = Math.max(p.estimate, p.records);
  const fraction = p.records / total;
  const eta = rate > 0 ? ((total - p.records) / rate) * 1000 : NaN;
  const bar = withBar ? '[' + '#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '.') + '] ' : '';
  return (
    `${bar}${p.records.toLocaleString('en-US')} / ~${total.toLocaleString('en-US')} records (${(fraction * 100).toFixed(1)}%), ` +
    `${p.written.toLocaleString('en-US')} written, ${unwritten(p)}, ` +
    `${Math.round(rate).toLocaleString('en-US')} records/s, elapsed ${formatDuration(p.elapsedMs)}, ETA ${formatDuration(eta)}`
  );
}

export class StreamProgress implements ProgressReporter {
  private lastLog = 0;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 10_000,
  ) {
    this.tty = out.isTTY === true;
  }

  update(p: ProgressSnapshot): void {
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastLog < 100) return;
      this.lastLog = now;
      this.out.write('\r' + describeProgress(p, true) + '\x1b[K');
    } else if (now - this.lastLog >= this.intervalMs) {
      this.lastLog = now;
      this.out.write(`progress: ${describeProgress(p, false)}\n`);
    }
  }

  finish(p: ProgressSnapshot): void {
    if (this.tty) this.out.write('\r' + describeProgress(p, true) + '\x1b[K\n');
  }
}
