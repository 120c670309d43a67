/**
 * scanPage, the walk of `verify --complete` on Riak: every object of every bucket, written or
 * not, exactly once, in pages small enough to cross every boundary, by both listings; a written
 * object is the verify sample verifyAnswer judges right.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { WHOLE_TABLE } from '../../clients/pipeline/types.js';
import { inProcessExtract, openInProcessStream } from '../support/in-process-stream.js';
import type { RiakDouble } from '../support/riak-double.js';
import { makeArchive, openBackend, startLoadedDouble } from './fixture.js';

const SEED = Number(process.env.RIAK_TEST_SEED ?? 20261206);
console.log(`riak scanPage suite: seed ${SEED} (set RIAK_TEST_SEED to replay)`);

describe('riak scanPage', () => {
  let double: RiakDouble;
  before(async () => {
    double = await startLoadedDouble(await makeArchive(300, SEED), { seed: SEED, keysPerChunk: 7 });
    // Half done: some objects written, the others not.
    const backend = await openBackend({ url: double.url });
    try {
      await runMigration({ backend, openStream: openInProcessStream, report: new MemoryReport(), batchSize: 20, concurrency: 2, limit: 150 });
    } finally {
      await backend.close();
    }
  });
  after(async () => {
    await double?.stop();
  });

  for (const listing of ['stream', '2i']) {
    it(`${listing}: every object exactly once, written or not as the store says`, async () => {
      const backend = await openBackend({ url: double.url, listing });
      try {
        assert.match(backend.noAccountingReason, /full scan.*verify riak --complete/);
        const seen = new Map<string, boolean>();
        let judged = 0;
        for (const partition of await backend.partitions(WHOLE_TABLE)) {
          let cursor = null;
          for (;;) {
            const page = await backend.scanPage(partition, cursor, { records: 6, bytes: 1 << 20 });
            for (const record of page.records) {
              const id = JSON.stringify(backend.describeKey(record.key));
              assert.ok(!seen.has(id), `${id} scanned twice`);
              seen.set(id, record.written);
              if (record.written) {
                const [answer] = inProcessExtract([{ key: '0', payload: record.payload }], 'xml');
                assert.equal(backend.verifyAnswer(record, answer), null, id);
                const other = { ...record, key: { ...record.key, stored: { mamType: 'muc', owner: 'nobody@else.example' } } };
                assert.equal(backend.verifyAnswer(other, answer)?.kind, 'different_sender', id);
                judged++;
              } else {
                assert.equal(record.stored, '');
              }
            }
            cursor = page.cursor;
            if (page.end) break;
          }
        }
        const stored = [...double.entries()];
        assert.equal(seen.size, stored.length, 'every object of the store');
        for (const e of stored) {
          const written = e.registers.mam_type !== undefined && e.registers.msg_owner_jid !== undefined;
          assert.equal(seen.get(JSON.stringify({ bucket: e.bucket, key: e.key })), written, `${e.bucket} ${e.key}`);
        }
        assert.ok(judged > 50 && judged < stored.length, `${judged} written of ${stored.length}`);
      } finally {
        await backend.close();
      }
    });
  }
});
