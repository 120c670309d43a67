/**
 * `node dist/test/pipeline/memory-backend-runner.js DIR MODE [WRITE_DELAY_MS [DROP]]`: one
 * migration of the memory backend in DIR, through the real pipeline and the in-process decoding
 * pool, as its own process so that a test can kill it with SIGKILL. Prints the summary as one JSON
 * line, the summary's text on stderr, and exits with `migrate`'s status for it. The report is
 * DIR/report.jsonl, appended across runs as `migrate` does. DROP (`p:i`): a record the walk
 * passes over, as a faulty page query would.
 */
import { join } from 'node:path';
import { openDecoder } from '../../clients/decoder-client/index.js';
import { JsonlReport } from '../../clients/pipeline/report.js';
import { formatSummary, migrationExitStatus, runMigration } from '../../clients/pipeline/run-migration.js';
import type { CheckpointMode } from '../../clients/pipeline/types.js';
import { MemoryBackend } from './memory-backend.js';

const [dir, mode, delay, drop] = process.argv.slice(2);
const backend = new MemoryBackend(dir, mode as CheckpointMode, Number(delay ?? 0));
if (drop !== undefined) backend.dropFromWalk = drop;
const decoder = await openDecoder({ maxInFlightBatches: 4, workers: 1 });
const reportPath = join(dir, 'report.jsonl');
const report = new JsonlReport(reportPath, false);
try {
  const summary = await runMigration({ backend, openStream: decoder.openStream, report, reportPath, batchSize: 100, concurrency: 4 });
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.stderr.write(formatSummary(summary, reportPath) + '\n');
  process.exitCode = migrationExitStatus(summary);
} finally {
  report.close();
  await decoder.close();
}
