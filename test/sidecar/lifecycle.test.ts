/**
 * What happens around a batch: a deadline, a cancellation (the work stops), a worker that dies
 * (only its batch fails), and a producer faster than the server (flow control).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ExtractItem } from '../../clients/decoder-client/index.js';
import { SidecarClient, decodeAnswers, encodeBatch } from '../../clients/decoder-client/sidecar-client.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { FAULT_WORKER } from '../support/fault-worker.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { assertAnswers, grpcFailure, itemsCounted, metricValue, rawClient, rawStream, rawUnary, waitFor } from './grpc-test-kit.js';
import { asItems, payloadCases } from './payloads.js';

const STALL_MS = 60_000;

describe('deadlines and cancellation', () => {
  let sidecar: RunningSidecar;
  let metrics: string;
  before(async () => {
    sidecar = await startTestSidecar({ metricsListen: '127.0.0.1:0', workerModule: FAULT_WORKER });
    metrics = sidecar.metricsAddress!;
  });
  after(async () => {
    await sidecar?.shutdown(0);
  });

  const stalledBatch = (): Buffer => {
    const ok = payloadCases().compressed[0];
    return encodeBatch([
      { key: 'first', payload: ok.payload },
      { key: 'stall', payload: ok.payload },
    ]);
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
    sidecar = await startTestSidecar({ poolSize: 2, workerModule: FAULT_WORKER });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('fails only its own batch with INTERNAL; other batches and later calls are answered', async () => {
    const cases = payloadCases();
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    try {
      const good = asItems(cases.compressed);
      const crashing: ExtractItem[] = [
        { key: 'ok', payload: cases.compressed[0].payload },
        { key: 'crash', payload: cases.compressed[0].payload },
      ];
      const [dead, ...alive] = await Promise.allSettled([client.extract(crashing), client.extract(good), client.extract(good)]);
      assert.equal(dead.status, 'rejected');
      const error = (dead as PromiseRejectedResult).reason as grpc.ServiceError;
      assert.equal(error.code, grpc.status.INTERNAL);
      assert.match(error.details, /worker .*died/);
      for (const other of alive) {
        assert.equal(other.status, 'fulfilled');
        assertAnswers(
          (other as PromiseFulfilledResult<Awaited<ReturnType<typeof client.extract>>>).value,
          cases.compressed,
          good.map((i) => i.key),
        );
      }
      // Twice more, to show the dead workers were replaced.
      for (let round = 0; round < 2; round++) {
        assert.equal((await grpcFailure(client.extract(crashing))).code, grpc.status.INTERNAL);
        assertAnswers(
          await client.extract(good),
          cases.compressed,
          good.map((i) => i.key),
        );
      }
      // On a stream, the batch's failure ends the stream with INTERNAL.
      const stream = client.openStream();
      assertAnswers(
        await stream.extract(good),
        cases.compressed,
        good.map((i) => i.key),
      );
      assert.equal((await grpcFailure(stream.extract(crashing))).code, grpc.status.INTERNAL);
      await assert.rejects(stream.end());
      assertAnswers(
        await client.extract(good),
        cases.compressed,
        good.map((i) => i.key),
      );
    } finally {
      client.close();
    }
  });
});

/**
 * A batch that holds the only worker until the test cancels its call: with it, batches of the call
 * under test stay queued for as long as the test looks at them (no time window to race), and the
 * test lets them through by cancelling, which frees the worker at once ('stops the work of a
 * cancelled call' above).
 */
function holdTheWorker(address: string): { readonly release: () => Promise<void> } {
  const ok = payloadCases().compressed[0];
  const client = rawClient(address);
  const call = rawUnary(client, encodeBatch([{ key: 'stall', payload: ok.payload }]));
  return {
    release: async () => {
      call.call.cancel();
      assert.equal((await grpcFailure(call.result)).code, grpc.status.CANCELLED);
      client.close();
    },
  };
}

