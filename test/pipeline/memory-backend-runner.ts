/**
 * `node dist/test/pipeline/memory-backend-runner.js DIR MODE [WRITE_DELAY_MS]`: one migration of
 * the memory backend in DIR, through the real pipeline and the in-process decoding pool, as its
 * own process so that a test can kill it with SIGKILL. Prints the summary as one JSON line. The
 * report is DIR/report.jsonl, appended across runs as `migrate` does.
 */
import { join } from 'node:path';
import { openDecoder } from '../../clients/decoder-client/index.js';
import { JsonlReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import type { CheckpointMode } from '../../clients/pipeline/types.js';
import { MemoryBackend } from './memory-backend.js';

const [dir, mode, delay] = process.argv.slice(2);
const backend = new MemoryBackend(dir, mode as CheckpointMode, Number(delay ?? 0));
const decoder = await openDecoder({ maxInFlightBatches: 4, workers: 1 });
const reportPath = join(dir, 'report.jsonl');
const report = new JsonlReport(reportPath, false);
try {
  const summary = await runMigration({ backend, openStream: decoder.openStream, report, reportPath, batchSize: 100, concurrency: 4 });
  process.stdout.write(JSON.stringify(summary) + '\n');
} finally {
  report.close();
  await decoder.close();
}
