/**
 * `mim-sender-jid verify KIND [flags] [--sample N]`: re-decodes a random sample of records that
 * already have their sender and reports every record whose stored sender disagrees.
 */
import { openDecoder } from '../clients/decoder-client/index.js';
import { DEFAULT_VERIFY_SAMPLE, runVerify } from '../clients/pipeline/run-verify.js';
import type { AnyBackend } from '../clients/pipeline/types.js';
import type { Subcommand } from './cli.js';
import { backendList, DECODER_USAGE, describeFailure, parseCount, readCommandLine, UsageError } from './options.js';

async function usage(kind?: string, own?: string): Promise<string> {
  return `usage: mim-sender-jid verify ${kind ?? 'KIND'} [options] [--sample N]

Re-decodes N random records that already have their sender (default ${DEFAULT_VERIFY_SAMPLE}) and compares
the sender in the payload with what the store holds. Prints one JSON line per mismatch on stdout
and a summary on stderr; exit status 0 when all match, 3 when any mismatch, 1 on error.
${kind === undefined ? `\nKIND:\n${await backendList()}\n` : ''}${own ? `\n${kind} options:\n${own}\n` : ''}
  --sample N             records to check (default ${DEFAULT_VERIFY_SAMPLE})
${DECODER_USAGE}`;
}

async function run(argv: string[]): Promise<number> {
  const parsed = await readCommandLine('verify', argv, { sample: { type: 'string' } }, usage, (command) => ({
    command,
    sample: parseCount('sample', command.values.sample) ?? DEFAULT_VERIFY_SAMPLE,
  }));
  if (typeof parsed === 'number') return parsed;
  const { command, sample } = parsed;
  let backend: AnyBackend | undefined;
  let decoder;
  try {
    backend = await command.definition.open(command.values, { command: 'verify', concurrency: 2, log: (line) => void process.stderr.write(`verify: ${line}\n`) });
    decoder = await openDecoder({ sidecar: command.decoder.sidecar, maxInFlightBatches: 2, workers: command.decoder.workers, tls: command.decoder.tls, decodeLimits: command.decoder.limits });
    const summary = await runVerify({ backend, openStream: decoder.openStream, format: command.decoder.format, sample });
    for (const m of summary.mismatches) {
      process.stdout.write(JSON.stringify({ ...m.fields, stored: m.stored, kind: m.kind, detail: m.detail }) + '\n');
    }
    const n = summary.mismatches.length;
    process.stderr.write(`verify ${backend.name}: ${summary.checked} records checked, ${summary.matching} match, ${n} mismatch${n === 1 ? '' : 'es'}\n`);
    return n === 0 ? 0 : 3;
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
  summary: 're-decode a sample of migrated records and report mismatches with what the store holds',
  run,
};
export default verify;