describe('stream flow control', () => {
  const WINDOW = 2;
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({
      metricsListen: '127.0.0.1:0',
      streamWindowBatches: WINDOW,
      workerModule: FAULT_WORKER,
    });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('a producer that never reads answers is held back; the server keeps exactly its window in work', async () => {
    const metrics = sidecar.metricsAddress!;
    const inWork = async (): Promise<number> =>
      (await metricValue(metrics, 'mim_sender_jid_busy_workers')) + (await metricValue(metrics, 'mim_sender_jid_queue_depth'));
    const cases = payloadCases();
    const batchCases = Array.from({ length: 200 }, (_, i) => cases.compressed[i % cases.compressed.length]);
    // The only worker is held by another call: every batch the server takes from the stream waits
    // in the queue, where the metrics see it, until the test lets the worker go.
    const holder = holdTheWorker(sidecar.address);
    await waitFor('the worker to be held', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 1);
    const client = rawClient(sidecar.address);
    const BATCHES = 400;
    let released = false;
    try {
      const stream = rawStream(client);
      stream.on('error', () => {});
      stream.pause(); // the producer does not read answers (yet)
      let written = 0;
      let backpressured = false;
      // Write as fast as grpc lets us, never waiting for answers, until a write is refused.
      while (written < BATCHES) {
        const keys = batchCases.map((_, i) => `b${written}-i${i}`);
        const accepted = stream.write(encodeBatch(batchCases.map((c, i) => ({ key: keys[i], payload: c.payload, format: c.format }))));
        written++;
        if (!accepted) {
          backpressured = true;
          break;
        }
      }
      assert.ok(backpressured, `all ${BATCHES} batches were taken without backpressure: the server read ahead without bound`);
      assert.ok(written > WINDOW, `only ${written} batches written`);
      // The lower bound: the server does take its window from the stream (1 is the holder's batch)...
      await waitFor(`${WINDOW} batches of the stream in work`, async () => (await inWork()) === 1 + WINDOW);
      // ...and not one more, although many more were written.
      let most = 0;
      for (let i = 0; i < 20; i++) {
        most = Math.max(most, await inWork());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(most, 1 + WINDOW, `batches in work besides the holder's: window ${WINDOW}`);
      // Let the worker go, then read: every answer arrives, in order.
      await holder.release();
      released = true;
      const answers: Buffer[] = [];
      stream.on('data', (answer: Buffer) => answers.push(answer));
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.resume();
      stream.end();
      assert.equal((await status).code, grpc.status.OK);
      assert.equal(answers.length, written);
      answers.forEach((answer, b) => {
        const keys = batchCases.map((_, i) => `b${b}-i${i}`);
        assertAnswers(
          decodeAnswers(
            keys.map((key) => ({ key })),
            answer,
          ),
          batchCases,
          keys,
        );
      });
    } finally {
      if (!released) await holder.release().catch(() => {});
      client.close();
    }
  });
});

describe('client stream bound', () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({ metricsListen: '127.0.0.1:0', streamWindowBatches: 4, workerModule: FAULT_WORKER });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('keeps at most maxInFlightBatches unanswered, although the server would take more', async () => {
    const metrics = sidecar.metricsAddress!;
    const inWork = async (): Promise<number> =>
      (await metricValue(metrics, 'mim_sender_jid_busy_workers')) + (await metricValue(metrics, 'mim_sender_jid_queue_depth'));
    const ok = payloadCases().compressed[0];
    // Another call holds the only worker until released: the stream's batches wait in the queue.
    const holder = holdTheWorker(sidecar.address);
    await waitFor('the worker to be held', async () => (await metricValue(metrics, 'mim_sender_jid_busy_workers')) === 1);
    const client = new SidecarClient({ address: sidecar.address, maxInFlightBatches: 2 });
    let released = false;
    try {
      const stream = client.openStream();
      // The server would take four batches of the stream (its window); the client sends two, not five.
      const pending = ['b1', 'b2', 'b3', 'b4', 'b5'].map((key) => stream.extract([{ key, payload: ok.payload }]));
      await waitFor('two batches of the stream in work', async () => (await inWork()) === 1 + 2);
      let most = 0;
      for (let i = 0; i < 15; i++) {
        most = Math.max(most, await inWork());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(most, 1 + 2, "batches of the stream in work (besides the holder's) while the worker is held");
      await holder.release();
      released = true;
      const answers = await Promise.all(pending);
      assert.deepEqual(
        answers.map((results) => results.map((r) => r.key)),
        [['b1'], ['b2'], ['b3'], ['b4'], ['b5']],
      );
      assert.ok(answers.every((results) => results[0].ok));
      await stream.end();
    } finally {
      if (!released) await holder.release().catch(() => {});
      client.close();
    }
  });
});
