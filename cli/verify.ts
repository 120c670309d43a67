/**
 * `mim-sender-jid verify postgres|mysql|mssql --url URL [--sample N]`: re-decodes a random sample
 * of rows that have sender_id and reports every row whose mam_server_user row disagrees.
 */
import { parseArgs } from 'node:util';
import { openBackend } from '../clients/pipeline/open-backend.js';
import { openDecoder } from '../clients/pipeline/open-decoder.js';
import { DEFAULT_VERIFY_SAMPLE, runVerify } from '../clients/pipeline/run-verify.js';
import type { Backend } from '../clients/pipeline/types.js';
import type { Subcommand } from './cli.js';
import { COMMON_OPTIONS, parseCommon, parseCount, UsageError, URL_ENV } from './migrate.js';

const USAGE = `usage: mim-sender-jid verify postgres|mysql|mssql --url URL [--sample N] [--sidecar HOST:PORT] [--format F]

Re-decodes N random rows that have sender_id (default ${DEFAULT_VERIFY_SAMPLE}) and compares the sender in the
payload with the mam_server_user row that sender_id points at. Prints one JSON line per mismatch on
stdout and a summary on stderr; exit status 0 when all match, 3 when any mismatch, 1 on error.
(The sample is drawn with ORDER BY random(): a full scan of the rows with sender_id.)

  --url URL            database URL (or env ${URL_ENV})
  --sample N           rows to check (default ${DEFAULT_VERIFY_SAMPLE})
  --sidecar HOST:PORT  decode with a running sidecar; default: one started in this process
  --format F           eterm (default), xml, auto`;

async function run(argv: string[]): Promise<number> {
  let common;
  let sample: number;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...COMMON_OPTIONS, sample: { type: 'string' } },
    });
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    common = parseCommon(positionals, values);
    sample = parseCount('sample', values.sample) ?? DEFAULT_VERIFY_SAMPLE;
  } catch (error) {
    if (!(error instanceof UsageError) && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    process.stderr.write(`mim-sender-jid verify: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let backend: Backend | undefined;
  let decoder;
  try {
    backend = await openBackend(common.kind, common.url, 2);
    decoder = await openDecoder({ sidecar: common.sidecar, maxInFlightBatches: 2, workers: common.workers, tls: common.tls });
    const summary = await runVerify({ backend, openStream: decoder.openStream, format: common.format, sample });
    for (const m of summary.mismatches) {
      process.stdout.write(JSON.stringify({ room_id: m.key.roomId, id: m.key.id, sender_id: m.senderId, kind: m.kind, detail: m.detail }) + '\n');
    }
    process.stderr.write(
      `verify ${common.kind}: ${summary.checked} rows checked, ${summary.matching} match, ${summary.mismatches.length} mismatch${summary.mismatches.length === 1 ? '' : 'es'}\n`,
    );
    return summary.mismatches.length === 0 ? 0 : 3;
  } catch (error) {
    process.stderr.write(`mim-sender-jid verify: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await decoder?.close().catch(() => {});
    await backend?.close().catch(() => {});
  }
}

const verify: Subcommand = {
  summary: 're-decode a sample of migrated rows and report mismatches with mam_server_user',
  run,
};
export default verify;
