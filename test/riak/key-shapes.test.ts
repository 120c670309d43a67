/**
 * Key shapes no fixed test picks: generated Riak keys with `/`, `%`, spaces, quotes, Unicode
 * (astral planes included) and very long parts, in buckets of one object and of many, migrated
 * through the real pipeline and the double's HTTP API (keys URL-encoded, `%2F` kept inside its
 * segment), listed both ways, with pages small enough to cross every boundary. Every object ends
 * written right or reported; scanPage then sees every object, each once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryReport } from '../../clients/pipeline/report.js';
import { runMigration } from '../../clients/pipeline/run-migration.js';
import { WHOLE_TABLE } from '../../clients/pipeline/types.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { openInProcessStream } from '../support/in-process-stream.js';
import { openBackend, startLoadedDouble } from './fixture.js';

const SEED = fuzzSeed('RIAK_KEY_SHAPES_SEED', 'riak key shapes property');

const piece = fc.oneof(
  fc.constantFrom('/', '%', '%2F', ' ', '"', "'", '+', '?', '#', '&', '=', '\\', '..', 'ż', 'ß', '𝄞', '😀', '\u202e', 'a@b'),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);
const part = fc.array(piece, { minLength: 1, maxLength: 6 }).map((p) => p.join(''));
const longPart = fc.integer({ min: 200, max: 2000 }).map((n) => 'x/%é'.repeat(Math.ceil(n / 4)).slice(0, n));
const keyArb = fc
  .tuple(fc.oneof(part, longPart), fc.oneof(part, longPart), fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }))
  .map(([local, nick, id]) => `${local}/${nick}/${id}`)
  .filter((k) => !k.includes('\u0000'));

const packet = (n: number): string =>
  `<message from='room@muc.example.com/nick${n}' to='bob@example.com' type='groupchat'><body>m${n}</body>` +
  `<x xmlns='http://jabber.org/protocol/muc#user'><item jid='sender${n}@example.com/res'/></x></message>`;

describe('riak: generated key shapes, migrated through the double', () => {
  it('every object written right or reported, whatever its key; scanPage sees each once', { timeout: 110_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), keyArb), { minLength: 1, maxLength: 40 }),
        fc.constantFrom('stream', '2i'),
        fc.integer({ min: 1, max: 7 }),
        async (objects, listing, batchSize) => {
          const double = await startLoadedDouble(null, { seed: SEED, keysPerChunk: 3 });
          try {
            const placed = new Map<string, number>();
            objects.forEach(([bucket, key], n) => {
              // Bucket 0 holds one object at most: buckets of one and of many.
              const name = bucket === 0 && [...placed.keys()].some((k) => k.startsWith('mam_2020_1 ')) ? 'mam_2020_2' : `mam_2020_${bucket + 1}`;
              const id = `${name} ${key}`;
              if (placed.has(id)) return;
              placed.set(id, n);
              double.putMap(name, key, { packet: packet(n), msg_id: '1', source_jid: 'room@muc.example.com/x' });
            });
            const backend = await openBackend({ url: double.url, listing });
            const report = new MemoryReport();
            try {
              const summary = await runMigration({
                backend,
                openStream: openInProcessStream,
                report,
                batchSize,
                concurrency: 2,
                backoff: { baseMs: 5, maxMs: 50 },
              });
              assert.equal(summary.reachedEnd, true);
              assert.equal(report.rows.length, 0, JSON.stringify(report.rows.slice(0, 2)));
              for (const [id, n] of placed) {
                const space = id.indexOf(' ');
                const stored = double.getMap(id.slice(0, space), id.slice(space + 1));
                assert.deepEqual({ t: stored?.mam_type, o: stored?.msg_owner_jid }, { t: 'muc', o: `sender${n}@example.com` }, id);
              }
              assert.equal(summary.written, placed.size);
              const scanned = new Set<string>();
              for (const partition of await backend.partitions(WHOLE_TABLE)) {
                let cursor = null;
                for (;;) {
                  const page = await backend.scanPage(partition, cursor, { records: batchSize, bytes: 1 << 20 });
                  for (const r of page.records) {
                    const id = `${r.key.bucket} ${r.key.key}`;
                    assert.ok(!scanned.has(id) && r.written, id);
                    scanned.add(id);
                  }
                  cursor = page.cursor;
                  if (page.end) break;
                }
              }
              assert.equal(scanned.size, placed.size);
            } finally {
              await backend.close();
            }
          } finally {
            await double.stop();
          }
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });
});
