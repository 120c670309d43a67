/**
 * The Riak backend through the real pipeline (runMigration, in-process decoding) against the Riak
 * double: every object of an Erlang-made archive afterwards, both listing modes, failures
 * injected, resume, dry run, verify, the schema step, the Erlang-term refusal, security.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PacketFormatError } from '../../clients/backends/riak/riak-backend.js';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration, SchemaNotReadyError } from '../../clients/pipeline/run-migration.js';
import { runVerify } from '../../clients/pipeline/run-verify.js';
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import type { RiakDouble } from '../support/riak-double.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import {
  SCHEMA_33,
  SCHEMA_34,
  assertArchive,
  logLines,
  makeArchive,
  openBackend,
  startLoadedDouble,
  tempFiles,
  type Archive,
  type TempFiles,
} from './fixture.js';

const SEED = Number(process.env.RIAK_TEST_SEED ?? 20240611);
console.log(`riak migrate suite: seed ${SEED} (set RIAK_TEST_SEED to replay)`);

const FAST_BACKOFF = { baseMs: 5, maxMs: 50 };

async function migrate(
  double: RiakDouble,
  flags: Record<string, string | boolean> = {},
  options: { dryRun?: boolean; limit?: number; applySchema?: boolean; batchSize?: number } = {},
) {
  const backend = await openBackend({ url: double.url, 'request-timeout': '10000', ...flags });
  const report = new MemoryReport();
  try {
    const summary = await runMigration({
      backend,
      openStream: openInProcessStream,
      report,
      backoff: FAST_BACKOFF,
      batchSize: options.batchSize ?? 200,
      concurrency: 3,
      log: (line) => logLines.push(line),
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.applySchema ? { applySchema: true } : {}),
    });
    return { summary, report };
  } finally {
    await backend.close();
  }
}

describe('riak backfill through the pipeline', () => {
  let archive: Archive;
  let files: TempFiles;

  before(async () => {
    archive = await makeArchive(2000, SEED);
    files = tempFiles();
    const kinds = new Set(archive.objects.map((o) => o.kind));
    for (const kind of ['muc', 'muc_light', 'muc_slash_nick', 'chat', 'pm_groupchat_copy', 'no_jid', 'two_items', 'truncated', 'jid_without_user']) {
      assert.ok(kinds.has(kind), `the archive holds ${kind} objects`);
    }
    assert.ok(new Set(archive.objects.map((o) => o.bucket)).size >= 5, 'several ISO-week buckets');
  });
  after(() => files.remove());

  it('writes every object as the guide says, reports the rest with bucket and key, and a re-run changes nothing', async () => {
    const double = await startLoadedDouble(archive, { seed: SEED });
    try {
      const first = await migrate(double);
      const { written, untouched } = assertArchive(double, archive);
      assert.ok(written > 1500 && untouched > 100, `${written} written, ${untouched} untouched`);
      assert.equal(first.summary.reachedEnd, true);
      const reported = new Set(first.report.rows.map((r) => `${r.fields.bucket} ${r.fields.key}`));
      assert.equal(reported.size, untouched);
      if (first.summary.retries === 0) {
        // A retried partition walks its listing again: objects in flight then may be written or reported twice.
        assert.equal(first.summary.written, written);
        assert.equal(first.report.rows.length, untouched);
      } else {
        console.log(`riak: the first run retried ${first.summary.retries} times: ${logLines.filter((l) => /retry/.test(l)).join(' | ')}`);
      }
      archive.objects.forEach((o, i) => {
        assert.equal(reported.has(`${o.bucket} ${o.key}`), !('write' in archive.expected[i]), `${o.key} reported iff untouched`);
      });
      const updates = double.stats.updates;
      const second = await migrate(double);
      assert.equal(second.summary.written, 0);
      assert.equal(double.stats.updates, updates, 'a run after the end sends no update');
      assert.equal(second.report.rows.length, untouched, 'the undecodable ones are reported again');
      const backend = await openBackend({ url: double.url });
      try {
        const verify = await runVerify({ backend, openStream: openInProcessStream, sample: 200 });
        assert.equal(verify.checked, 200);
        assert.deepEqual(verify.mismatches, []);
      } finally {
        await backend.close();
      }
    } finally {
      await double.stop();
    }
  });

  it('ends in the same state through $bucket pages, with 503s, slow answers, resets and broken listings on the way', async () => {
    for (const listing of ['2i', 'stream']) {
      const double = await startLoadedDouble(archive, {
        seed: SEED + 1,
        keysPerChunk: 40,
        faults: { unavailable: 0.05, reset: 0.03, slow: 0.02, slowMs: 50, streamReset: 0.3, streamTimeout: 0.3 },
      });
      try {
        const { summary } = await migrate(double, { listing });
        assert.equal(summary.reachedEnd, true);
        assertArchive(double, archive);
        assert.ok(double.stats.injected503 > 0 && double.stats.injectedResets > 0, `${listing}: failures were injected`);
      } finally {
        await double.stop();
      }
    }
  });

  it('a dry run writes nothing; a --limit run writes no more than its limit and the next run finishes', async () => {
    const double = await startLoadedDouble(archive, { seed: SEED + 2 });
    try {
      const dry = await migrate(double, {}, { dryRun: true });
      assert.equal(double.stats.updates, 0);
      assert.ok(dry.summary.written > 1500);
      const limited = await migrate(double, {}, { limit: 300 });
      assert.ok(double.stats.updates > 0 && double.stats.updates <= 300, `${double.stats.updates} updates`);
      assert.equal(limited.summary.reachedEnd, false);
      await migrate(double);
      assertArchive(double, archive);
    } finally {
      await double.stop();
    }
  });

  it('refuses without the 3.4 schema, and --apply-schema uploads it, reads it back and prints the reload step', async () => {
    const double = await startLoadedDouble(archive, { seed: SEED + 3 }, SCHEMA_33);
    try {
      await assert.rejects(
        migrate(double),
        (e: unknown) => e instanceof SchemaNotReadyError && /mam_type_register/.test(e.message) && /yz_index:reload/.test(e.message),
      );
      assert.equal(double.stats.updates, 0);
      const oldSchema = files.write('old-schema.xml', SCHEMA_33);
      await assert.rejects(migrate(double, { 'apply-schema': oldSchema }, { applySchema: true }), /declares no field/);
      const schemaFile = files.write('mam_search_schema.xml', SCHEMA_34);
      logLines.length = 0;
      await migrate(double, { 'apply-schema': schemaFile }, { applySchema: true });
      assert.equal(double.schema('mam')?.toString('utf8'), SCHEMA_34);
      assert.ok(
        logLines.some((l) => /yz_index:reload\(<<"mam">>\)/.test(l)),
        logLines.join('\n'),
      );
      assertArchive(double, archive);
      const backend = await openBackend({ url: double.url, 'apply-schema': schemaFile });
      try {
        assert.deepEqual(await backend.applySchema(), [`PUT /search/schema/mam < ${schemaFile} (unchanged)`], 'idempotent');
      } finally {
        await backend.close();
      }
    } finally {
      await double.stop();
    }
  });

  it('stops before writing when packets are Erlang terms (db_message_format eterm): Riak cannot render them as JSON', async () => {
    const double = await startLoadedDouble(null, { seed: SEED + 4 });
    try {
      const eterms = erlangRandomMessages(30, SEED).filter((r) => r.format === 'eterm');
      eterms.forEach((r, i) =>
        double.putMap(`mam_2019_${1 + (i % 3)}`, `room@muc.localhost/nick/${1000 + i}`, { packet: r.payload, msg_id: String(1000 + i) }),
      );
      await assert.rejects(migrate(double), (e: unknown) => e instanceof PacketFormatError && /db_message_format/.test(e.message));
      assert.equal(double.stats.updates, 0);
    } finally {
      await double.stop();
    }
  });

  describe('with Riak security on', () => {
    let certs: TestCertificates;
    let double: RiakDouble;
    before(async () => {
      certs = makeTestCertificates();
      double = await startLoadedDouble(
        null,
        {
          seed: SEED + 5,
          security: { username: 'ejabberd', password: 's3cret pass', key: certs.serverKey.pem, cert: certs.serverCert.pem },
        },
        null,
      ); // no schema yet: the HTTPS run uploads it
      for (const o of archive.objects.slice(0, 300)) double.putMap(o.bucket, o.key, { packet: o.packet });
    });
    after(async () => {
      await double.stop();
      certs.remove();
    });

    it('says clearly that plain HTTP is refused with 426', async () => {
      await assert.rejects(migrate(double, { url: double.httpUrl }), /426.*security is enabled.*https/i);
      assert.ok(double.stats.refusedPlainHttp > 0);
    });

    it('works over HTTPS with basic auth, and never prints the password', async () => {
      const passwordFile = files.write('password', 's3cret pass\n');
      const schemaFile = files.write('schema.xml', SCHEMA_34);
      logLines.length = 0;
      const { summary } = await migrate(
        double,
        { username: 'ejabberd', 'password-file': passwordFile, 'tls-ca': certs.ca.path, 'apply-schema': schemaFile },
        { applySchema: true },
      );
      assert.equal(summary.reachedEnd, true);
      assert.ok(summary.written > 200);
      assert.ok(!logLines.join('\n').includes('s3cret'));
      const wrong = files.write('wrong', 'nope');
      await assert.rejects(
        migrate(double, { username: 'ejabberd', 'password-file': wrong, 'tls-ca': certs.ca.path }),
        (e: unknown) => /401/.test((e as Error).message) && !(e as Error).message.includes('nope'),
      );
    });
  });
});
