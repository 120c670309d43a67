/**
 * Every limit, with the status and message a caller gets; and the bounded queue.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SidecarClient, encodeBatch } from '../../clients/decoder-client/sidecar-client.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { FAULT_WORKER } from '../support/fault-worker.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { grpcFailure, metricValue, rawClient, rawStream, rawUnary, waitFor } from './grpc-test-kit.js';
import { LONG_BODY_CHARS, payloadCases } from './payloads.js';

const MAX_ITEMS = 5;
const MAX_PAYLOAD = 4_096;
const MAX_DECOMPRESSED = 2_000;
const MAX_REQUEST = 64 * 1024;

describe('limits', () => {
  let sidecar: RunningSidecar;
  let client: SidecarClient;

  before(async () => {
    sidecar = await startTestSidecar({
      maxItemsPerBatch: MAX_ITEMS,
      maxPayloadBytes: MAX_PAYLOAD,
      maxDecompressedBytes: MAX_DECOMPRESSED,
      maxRequestBytes: MAX_REQUEST,
    });
    client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
  });
  after(async () => {
    client?.close();
    await sidecar?.shutdown(1_000);
  });

  const longBody = () => {
    const cases = payloadCases();
    const plain = cases.plain.find((c) => c.name.startsWith('long body'))!;
    const compressed = cases.compressed.find((c) => c.name.startsWith('long body'))!;
    assert.ok(plain.payload.length > MAX_PAYLOAD, 'the plain long body is over the payload limit');
    assert.ok(compressed.payload.length < MAX_PAYLOAD, 'the compressed long body is under it');
    assert.ok(LONG_BODY_CHARS > MAX_DECOMPRESSED, 'and inflates past the decompression limit');
    return { plain, compressed };
  };

  it('items per batch: over the limit is INVALID_ARGUMENT naming the limit; at the limit is fine', async () => {
    const ok = payloadCases().compressed[0];
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ key: String(i), payload: ok.payload }));
    assert.equal((await client.extract(items(MAX_ITEMS))).length, MAX_ITEMS);
    const error = await grpcFailure(client.extract(items(MAX_ITEMS + 1)));
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, /max-items-per-batch=5/);
    assert.match(error.details, /6 items/);
    // The same on a raw stream: the stream ends with the status.
    const raw = rawClient(sidecar.address);
    try {
      const call = rawStream(raw);
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => {});
      call.write(encodeBatch(items(MAX_ITEMS + 1)));
      call.end();
      const streamStatus = await status;
      assert.equal(streamStatus.code, grpc.status.INVALID_ARGUMENT);
      assert.match(streamStatus.details, /max-items-per-batch/);
    } finally {
      raw.close();
    }
    // The client's stream learns the limit from the stream's headers and cuts the batch to fit.
    const stream = client.openStream();
    const answered = await stream.extract(items(MAX_ITEMS + 1));
    assert.deepEqual(
      answered.map((r) => r.key),
      items(MAX_ITEMS + 1).map((i) => i.key),
    );
    await stream.end();
  });

  it('bytes per payload and decompressed size: that item fails with PAYLOAD_TOO_LARGE, the batch goes on', async () => {
    const { plain, compressed } = longBody();
    const fine = payloadCases().compressed[0];
    const results = await client.extract([
      { key: 'big', payload: plain.payload, format: 'eterm' },
      { key: 'fine', payload: fine.payload },
      { key: 'inflates', payload: compressed.payload },
    ]);
    assert.deepEqual(
      results.map((r) => [r.key, r.ok ? r.bareJid : r.code]),
      [
        ['big', 'payload_too_large'],
        ['fine', 'alice@example.com'],
        ['inflates', 'payload_too_large'],
      ],
    );
    // Each failure names the limit it hit, by its value.
    const detail = (key: string) => results.find((r) => r.key === key && !r.ok) as { detail: string };
    assert.match(detail('big').detail, new RegExp(String(MAX_PAYLOAD)));
    assert.match(detail('inflates').detail, new RegExp(String(MAX_DECOMPRESSED)));
  });

  it('request size: over the limit is RESOURCE_EXHAUSTED with the limit in the message', async () => {
    const filler = new Uint8Array(MAX_PAYLOAD - 100);
    const items = Array.from({ length: MAX_ITEMS }, (_, i) => ({ key: String(i), payload: filler }));
    const request = encodeBatch(items);
    assert.ok(request.length < MAX_REQUEST);
    const underLimit = await client.extract(items);
    assert.equal(underLimit.length, MAX_ITEMS);
    const tooBig = Array.from({ length: 3 }, (_, i) => ({ key: String(i), payload: new Uint8Array(MAX_REQUEST / 2) }));
    const error = await grpcFailure(client.extract(tooBig));
    assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(error.details, new RegExp(String(MAX_REQUEST)));
  });
});

describe('bounded queue', () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({ metricsListen: '127.0.0.1:0', maxQueuedBatches: 1, workerModule: FAULT_WORKER });
  });
  after(async () => {
    await sidecar?.shutdown(0);
  });

  it('is RESOURCE_EXHAUSTED at once when every worker is busy and the queue is full', async () => {
    const metrics = sidecar.metricsAddress!;
    const client = rawClient(sidecar.address);
    const ok = payloadCases().compressed[0];
    try {
      const stalled = rawUnary(client, encodeBatch([{ key: 'stall', payload: ok.payload }]));
      await waitFor('the stalled batch to occupy the only worker', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 1);
      const queued = rawUnary(client, encodeBatch([{ key: 'queued', payload: ok.payload }]));
      await waitFor('a batch in the queue', async () => (await metricValue(metrics, 'mim_sender_jid_queue_depth')) === 1);
      const refused = rawUnary(client, encodeBatch([{ key: 'refused', payload: ok.payload }]));
      const error = await grpcFailure(refused.result);
      assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(error.details, /max-queued-batches=1/);
      // Cancelling the stalled call frees the worker: the queued one is then answered.
      stalled.call.cancel();
      assert.equal((await grpcFailure(stalled.result)).code, grpc.status.CANCELLED);
      const answered = await queued.result;
      assert.ok(answered.length > 0);
    } finally {
      client.close();
    }
  });
});
