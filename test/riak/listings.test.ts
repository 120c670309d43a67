/**
 * Riak listings answered 503 or cut, on the double (which answers as Riak's webmachine resources
 * do: 503 text/plain from service_available/2 before any chunk; a stream cut by a reset or ended
 * by {"error":"timeout"}): bucket listings are retried like key listings, fetches and updates; a
 * listing cut on every try fails with what was cut; and with 503s everywhere the summary counts
 * what the run did.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { RiakDouble, RiakDoubleOptions } from '../support/riak-double.js';
import { assertArchive, logLines, makeArchive, openBackend, startLoadedDouble, type Archive } from './fixture.js';

const SEED = Number(process.env.RIAK_TEST_SEED ?? 20261205);
console.log(`riak listings suite: seed ${SEED} (set RIAK_TEST_SEED to replay)`);

async function migrate(double: RiakDouble, flags: Record<string, string> = {}) {
  const backend = await openBackend({ url: double.url, 'request-timeout': '10000', ...flags });
  const report = new MemoryReport();
  try {
    const summary = await runMigration({
      backend,
      openStream: openInProcessStream,
      report,
      backoff: { baseMs: 5, maxMs: 50 },
      batchSize: 100,
      concurrency: 3,
      log: (line) => logLines.push(line),
    });
    return { summary, report };
  } finally {
    await backend.close();
  }
}

describe('riak listings answered 503 or cut', () => {
  let archive: Archive;
  before(async () => {
    archive = await makeArchive(600, SEED);
  });
  const doubles: RiakDouble[] = [];
  const start = async (options: Partial<RiakDoubleOptions> = {}): Promise<RiakDouble> => {
    const double = await startLoadedDouble(archive, { seed: SEED, ...options });
    doubles.push(double);
    return double;
  };
  after(async () => {
    await Promise.all(doubles.map((d) => d.stop()));
  });

  it('a bucket listing answered 503, cut, or ended by a timeout is listed again', async () => {
    const double = await start();
    double.failNextListings('buckets', ['503', 'cut', 'timeout', '503']);
    const { summary } = await migrate(double);
    assert.equal(summary.reachedEnd, true);
    assert.equal(double.stats.injectedListing503, 2);
    const { written, untouched } = assertArchive(double, archive);
    assert.equal(summary.written, written);
    assert.equal(summary.reported, untouched);
  });

  it('key listings and $bucket pages answered 503 or cut are retried too', async () => {
    for (const listing of ['stream', '2i']) {
      const double = await start();
      double.failNextListings('keys', ['503', 'cut', 'timeout', '503']);
      const { summary } = await migrate(double, { listing });
      assert.equal(summary.reachedEnd, true, listing);
      assertArchive(double, archive);
    }
  });

  it('a bucket listing cut on every try fails with what was cut, not only "aborted"', async () => {
    const double = await start();
    double.failNextListings('buckets', Array<'cut'>(40).fill('cut'));
    await assert.rejects(migrate(double), (error: Error) => {
      assert.match(error.message, /^listing the buckets of type 'mam_yz': the listing was cut after 1 parts \(\d+ names\): /);
      return true;
    });
    const untouchedEverywhere = [...double.entries()].every((e) => e.registers.mam_type === undefined);
    assert.ok(untouchedEverywhere, 'nothing written');
  });

  it('a key listing cut on every try names its bucket', async () => {
    const double = await start();
    double.failNextListings('keys', Array<'cut'>(400).fill('cut'));
    await assert.rejects(migrate(double), /listing the keys of bucket '[^']+': the listing was cut after 1 parts/);
  });

  it('with 30% of every request answered 503, the summary counts what the run did', async () => {
    const double = await start({ faults: { unavailable: 0.3, listingUnavailable: 0.3 } });
    const { summary } = await migrate(double);
    assert.equal(summary.reachedEnd, true);
    assert.ok(double.stats.injected503 > 100, `${double.stats.injected503} 503s injected`);
    const { written, untouched } = assertArchive(double, archive);
    assert.equal(summary.written, written, `retries ${summary.retries}`);
    assert.equal(summary.reported, untouched);
  });
});
