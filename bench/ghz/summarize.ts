/**
 * Reads ghz JSON reports and prints, per scenario: calls/s, items/s, p50 and p99 latency, errors.
 *
 *   node dist/bench/ghz/summarize.js REPORT.json:ITEMS_PER_CALL ...
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface GhzReport {
  name?: string;
  count: number;
  total: number;
  rps: number;
  average: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number>;
  errorDistribution?: Record<string, number> | null;
}

const ms = (ns: number | undefined): string => (ns === undefined ? '-' : (ns / 1e6).toFixed(1));

function percentile(report: GhzReport, p: number): number | undefined {
  return report.latencyDistribution?.find((d) => d.percentage === p)?.latency;
}

const rows = [['scenario', 'calls', 'calls/s', 'items/call', 'items/s', 'p50 ms', 'p99 ms', 'non-OK']];
for (const argument of process.argv.slice(2)) {
  const [file, itemsText] = argument.split(':');
  const items = Number(itemsText);
  const report = JSON.parse(readFileSync(file, 'utf8')) as GhzReport;
  const ok = report.statusCodeDistribution?.OK ?? 0;
  const notOk = Object.entries(report.statusCodeDistribution ?? {}).filter(([code]) => code !== 'OK').reduce((sum, [, n]) => sum + n, 0);
  rows.push([
    report.name ?? basename(file, '.json'),
    String(report.count),
    report.rps.toFixed(1),
    String(items),
    Math.round(report.rps * items * (ok / Math.max(1, report.count))).toLocaleString('en-US'),
    ms(percentile(report, 50)),
    ms(percentile(report, 99)),
    String(notOk),
  ]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
for (const row of rows) process.stdout.write(row.map((cell, c) => cell.padStart(widths[c])).join('  ') + '\n');
