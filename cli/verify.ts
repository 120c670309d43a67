/**
 * `mim-sender-jid verify KIND [flags] [--sample N | --complete]`: re-decodes a random sample of
 * records that already have their sender and reports every record whose stored sender disagrees;
 * `--complete` walks every record and also lists those neither written nor reported.
 */
import { existsSync, statSync } from 'node:fs';
import { openDecoder, streamOpener } from '../clients/decoder-client/index.js';
import { StreamProgress } from '../clients/pipeline/progress.js';
import { defaultReportPath, reportKind } from '../clients/pipeline/report-keys.js';
import {
  completeExitStatus,
  DEFAULT_VERIFY_SAMPLE,
  formatCompleteSummary,
  runVerify,
  runVerifyComplete,
  sampleOutcome,
} from '../clients/pipeline/run-verify.js';
import { shardName, type AnyBackend } from '../clients/pipeline/types.js';
import type { Subcommand } from './cli.js';
import { flagUsage } from './command-flags.js';
import type { FlagValues } from '../clients/backends/registry.js';
import { backendList, describeFailure, readCommandLine, UsageError } from './options.js';

async function usage(kind?: string, own?: string): Promise<string> {
  return `usage: mim-sender-jid verify ${kind ?? 'KIND'} [options] [--sample N | --complete [--shard K/N] [--report PATH ...]]

Re-decodes N random records that already have their sender (default ${DEFAULT_VERIFY_SAMPLE}) and compares
the sender in the payload with what the store holds. Prints one JSON line per mismatch on stdout
and a summary on stderr.

--complete walks every record of the archive (or of one shard) instead: each is written and right,
written and wrong, not written and reported, or not written and not reported (in no report file).
Counts per class on stderr, one JSON line per record written wrong or not written and not reported
on stdout. It reads the whole archive once: run it when migrate is done, to know what is left.

exit status: 0 all match (--complete: every record written right or reported), 3 a mismatch, a
record neither written nor reported, or nothing to check (no record has its sender yet), 1 error,
2 bad usage.
${kind === undefined ? `\nKIND:\n${await backendList()}\n` : ''}${own ? `\n${kind} options:\n${own}\n` : ''}
${flagUsage('verify', 'verify', kind)}
${flagUsage('verify', 'decoding', kind)}`;
}

/** Checks between verify's flags, before their values are read. */
function checkVerify(values: FlagValues): void {
  const { complete, sample, shard, report } = values;
  if (complete === true && sample !== undefined) throw new UsageError('--sample and --complete: choose one (--complete checks every record)');
  if (complete !== true && (shard !== undefined || report !== undefined)) throw new UsageError('--shard and --report go with --complete');
  for (const path of (report as string[] | undefined) ?? []) {
    if (!existsSync(path)) throw new UsageError(`--report ${path}: no such file (give a report file that migrate wrote)`);
    if (!statSync(path).isFile()) throw new UsageError(`--report ${path}: not a regular file (give a report file that migrate wrote)`);
  }
}

async function run(argv: string[]): Promise<number> {
  const command = await readCommandLine('verify', argv, usage, { first: checkVerify });
  if (typeof command === 'number') return command;
  const parsed = command.flags;
  const { sample, shard } = parsed;
  const log = (line: string): void => void process.stderr.write(`verify: ${line}\n`);
  let backend: AnyBackend | undefined;
  let decoder;
  try {
    backend = await command.definition.open(command.values, { command: 'verify', concurrency: 2, log });
    decoder = await openDecoder({
      sidecar: command.decoder.sidecar,
      maxInFlightBatches: 2,
      workers: command.decoder.workers,
      tls: command.decoder.tls,
      decodeLimits: command.decoder.limits,
    });
    if (parsed.complete) {
      let reportPaths = parsed.reports;
      if (reportPaths === undefined) {
        const path = defaultReportPath(reportKind(command.definition.kind, command.values.field), shard);
        if (existsSync(path)) {
          reportPaths = [path];
        } else {
          log(`no report at ${path} (migrate's default for shard ${shardName(shard)}): a record without its write counts as not reported; give --report PATH`);
          reportPaths = [];
        }
      }
      const summary = await runVerifyComplete({
        backend,
        openStream: streamOpener(decoder, backend.answers),
        format: command.decoder.format,
        shard,
        reportPaths,
        progress: new StreamProgress(process.stderr),
        log,
        onFinding: (f) => {
          process.stdout.write(
            JSON.stringify({ ...f.fields, class: f.class, stored: f.stored, ...(f.kind === undefined ? {} : { kind: f.kind }), detail: f.detail }) + '\n',
          );
        },
      });
      process.stderr.write(formatCompleteSummary(summary) + '\n');
      return completeExitStatus(summary);
    }
    const summary = await runVerify({ backend, openStream: streamOpener(decoder, backend.answers), format: command.decoder.format, sample });
    for (const m of summary.mismatches) {
      process.stdout.write(JSON.stringify({ ...m.fields, stored: m.stored, kind: m.kind, detail: m.detail }) + '\n');
    }
    const outcome = sampleOutcome(backend.name, summary);
    process.stderr.write(outcome.message + '\n');
    return outcome.status;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`mim-sender-jid verify: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`mim-sender-jid verify: failed: ${describeFailure(error)}\n`);
    return 1;
  } finally {
    await decoder?.close().catch(() => {});
    await backend?.close().catch(() => {});
  }
}

const verify: Subcommand = {
  summary: 're-decode a sample of migrated records (or, with --complete, walk every record) and report what is wrong or missing',
  run,
};
export default verify;
