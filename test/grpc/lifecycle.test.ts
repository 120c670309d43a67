/**
 * What happens around a batch: a deadline, a cancellation (the work stops), a worker that dies
 * (only its batch fails), and a producer faster than the server (flow control).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ExtractItem } from '../../clients/decoder-client/index.js';
import { SidecarClient, decodeAnswers, encodeBatch } from '../../clients/decoder-client/remote-stream.js';
import { startSidecar, type RunningSidecar } from '../../services/sidecar/server.js';
import { assertAnswers, grpcFailure, itemsCounted, metricValue, rawClient, rawStream, rawUnary, waitFor } from './grpc-test-kit.js';
import { asItems, payloadCases } from './payloads.js';

const STALL_MS = 60_000;

describe('deadlines and cancellation', () => {
  let sidecar: RunningSidecar;
  let metrics: string;
  before(async () => {
    sidecar = await startSidecar({
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      logLevel: 'silent',
      poolSize: 1,
      testHooks: { stallWorkerOnKey: 'stall', stallMs: STALL_MS },
    });
    metrics = sidecar.metricsAddress!;
  });
  after(async () => {
    await sidecar?.shutdown(0);
  });

  const stalledBatch = (): Buffer => {
    const ok = payloadCases().compressed[0];
    return encodeBatch([{ key: 'first', payload: ok.payload }, { key: 'stall', payload: ok.payload }]);
  };

  /** The stalled batch would hold the worker for a minute: if it is freed long before, the work was stopped. */
  async function assertWorkStopped(countedBefore: number): Promise<void> {
    await waitFor('the worker to be freed', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 0, STALL_MS / 4);
    assert.equal(await itemsCounted(metrics), countedBefore, 'the abandoned batch was never answered');
    const client = new SidecarClient({ address: sidecar.address });
    try {
      const ok = payloadCases().compressed[0];
      assert.deepEqual(await client.extract([{ key: 'after', payload: ok.payload }]), [
        { key: 'after', ok: true, bareJid: 'alice@example.com', user: 'alice', server: 'example.com' },
      ]);
    } finally {
      client.close();
    }
  }

  it('honours a deadline: DEADLINE_EXCEEDED, and the batch is abandoned', async () => {
    const counted = await itemsCounted(metrics);
    const client = rawClient(sidecar.address);
    try {
      const call = rawUnary(client, stalledBatch(), 300);
      const error = await grpcFailure(call.result);
      assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
      await assertWorkStopped(counted);
    } finally {
      client.close();
    }
  });

  it('stops the work of a cancelled call', async () => {
    const counted = await itemsCounted(metrics);
    const client = rawClient(sidecar.address);
    try {
      const call = rawUnary(client, stalledBatch());
      await waitFor('the batch to be decoding', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 1);
      call.call.cancel();
      assert.equal((await grpcFailure(call.result)).code, grpc.status.CANCELLED);
      await assertWorkStopped(counted);
    } finally {
      client.close();
    }
  });

  it('stops the work of a cancelled stream', async () => {
    const counted = await itemsCounted(metrics);
    const client = rawClient(sidecar.address);
    try {
      const stream = rawStream(client);
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.on('error', () => {});
      stream.write(stalledBatch());
      await waitFor('the batch to be decoding', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 1);
      stream.cancel();
      assert.equal((await status).code, grpc.status.CANCELLED);
      await assertWorkStopped(counted);
    } finally {
      client.close();
    }
  });
});

describe('a worker that dies', () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startSidecar({
      listen: '127.0.0.1:0',
      logLevel: 'silent',
      poolSize: 2,
      testHooks: { crashWorkerOnKey: 'crash' },
    });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('fails only its own batch with INTERNAL; other batches and later calls are answered', async () => {
    const cases = payloadCases();
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    try {
      const good = asItems(cases.compressed);
      const crashing: ExtractItem[] = [{ key: 'ok', payload: cases.compressed[0].payload }, { key: 'crash', payload: cases.compressed[0].payload }];
      const [dead, ...alive] = await Promise.allSettled([client.extract(crashing), client.extract(good), client.extract(good)]);
      assert.equal(dead.status, 'rejected');
      const error = (dead as PromiseRejectedResult).reason as grpc.ServiceError;
      assert.equal(error.code, grpc.status.INTERNAL);
      assert.match(error.details, /worker .*died/);
      for (const other of alive) {
        assert.equal(other.status, 'fulfilled');
        assertAnswers((other as PromiseFulfilledResult<Awaited<ReturnType<typeof client.extract>>>).value, cases.compressed, good.map((i) => i.key));
      }
      // Twice more, to show the dead workers were replaced.
      for (let round = 0; round < 2; round++) {
        assert.equal((await grpcFailure(client.extract(crashing))).code, grpc.status.INTERNAL);
        assertAnswers(await client.extract(good), cases.compressed, good.map((i) => i.key));
      }
      // On a stream, the batch's failure ends the stream with INTERNAL.
      const stream = client.openStream();
      assertAnswers(await stream.extract(good), cases.compressed, good.map((i) => i.key));
      assert.equal((await grpcFailure(stream.extract(crashing))).code, grpc.status.INTERNAL);
      await assert.rejects(stream.end());
      assertAnswers(await client.extract(good), cases.compressed, good.map((i) => i.key));
    } finally {
      client.close();
    }
  });
});

