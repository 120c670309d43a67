/**
 * Several sidecars behind one target, balanced by grpc-js's round_robin: every request is its
 * own unary call, so every sidecar answers a share of them (read from each one's own metrics), in
 * order and right (Erlang's answers); one HOST:PORT still goes over one bidi stream; dns:///
 * goes through grpc-js's resolver. And a sidecar draining after a shutdown gets no new request
 * while the call it still runs finishes: what keeps the requests off it is the GOAWAY of its
 * tryShutdown(), since grpc-js does not watch the health service.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDecoder } from '../../clients/decoder-client/index.js';
import { SidecarClient, encodeBatch } from '../../clients/decoder-client/sidecar-client.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { FAULT_WORKER } from '../support/fault-worker.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { metricValue, rawClient, rawUnary, waitFor } from '../sidecar/grpc-test-kit.js';
import { assertMatchesErlang, itemsOf, streamRequests } from './decode-paths.js';

const BATCHES = 60;
const ITEMS_PER_BATCH = 40;

const unaryOk = (metrics: string): Promise<number> => metricValue(metrics, 'mim_sender_jid_batches_total{rpc="unary",status="OK"}');

function randomBatches(records: readonly PayloadRecord[], seed: number, batches: number): PayloadRecord[][] {
  const random = seededRandom(seed);
  return Array.from({ length: batches }, () => Array.from({ length: ITEMS_PER_BATCH }, () => records[Math.floor(random() * records.length)]));
}

describe('three sidecar processes behind one target', () => {
  let sidecars: SidecarProcess[] = [];
  let records: PayloadRecord[];

  before(async () => {
    records = erlangRandomMessages(300, 31);
    sidecars = await Promise.all([0, 1, 2].map(() => startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '1'])));
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
  });

  it('a list A,B,C: every request a unary call, each sidecar answers a share, answers in order and right', async () => {
    const metrics = sidecars.map((s) => s.metricsAddress!);
    const before = await Promise.all(metrics.map(unaryOk));
    const decoder = await openDecoder({ sidecar: sidecars.map((s) => s.address).join(','), maxInFlightBatches: 6 });
    try {
      assert.match(decoder.description, /^3 sidecars at .* \(round_robin\)$/);
      const stream = decoder.openStream('auto');
      const batches = randomBatches(records, 5, BATCHES);
      const answers = await Promise.all(batches.map((batch, b) => stream.extract(itemsOf(batch, `b${b}`))));
      await stream.end();
      batches.forEach((batch, b) => assertMatchesErlang(answers[b], itemsOf(batch, `b${b}`), batch));
    } finally {
      await decoder.close();
    }
    const taken = (await Promise.all(metrics.map(unaryOk))).map((n, i) => n - before[i]);
    // BATCHES requests and, at start, one probe of each sidecar's limits (the stream then needs
    // none of its own); round_robin takes turns, so each has about a third.
    assert.equal(
      taken.reduce((a, b) => a + b, 0),
      BATCHES + sidecars.length,
      `requests per sidecar: ${taken.join(', ')}`,
    );
    for (const [i, n] of taken.entries()) {
      assert.ok(n >= BATCHES / 6, `sidecar ${i} answered ${n} of ${BATCHES + 1} requests (${taken.join(', ')}): not a share`);
    }
    for (const m of metrics) assert.equal(await streamRequests(m, 'OK'), 0, 'no bidi stream with several sidecars');
  });

  it('one HOST:PORT: the same bidi stream as ever, no unary call', async () => {
    const [one] = sidecars;
    const unaryBefore = await unaryOk(one.metricsAddress!);
    const streamBefore = await streamRequests(one.metricsAddress!, 'OK');
    const decoder = await openDecoder({ sidecar: one.address, maxInFlightBatches: 3 });
    try {
      assert.equal(decoder.description, `sidecar at ${one.address}`);
      const stream = decoder.openStream('auto');
      const batches = randomBatches(records, 6, 5);
      for (const [b, batch] of batches.entries()) assertMatchesErlang(await stream.extract(itemsOf(batch, `s${b}`)), itemsOf(batch, `s${b}`), batch);
      await stream.end();
    } finally {
      await decoder.close();
    }
    assert.equal(await unaryOk(one.metricsAddress!), unaryBefore);
    assert.equal((await streamRequests(one.metricsAddress!, 'OK')) - streamBefore, 5);
  });

  it('dns:///localhost:PORT: grpc-js resolves the name (127.0.0.1 answers; ::1 has nobody) and balances over what connects', async () => {
    const [one] = sidecars;
    const port = one.address.split(':').pop();
    const before = await unaryOk(one.metricsAddress!);
    const decoder = await openDecoder({ sidecar: `dns:///localhost:${port}`, maxInFlightBatches: 2 });
    try {
      const stream = decoder.openStream('auto');
      const [batch] = randomBatches(records, 7, 1);
      assertMatchesErlang(await stream.extract(itemsOf(batch, 'd')), itemsOf(batch, 'd'), batch);
      await stream.end();
    } finally {
      await decoder.close();
    }
    assert.equal((await unaryOk(one.metricsAddress!)) - before, 2, 'the probe and the request, as unary calls');
  });
});

describe('a sidecar draining (shutdown with a call in flight)', () => {
  const STALL_MS = 4_000;
  let sidecars: RunningSidecar[] = [];
  let records: PayloadRecord[];

  before(async () => {
    records = erlangRandomMessages(100, 32);
    sidecars = await Promise.all([0, 1, 2].map(() => startTestSidecar({ metricsListen: '127.0.0.1:0', shutdownGraceMs: 20_000, workerModule: FAULT_WORKER })));
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.shutdown(0)));
  });

  it('gets no new request from a balanced client (GOAWAY, not health), while its call in flight finishes', async () => {
    const metrics = sidecars.map((s) => s.metricsAddress!);
    const client = new SidecarClient({ address: sidecars.map((s) => s.address).join(','), maxInFlightBatches: 6 });
    const draining = sidecars[1];
    const raw = rawClient(draining.address);
    try {
      // Connected to all three: each has answered.
      const stream = client.openStream('auto');
      const warm = randomBatches(records, 1, 12);
      await Promise.all(warm.map((batch, b) => stream.extract(itemsOf(batch, `w${b}`))));
      for (const m of metrics) assert.ok((await unaryOk(m)) > 0);

      // A call that takes STALL_MS on the sidecar about to drain, then its shutdown.
      const ok = records.find((r) => 'jid' in r.expected)!;
      const stalled = rawUnary(raw, encodeBatch([{ key: `stall:${STALL_MS}`, payload: ok.payload, format: ok.format }]));
      await waitFor('the stalled call to be decoding', async () => (await metricValue(metrics[1], 'mim_sender_jid_busy_workers')) === 1);
      const before = await Promise.all(metrics.map(unaryOk));
      const stopped = draining.shutdown();

      // While it drains, every request goes elsewhere, and none fails.
      const batches = randomBatches(records, 2, 30);
      const answers = await Promise.all(batches.map((batch, b) => stream.extract(itemsOf(batch, `d${b}`))));
      batches.forEach((batch, b) => assertMatchesErlang(answers[b], itemsOf(batch, `d${b}`), batch));
      await stream.end();
      const after = await Promise.all(metrics.map(unaryOk));
      assert.equal(after[1], before[1], 'the draining sidecar answered no new request');
      assert.equal(await metricValue(metrics[1], 'mim_sender_jid_calls_in_flight'), 1, 'it still runs the stalled call');
      assert.equal(after[0] - before[0] + after[2] - before[2], 30, 'the two others answered all 30');

      // The call in flight ends normally within the grace period.
      assert.equal((await stalled.result).length > 0, true);
      await stopped;
    } finally {
      raw.close();
      client.close();
    }
  });
});
