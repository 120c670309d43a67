/**
 * A remote sidecar started with lower limits than the defaults (`serve --max-items-per-batch 100
 * --max-request-bytes 65536`): the client learns them from the stream's headers and cuts every
 * batch to fit, so no INVALID_ARGUMENT or RESOURCE_EXHAUSTED reaches the caller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDecoder, type Decoder, type ExtractItem } from '../../clients/decoder-client/index.js';
import { planRequests } from '../../clients/decoder-client/request-sizing.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { assertMatchesErlang, itemsOf, streamRequests } from './decode-paths.js';

const MAX_ITEMS = 100;
const MAX_REQUEST_BYTES = 64 * 1024;

describe('limits learned from a remote sidecar', () => {
  let sidecar: SidecarProcess;
  let decoder: Decoder;
  let records: PayloadRecord[];

  before(async () => {
    records = erlangRandomMessages(700, 100);
    sidecar = await startSidecarProcess([
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--pool-size',
      '1',
      '--max-items-per-batch',
      String(MAX_ITEMS),
      '--max-request-bytes',
      String(MAX_REQUEST_BYTES),
    ]);
    decoder = await openDecoder({ sidecar: sidecar.address, maxInFlightBatches: 3 });
  });
  after(async () => {
    await decoder?.close();
    await sidecar?.stop();
  });

  it('cuts batches by items and by bytes to the announced limits; every item is answered, in order', async () => {
    const random = seededRandom(7);
    const picked = Array.from({ length: 3_000 }, () => records[Math.floor(random() * records.length)]);
    const items = itemsOf(picked, 'small');
    const limits = { maxItemsPerBatch: MAX_ITEMS, maxRequestBytes: MAX_REQUEST_BYTES };
    const planned = planRequests(items, limits).length;
    // Some requests end on bytes before they reach 100 items: both limits are at work.
    assert.ok(planned > items.length / MAX_ITEMS, `${planned} requests for ${items.length} items`);

    const stream = decoder.openStream('auto');
    const results = await stream.extract(items);
    await stream.end();
    assertMatchesErlang(results, items, picked);
    const metrics = sidecar.metricsAddress!;
    assert.equal(await streamRequests(metrics, 'OK'), planned, 'the sidecar answered each planned request');
    assert.equal(await streamRequests(metrics, 'INVALID_ARGUMENT'), 0);
  });

  it('answers an item no request can hold as payload_too_large, in its place, without sending it', async () => {
    const metrics = sidecar.metricsAddress!;
    const before = await streamRequests(metrics, 'OK');
    const items: ExtractItem[] = [
      ...itemsOf(records.slice(0, 2), 'a'),
      { key: 'huge', payload: new Uint8Array(MAX_REQUEST_BYTES), format: 'eterm' },
      ...itemsOf(records.slice(2, 4), 'b'),
    ];
    const stream = decoder.openStream('eterm');
    const results = await stream.extract(items);
    await stream.end();
    assert.deepEqual(
      results.map((r) => r.key),
      items.map((i) => i.key),
    );
    const huge = results[2];
    assert.ok(!huge.ok && huge.code === 'payload_too_large', JSON.stringify(huge));
    assert.match(huge.ok ? '' : huge.detail, /max-request-bytes=65536/);
    assertMatchesErlang([...results.slice(0, 2), ...results.slice(3)], [...items.slice(0, 2), ...items.slice(3)], records.slice(0, 4));
    assert.equal((await streamRequests(metrics, 'OK')) - before, 2, 'the items before and after it: two requests');
  });
});
