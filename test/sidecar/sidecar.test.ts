/**
 * The sidecar over a real socket: unary and stream, order and keys, formats, every error code,
 * the client's retries across a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SidecarClient, type ExtractItem } from '../../clients/decoder-client/index.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { assertAnswers, grpcFailure, rawClient, rawUnary } from './grpc-test-kit.js';
import { TRUNCATED_TERM, asItems, payloadCases, type Case } from './payloads.js';

describe('SenderJidService', () => {
  let sidecar: RunningSidecar;
  let client: SidecarClient;
  let all: Case[];

  before(async () => {
    const cases = payloadCases();
    all = [...cases.plain, ...cases.compressed, ...cases.xml];
    sidecar = await startTestSidecar({ logLevel: 'warn', poolSize: 2 });
    client = new SidecarClient({ address: sidecar.address });
  });
  after(async () => {
    client?.close();
    await sidecar?.shutdown(1_000);
  });

  it('answers a unary batch: one result per item, in order, keys echoed, every outcome', async () => {
    const items = asItems(all);
    const results = await client.extract(items);
    assertAnswers(
      results,
      all,
      items.map((i) => i.key),
    );
    const codes = new Set<string>(results.map((r) => (r.ok ? 'jid' : r.code)));
    for (const code of ['jid', 'malformed', 'not_groupchat', 'jid_without_local_part', 'jid_without_domain']) {
      assert.ok(codes.has(code), `the batch covers ${code}`);
    }
  });

  it('sniffs the format with AUTO/unspecified: eterm and xml mixed in one batch', async () => {
    const items = asItems(all, false);
    assertAnswers(
      await client.extract(items),
      all,
      items.map((i) => i.key),
    );
    assertAnswers(
      await client.extract(items, 'auto'),
      all,
      items.map((i) => i.key),
    );
  });

  it("lets an item's format override the batch's", async () => {
    const cases = payloadCases();
    const mixed = [cases.compressed[0], cases.xml[0], cases.plain[1]];
    const items: ExtractItem[] = [
      { key: 'a', payload: mixed[0].payload, format: 'eterm' },
      { key: 'b', payload: mixed[1].payload }, // batch format: xml
      { key: 'c', payload: mixed[2].payload, format: 'eterm' },
    ];
    assertAnswers(await client.extract(items, 'xml'), mixed, ['a', 'b', 'c']);
    // The wrong format is a per-item failure, not a failed batch.
    const wrong = await client.extract(
      [
        { key: 'x', payload: cases.xml[0].payload },
        { key: 'y', payload: cases.plain[0].payload, format: 'xml' },
      ],
      'eterm',
    );
    assert.equal(wrong.length, 2);
    assert.deepEqual(
      wrong.map((r) => r.ok),
      [false, false],
    );
    assert.deepEqual(
      wrong.map((r) => (r.ok ? null : r.code)),
      ['malformed', 'malformed'],
    );
  });

  it('answers garbage and empty payloads as malformed, and an empty batch with no results', async () => {
    const results = await client.extract([
      { key: 'truncated', payload: TRUNCATED_TERM },
      { key: 'empty', payload: new Uint8Array(0), format: 'eterm' },
      { key: 'empty-xml', payload: new Uint8Array(0), format: 'xml' },
    ]);
    assert.deepEqual(
      results.map((r) => [r.key, r.ok ? 'jid' : r.code]),
      [
        ['truncated', 'malformed'],
        ['empty', 'malformed'],
        ['empty-xml', 'malformed'],
      ],
    );
    assert.deepEqual(await client.extract([]), []);
  });

  it('refuses bytes that are not an ExtractSenderJidRequest, or unknown formats, with INVALID_ARGUMENT', async () => {
    const raw = rawClient(sidecar.address);
    try {
      // Field 2 (items) claims 100 bytes and has 2.
      const error = await grpcFailure(rawUnary(raw, Buffer.from([0x12, 100, 1, 2])).result);
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(error.details, /not a valid ExtractSenderJidRequest/);
      // A format this version does not know is refused, not guessed: batch field 1 = 9; item field 3 = 7.
      const batchFormat = await grpcFailure(rawUnary(raw, Buffer.from([0x08, 9])).result);
      assert.equal(batchFormat.code, grpc.status.INVALID_ARGUMENT);
      assert.match(batchFormat.details, /unknown PayloadFormat 9 for the batch/);
      const itemFormat = await grpcFailure(rawUnary(raw, Buffer.from([0x12, 5, 0x12, 1, 0x6b, 0x18, 7])).result);
      assert.equal(itemFormat.code, grpc.status.INVALID_ARGUMENT);
      assert.match(itemFormat.details, /unknown PayloadFormat 7 for item 0 \(key "k"\)/);
    } finally {
      raw.close();
    }
  });

  it('echoes keys as given: empty, repeated, unicode', async () => {
    const ok = payloadCases().compressed[0];
    const keys = ['', 'same', 'same', 'ключ-🔑', ''];
    const results = await client.extract(keys.map((key) => ({ key, payload: ok.payload })));
    assert.deepEqual(
      results.map((r) => r.key),
      keys,
    );
    assert.ok(results.every((r) => r.ok && r.bareJid === 'alice@example.com'));
  });

  it('answers a stream of batches in order, with a bounded number in flight', async () => {
    const streamClient = new SidecarClient({ address: sidecar.address, maxInFlightBatches: 3 });
    // Requests written on the stream's call and not answered yet, as the wire sees them.
    let inFlight = 0;
    let mostInFlight = 0;
    let sent = 0;
    const openBidi = streamClient.openBidi.bind(streamClient);
    streamClient.openBidi = () => {
      const call = openBidi();
      const write = call.write.bind(call) as (...args: unknown[]) => boolean;
      call.write = ((...args: unknown[]) => {
        sent++;
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        return write(...args);
      }) as typeof call.write;
      call.on('data', () => inFlight--);
      return call;
    };
    try {
      const stream = streamClient.openStream();
      const batches: { items: ExtractItem[]; cases: Case[] }[] = [];
      for (let b = 0; b < 40; b++) {
        // Batches of different sizes and contents, so that an answer given to the wrong batch shows.
        const cases = all.filter((_, i) => (i + b) % 3 !== 0).slice(0, 1 + (b % all.length));
        batches.push({ cases, items: cases.map((c, i) => ({ key: `b${b}-i${i}`, payload: c.payload, format: c.format })) });
      }
      const answers = await Promise.all(batches.map((batch) => stream.extract(batch.items)));
      answers.forEach((results, b) =>
        assertAnswers(
          results,
          batches[b].cases,
          batches[b].items.map((i) => i.key),
        ),
      );
      await stream.end();
      assert.ok(sent >= batches.length, `every batch sent (${sent} requests)`);
      assert.ok(mostInFlight <= 3, `at most 3 requests in flight, saw ${mostInFlight}`);
    } finally {
      streamClient.close();
    }
  });

  it('end() of a stream waits for every batch asked before it, also those waiting for room', async () => {
    const narrow = new SidecarClient({ address: sidecar.address, maxInFlightBatches: 1 });
    try {
      const stream = narrow.openStream();
      const ok = payloadCases().compressed[0];
      const pending = Array.from({ length: 5 }, (_, i) => stream.extract([{ key: `k${i}`, payload: ok.payload }]));
      await stream.end();
      const settled = await Promise.race([Promise.all(pending), new Promise((resolve) => setImmediate(() => resolve('still pending')))]);
      assert.notEqual(settled, 'still pending');
      assert.deepEqual(
        (settled as Awaited<(typeof pending)[number]>[]).map((results) => results[0].key),
        ['k0', 'k1', 'k2', 'k3', 'k4'],
      );
      await assert.rejects(stream.extract([{ key: 'late', payload: ok.payload }]), /after end/);
    } finally {
      narrow.close();
    }
  });

  it('answers 10,000 items in one batch (the default limit)', async () => {
    const cases = Array.from({ length: 10_000 }, (_, i) => all[i % all.length]);
    const items = cases.map((c, i) => ({ key: String(i), payload: c.payload, format: c.format }));
    assertAnswers(
      await client.extract(items),
      cases,
      items.map((i) => i.key),
    );
  });

  it('retries UNAVAILABLE: a call made while the sidecar is down succeeds once it is back', async () => {
    const first = await startTestSidecar({ logLevel: 'warn' });
    const address = first.address;
    await first.shutdown(0);
    const retrying = new SidecarClient({ address, maxRetries: 8 });
    try {
      const pending = retrying.extract(asItems(all.slice(0, 2)));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const second = await startTestSidecar({ listen: address, logLevel: 'warn' });
      try {
        assertAnswers(
          await pending,
          all.slice(0, 2),
          asItems(all.slice(0, 2)).map((i) => i.key),
        );
      } finally {
        await second.shutdown(1_000);
      }
      // No retries: UNAVAILABLE reaches the caller as the grpc error.
      const impatient = new SidecarClient({ address, maxRetries: 0 });
      const error = await grpcFailure(impatient.extract(asItems(all.slice(0, 1))));
      impatient.close();
      assert.equal(error.code, grpc.status.UNAVAILABLE);
    } finally {
      retrying.close();
    }
  });

  it('reopens a stream cut by a restart and resends what was not answered, in order', async () => {
    const first = await startTestSidecar({ logLevel: 'warn' });
    const address = first.address;
    const streaming = new SidecarClient({ address, maxRetries: 8, maxInFlightBatches: 2 });
    let second: RunningSidecar | null = null;
    try {
      const stream = streaming.openStream();
      const batch = (n: number): ExtractItem[] => asItems(all.slice(0, n)).map((item) => ({ ...item, key: `${n}:${item.key}` }));
      assertAnswers(
        await stream.extract(batch(1)),
        all.slice(0, 1),
        batch(1).map((i) => i.key),
      );
      await first.shutdown(0); // cuts the open stream
      const later = [stream.extract(batch(2)), stream.extract(batch(3))];
      await new Promise((resolve) => setTimeout(resolve, 200));
      second = await startTestSidecar({ listen: address, logLevel: 'warn' });
      const [two, three] = await Promise.all(later);
      assertAnswers(
        two,
        all.slice(0, 2),
        batch(2).map((i) => i.key),
      );
      assertAnswers(
        three,
        all.slice(0, 3),
        batch(3).map((i) => i.key),
      );
      await stream.end();
    } finally {
      streaming.close();
      await second?.shutdown(1_000);
      await first.shutdown(0);
    }
  });
});
