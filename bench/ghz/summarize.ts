/**
 * Reads ghz JSON reports and prints, per scenario: calls/s, items/s, p50 and p99 latency, errors;
 * then each requested ratio of items/s (the sidecar against its floor); and writes one HTML report
 * of every scenario (so ghz runs each scenario once, with -O json).
 *
 * With --cpu, a TSV of `REPORT.json  SERVER_MAIN_S  SERVER_OTHER_THREADS_S  GHZ_S` (CPU seconds per
 * scenario, from run.sh), it also prints CPU microseconds per item answered: where the time went;
 * and with --decode-cost "DECODER_US TASK_US" (decode-cost.js, one thread, the same data) each ratio's
 * ceiling: the floor's CPU per item ÷ (the floor's + the decoder's), what sidecar ÷ floor would be
 * if the sidecar added nothing but decoding to the floor's work, both sharing the same cores.
 *
 *   node dist/bench/ghz/summarize.js [--html OUT.html] [--cpu CPU.tsv] [--decode-cost "D T"] [--ratio A.json:B.json:LABEL]... REPORT.json:ITEMS_PER_CALL ...
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

interface GhzReport {
  name?: string;
  date?: string;
  count: number;
  total: number;
  rps: number;
  average: number;
  fastest?: number;
  slowest?: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  histogram?: { mark: number; count: number; frequency: number }[] | null;
  statusCodeDistribution: Record<string, number>;
  errorDistribution?: Record<string, number> | null;
  options?: { call?: string; concurrency?: number; connections?: number; rps?: number };
}

interface Scenario {
  readonly file: string;
  readonly name: string;
  readonly items: number;
  readonly report: GhzReport;
  readonly itemsPerSecond: number;
}

const ms = (ns: number | undefined): string => (ns === undefined ? '-' : (ns / 1e6).toFixed(1));

function percentile(report: GhzReport, p: number): number | undefined {
  return report.latencyDistribution?.find((d) => d.percentage === p)?.latency;
}

function notOk(report: GhzReport): number {
  return Object.entries(report.statusCodeDistribution ?? {})
    .filter(([code]) => code !== 'OK')
    .reduce((sum, [, n]) => sum + n, 0);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function html(scenarios: readonly Scenario[], ratios: readonly string[]): string {
  const sections = scenarios.map(({ name, items, report, itemsPerSecond }) => {
    const histogram = report.histogram ?? [];
    const most = Math.max(1, ...histogram.map((h) => h.count));
    const bars = histogram
      .map((h) => `<tr><td>${ms(h.mark * 1e9)} ms</td><td><div class="bar" style="width:${(400 * h.count) / most}px"></div></td><td>${h.count}</td></tr>`)
      .join('');
    const latencies = (report.latencyDistribution ?? []).map((d) => `<td>p${d.percentage}: ${ms(d.latency)} ms</td>`).join('');
    const statuses = Object.entries(report.statusCodeDistribution ?? {})
      .map(([code, n]) => `${escapeHtml(code)} ${n}`)
      .join(', ');
    const errors = Object.entries(report.errorDistribution ?? {})
      .map(([error, n]) => `<li>${n} × ${escapeHtml(error)}</li>`)
      .join('');
    return `<h2>${escapeHtml(name)}</h2>
<p>${report.count} calls in ${(report.total / 1e9).toFixed(1)} s: ${report.rps.toFixed(1)} calls/s × ${items} items = <b>${Math.round(itemsPerSecond).toLocaleString('en-US')} items/s</b>;
average ${ms(report.average)} ms, fastest ${ms(report.fastest)} ms, slowest ${ms(report.slowest)} ms; statuses: ${statuses}
${report.options ? `; ${escapeHtml(report.options.call ?? '')}, concurrency ${report.options.concurrency}, connections ${report.options.connections}${report.options.rps ? `, rps ${report.options.rps}` : ''}` : ''}</p>
<table><tr>${latencies}</tr></table>
<table>${bars}</table>${errors ? `<ul>${errors}</ul>` : ''}`;
  });
  return `<!doctype html><meta charset="utf-8"><title>mim-sender-jid: ghz</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{padding:0 .6em;font-size:90%}.bar{background:#4a7;height:.8em}</style>
<h1>gRPC sidecar under ghz</h1>
${ratios.length ? `<p>${ratios.map(escapeHtml).join('<br>')}</p>` : ''}
${sections.join('\n')}
`;
}

function main(argv: string[]): void {
  let htmlOut: string | undefined;
  let cpuFile: string | undefined;
  let decodeCost: { decoder: number; task: number } | undefined;
  const ratioArgs: string[] = [];
  const scenarios: Scenario[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--html') htmlOut = argv[++i];
    else if (argv[i] === '--cpu') cpuFile = argv[++i];
    else if (argv[i] === '--ratio') ratioArgs.push(argv[++i]);
    else if (argv[i] === '--decode-cost') {
      const [decoder, task] = argv[++i].split(' ').map(Number);
      decodeCost = { decoder, task };
    } else {
      const [file, itemsText] = argv[i].split(':');
      const items = Number(itemsText);
      const report = JSON.parse(readFileSync(file, 'utf8')) as GhzReport;
      const ok = report.statusCodeDistribution?.OK ?? 0;
      scenarios.push({
        file,
        name: report.name ?? basename(file, '.json'),
        items,
        report,
        itemsPerSecond: report.rps * items * (ok / Math.max(1, report.count)),
      });
    }
  }
  const rows = [['scenario', 'calls', 'calls/s', 'items/call', 'items/s', 'p50 ms', 'p99 ms', 'non-OK']];
  for (const { name, items, report, itemsPerSecond } of scenarios) {
    rows.push([
      name,
      String(report.count),
      report.rps.toFixed(1),
      String(items),
      Math.round(itemsPerSecond).toLocaleString('en-US'),
      ms(percentile(report, 50)),
      ms(percentile(report, 99)),
      String(notOk(report)),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) process.stdout.write(row.map((cell, c) => cell.padStart(widths[c])).join('  ') + '\n');

  /** Total CPU µs per item answered, per report file (from --cpu). */
  const cpuTotal = new Map<string, number>();
  if (cpuFile !== undefined) {
    const cpuRows = [['scenario', 'server main µs/item', 'server other threads µs/item', 'ghz µs/item', 'total µs/item']];
    for (const line of readFileSync(cpuFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')) {
      const [file, main, others, ghz] = line.split('\t');
      const scenario = scenarios.find((s) => s.file === file);
      if (!scenario) continue;
      const answered = (scenario.report.statusCodeDistribution?.OK ?? 0) * scenario.items;
      const per = (seconds: number): string => (answered === 0 ? '-' : ((seconds * 1e6) / answered).toFixed(2));
      if (answered > 0) cpuTotal.set(file, ((Number(main) + Number(others) + Number(ghz)) * 1e6) / answered);
      cpuRows.push([scenario.name, per(Number(main)), per(Number(others)), per(Number(ghz)), per(Number(main) + Number(others) + Number(ghz))]);
    }
    const cpuWidths = cpuRows[0].map((_, c) => Math.max(...cpuRows.map((row) => row[c].length)));
    process.stdout.write('\nCPU time per item answered (user + system; server threads from /proc, ghz from time(1)):\n');
    for (const row of cpuRows) process.stdout.write(row.map((cell, c) => cell.padStart(cpuWidths[c])).join('  ') + '\n');
  }

  const ratios: string[] = [];
  for (const spec of ratioArgs) {
    const [a, b, label] = spec.split(':');
    const top = scenarios.find((s) => s.file === a);
    const bottom = scenarios.find((s) => s.file === b);
    if (!top || !bottom) throw new Error(`--ratio ${spec}: both reports must be among the scenarios`);
    let ratio = `${label}: ${top.name} ${Math.round(top.itemsPerSecond).toLocaleString('en-US')} items/s ÷ ${bottom.name} ${Math.round(bottom.itemsPerSecond).toLocaleString('en-US')} items/s = ${(top.itemsPerSecond / bottom.itemsPerSecond).toFixed(2)}`;
    const topCpu = cpuTotal.get(a);
    const bottomCpu = cpuTotal.get(b);
    if (topCpu !== undefined && bottomCpu !== undefined)
      ratio += `; by CPU per item ${bottomCpu.toFixed(2)} ÷ ${topCpu.toFixed(2)} µs = ${(bottomCpu / topCpu).toFixed(2)}`;
    if (bottomCpu !== undefined && decodeCost !== undefined) {
      ratio += `; ceiling with decoding at its one-thread cost (${decodeCost.decoder.toFixed(2)} µs/item, the worker's whole task ${decodeCost.task.toFixed(2)}): ${(bottomCpu / (bottomCpu + decodeCost.decoder)).toFixed(2)} (${(bottomCpu / (bottomCpu + decodeCost.task)).toFixed(2)})`;
    }
    ratios.push(ratio);
  }
  if (ratios.length) process.stdout.write(`\n${ratios.join('\n')}\n`);
  if (htmlOut !== undefined) writeFileSync(htmlOut, html(scenarios, ratios));
}

main(process.argv.slice(2));