describe('stream flow control', () => {
  const WINDOW = 2;
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startSidecar({
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      logLevel: 'silent',
      poolSize: 2,
      streamWindowBatches: WINDOW,
    });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('a producer that never reads answers is held back; the server keeps at most its window in work', async () => {
    const metrics = sidecar.metricsAddress!;
    const cases = payloadCases();
    const batchCases = Array.from({ length: 200 }, (_, i) => cases.compressed[i % cases.compressed.length]);
    const client = rawClient(sidecar.address);
    const BATCHES = 400;
    try {
      const stream = rawStream(client);
      stream.on('error', () => {});
      stream.pause(); // the producer does not read answers (yet)
      let written = 0;
      let backpressured = false;
      let maxInWork = 0;
      const sample = async (): Promise<void> => {
        const inWork = (await metricValue(metrics, 'mim_sender_jid_busy_workers')) + (await metricValue(metrics, 'mim_sender_jid_queue_depth'));
        maxInWork = Math.max(maxInWork, inWork);
      };
      // Write as fast as grpc lets us, never waiting for answers, until a write is refused.
      while (written < BATCHES) {
        const keys = batchCases.map((_, i) => `b${written}-i${i}`);
        const accepted = stream.write(encodeBatch(batchCases.map((c, i) => ({ key: keys[i], payload: c.payload, format: c.format }))));
        written++;
        if (!accepted) {
          backpressured = true;
          break;
        }
        if (written % 10 === 0) await sample();
      }
      assert.ok(backpressured, `all ${BATCHES} batches were taken without backpressure: the server read ahead without bound`);
      for (let i = 0; i < 20; i++) {
        await sample();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(maxInWork <= WINDOW, `the server had ${maxInWork} batches of one stream in work, window ${WINDOW}`);
      // Now read: every answer arrives, in order.
      const answers: Buffer[] = [];
      stream.on('data', (answer: Buffer) => answers.push(answer));
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.resume();
      stream.end();
      assert.equal((await status).code, grpc.status.OK);
      assert.equal(answers.length, written);
      answers.forEach((answer, b) => {
        const keys = batchCases.map((_, i) => `b${b}-i${i}`);
        assertAnswers(decodeAnswers(keys.map((key) => ({ key })), answer), batchCases, keys);
      });
    } finally {
      client.close();
    }
  });
});

describe('client stream bound', () => {
  const STALL = 3_000; // long enough to be seen under load; the test waits for it once
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startSidecar({
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      logLevel: 'silent',
      poolSize: 1,
      streamWindowBatches: 4,
      testHooks: { stallWorkerOnKey: 'stall', stallMs: STALL },
    });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('keeps at most maxInFlightBatches unanswered, although the server would take more', async () => {
    const metrics = sidecar.metricsAddress!;
    const ok = payloadCases().compressed[0];
    const client = new SidecarClient({ address: sidecar.address, maxInFlightBatches: 2 });
    try {
      const stream = client.openStream();
      // The first batch holds the only worker for a while; the client may send one more, not four.
      const pending = ['stall', 'b1', 'b2', 'b3', 'b4', 'b5'].map((key) => stream.extract([{ key, payload: ok.payload }]));
      const inWork = async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) + (await metricValue(metrics, 'mim_sender_jid_queue_depth'));
      await waitFor('two batches in work', async () => (await inWork()) === 2);
      let most = 0;
      for (let i = 0; i < 15; i++) {
        most = Math.max(most, await inWork());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(most, 2, 'batches of the stream in work while the first one stalls');
      const answers = await Promise.all(pending);
      assert.deepEqual(answers.map((results) => results.map((r) => r.key)), [['stall'], ['b1'], ['b2'], ['b3'], ['b4'], ['b5']]);
      assert.ok(answers.every((results) => results[0].ok));
      await stream.end();
    } finally {
      client.close();
    }
  });
});
