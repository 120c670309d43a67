/**
 * The two decoding paths of openDecoder(): the in-process pool and a remote sidecar over gRPC
 * (here on loopback). Same Erlang-made payloads, same answers; batches of any size (25,000 items,
 * over 64 MiB) are cut into requests and answered in order on both.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDecoder, type Decoder, type ExtractItem, type ExtractResult } from '../../clients/decoder-client/index.js';
import { DEFAULT_MAX_ITEMS_PER_BATCH, DEFAULT_MAX_REQUEST_BYTES } from '../../services/sidecar/config.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { erlangCases, erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { assertMatchesErlang, itemsOf, streamRequests } from './decode-paths.js';

describe('decoder client: in-process pool and remote sidecar', () => {
  let sidecar: RunningSidecar;
  let inProcess: Decoder;
  let remote: Decoder;
  let records: PayloadRecord[];

  before(async () => {
    records = [...erlangCases(), ...erlangRandomMessages(400, 20_250)];
    sidecar = await startTestSidecar({ metricsListen: '127.0.0.1:0', poolSize: 2 });
    inProcess = await openDecoder({ maxInFlightBatches: 4, workers: 2 });
    remote = await openDecoder({ sidecar: sidecar.address, maxInFlightBatches: 4 });
  });
  after(async () => {
    await inProcess?.close();
    await remote?.close();
    await sidecar?.shutdown(1_000);
  });

  /** Extracts the same items on both paths, each on a fresh stream. */
  async function onBoth(items: ExtractItem[]): Promise<{ local: ExtractResult[]; wire: ExtractResult[] }> {
    const localStream = inProcess.openStream('auto');
    const wireStream = remote.openStream('auto');
    const [local, wire] = await Promise.all([localStream.extract(items), wireStream.extract(items)]);
    await Promise.all([localStream.end(), wireStream.end()]);
    return { local, wire };
  }

  it('describes where it decodes', () => {
    assert.match(inProcess.description, /^in-process decoding pool \(2 workers\)$/);
    assert.equal(remote.description, `sidecar at ${sidecar.address}`);
  });

  it('answers Erlang-made payloads the same on both paths, as Erlang does', async () => {
    const items = itemsOf(records, 'same');
    const { local, wire } = await onBoth(items);
    assert.deepEqual(local, wire, 'in-process and remote answers, detail for detail');
    assertMatchesErlang(local, items, records);
    assert.ok(local.some((r) => r.ok) && local.some((r) => !r.ok), 'the cases hold both JIDs and failures');
  });

  it('answers a batch of 25,000 items in order on both paths (cut into requests of at most 10,000)', async () => {
    const random = seededRandom(25_000);
    const picked = Array.from({ length: 25_000 }, () => records[Math.floor(random() * records.length)]);
    const items = itemsOf(picked, 'big');
    assert.ok(items.length > DEFAULT_MAX_ITEMS_PER_BATCH * 2);
    const before = await streamRequests(sidecar.metricsAddress!, 'OK');
    const { local, wire } = await onBoth(items);
    assert.equal((await streamRequests(sidecar.metricsAddress!, 'OK')) - before, 3, 'the sidecar got three requests');
    assertMatchesErlang(local, items, picked);
    assert.deepEqual(wire, local);
  });

  it('answers a batch of over 64 MiB in order on both paths (cut into requests under max-request-bytes)', async () => {
    // Fillers of ~1 MB (under the payload limit, so each is decoded: not a term, malformed)
    // between real messages: an answer in the wrong place shows.
    const filler = new Uint8Array(1_000_000).fill(0x2a);
    const random = seededRandom(64);
    const items: ExtractItem[] = [];
    const expected: (PayloadRecord | null)[] = [];
    let bytes = 0;
    for (let i = 0; bytes <= DEFAULT_MAX_REQUEST_BYTES + 4_000_000; i++) {
      if (i % 4 === 0) {
        items.push({ key: `filler-${i}`, payload: filler, format: 'eterm' });
        expected.push(null);
        bytes += filler.byteLength;
      } else {
        const record = records[Math.floor(random() * records.length)];
        items.push({ key: `real-${i}`, payload: record.payload, format: record.format });
        expected.push(record);
        bytes += record.payload.byteLength;
      }
    }
    assert.ok(bytes > 64 * 1024 * 1024);
    const before = await streamRequests(sidecar.metricsAddress!, 'OK');
    const { local, wire } = await onBoth(items);
    assert.ok((await streamRequests(sidecar.metricsAddress!, 'OK')) - before >= 2, 'the sidecar got the batch in two requests or more');
    assert.deepEqual(wire, local);
    const real = expected.flatMap((record, i) => (record === null ? [] : [i]));
    assertMatchesErlang(
      real.map((i) => local[i]),
      real.map((i) => items[i]),
      real.map((i) => expected[i]!),
    );
    for (let i = 0; i < items.length; i++) {
      if (expected[i] !== null) continue;
      const result = local[i];
      assert.equal(result.key, items[i].key);
      assert.equal(result.ok ? 'jid' : result.code, 'malformed', `filler at ${i}`);
    }
  });

  it('answers an empty batch with no results, and many batches on one stream in order', async () => {
    const stream = inProcess.openStream('auto');
    const wireStream = remote.openStream('auto');
    assert.deepEqual(await stream.extract([]), []);
    assert.deepEqual(await wireStream.extract([]), []);
    const batches = Array.from({ length: 30 }, (_, b) => itemsOf(records.slice(b * 7, b * 7 + 1 + (b % 9)), `b${b}`));
    const [local, wire] = await Promise.all([
      Promise.all(batches.map((batch) => stream.extract(batch))),
      Promise.all(batches.map((batch) => wireStream.extract(batch))),
    ]);
    batches.forEach((batch, b) => assertMatchesErlang(local[b], batch, records.slice(b * 7, b * 7 + batch.length)));
    assert.deepEqual(wire, local);
    await Promise.all([stream.end(), wireStream.end()]);
    await assert.rejects(stream.extract(batches[0]), /after end/);
  });
});
