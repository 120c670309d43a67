/**
 * Heavy callers on an in-process sidecar: the per-request inflation budget, one heavy request
 * against a small call (ordering, not timing), 1,000 cancellations that leave the workers as they
 * were, and a message over --max-request-bytes answered with a status that names the flag.
 */
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { mucMessage, termToCompressedBinary, xmlTerm } from '../../cli/demo/term-encoder.js';
import { SidecarClient, decodeAnswers, encodeBatch } from '../../clients/decoder-client/sidecar-client.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { FAULT_WORKER } from '../support/fault-worker.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { grpcFailure, rawClient, rawUnary, UNARY_PATH } from './grpc-test-kit.js';
import { payloadCases } from './payloads.js';

/** A real compressed term (an exml groupchat message) whose body makes it inflate to about `bytes`. */
function inflatingTerm(jid: string, bytes: number): { payload: Buffer; inflated: number } {
  const payload = termToCompressedBinary(xmlTerm(mucMessage({ jid, body: 'x'.repeat(bytes) })));
  assert.equal(payload[1], 80, 'compressed');
  return { payload, inflated: payload.readUInt32BE(2) };
}

/** Polls `condition` on every turn of the event loop (no sleeping), up to `limit` turns. */
async function spinUntil(what: string, condition: () => boolean, limit = 2_000_000): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`gave up waiting for ${what}`);
}

describe('per-request inflation budget', () => {
  let sidecar: RunningSidecar;
  let client: SidecarClient;
  const term = inflatingTerm('alice@example.com/r', 1024 * 1024);
  before(async () => {
    sidecar = await startTestSidecar({ maxRequestDecompressedBytes: 3 * term.inflated });
    client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
  });
  after(async () => {
    client?.close();
    await sidecar?.shutdown(1_000);
  });

  it('inflates the terms that fit and answers the rest PAYLOAD_TOO_LARGE naming the flag; other items are unaffected', async () => {
    const plain = payloadCases().plain[0];
    const items = [...Array.from({ length: 5 }, (_, i) => ({ key: `big${i}`, payload: term.payload })), { key: 'plain', payload: plain.payload }];
    const results = await client.extract(items);
    assert.deepEqual(
      results.map((r) => [r.key, r.ok ? r.bareJid : r.code]),
      [
        ['big0', 'alice@example.com'],
        ['big1', 'alice@example.com'],
        ['big2', 'alice@example.com'],
        ['big3', 'payload_too_large'],
        ['big4', 'payload_too_large'],
        ['plain', 'alice@example.com'],
      ],
    );
    const refused = results[3] as { detail: string };
    assert.match(refused.detail, /--max-request-decompressed-bytes/);
    assert.match(refused.detail, new RegExp(String(3 * term.inflated)));
    // The budget is per request: the next request has all of it again.
    assert.ok((await client.extract(items.slice(0, 3))).every((r) => r.ok));
  });
});

describe('a heavy request and a small call', () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({
      // the heavy request could hold every worker
      maxRequestDecompressedBytes: 1024 * 1024 * 1024 * 1024,
    });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('the small call is answered while the heavy request is still in work', async () => {
    const heavyTerm = inflatingTerm('heavy@example.com/r', 4 * 1024 * 1024);
    const HEAVY_ITEMS = 300; // ~1.2 GB to inflate, ~1 MB on the wire
    const heavyItems = Array.from({ length: HEAVY_ITEMS }, (_, i) => ({ key: `h${i}`, payload: heavyTerm.payload }));
    const small = payloadCases().compressed[0];
    const heavyClient = rawClient(sidecar.address);
    const smallClient = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    try {
      const tasksBefore = sidecar.stats().tasksDone;
      const heavy = rawUnary(heavyClient, encodeBatch(heavyItems), 600_000);
      let heavySettled = false;
      void heavy.result.then(
        () => (heavySettled = true),
        () => (heavySettled = true),
      );
      // The heavy request is on the only worker and has done some work.
      await spinUntil('the heavy request to be in work', () => sidecar.stats().busyWorkers === 1 && sidecar.stats().tasksDone > tasksBefore);
      const answer = await smallClient.extract([{ key: 'small', payload: small.payload }]);
      assert.equal(answer[0]?.ok, true);
      assert.equal(heavySettled, false, 'the small call waited for the whole heavy request');
      // And the heavy request is answered whole, in order.
      const results = decodeAnswers(heavyItems, await heavy.result);
      assert.equal(results.length, HEAVY_ITEMS);
      results.forEach((r, i) => assert.deepEqual([r.key, r.ok && r.bareJid], [`h${i}`, 'heavy@example.com']));
    } finally {
      heavyClient.close();
      smallClient.close();
    }
  });
});

describe('cancellations', () => {
  const POOL = 2;
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({ poolSize: POOL, workerModule: FAULT_WORKER });
  });
  after(async () => {
    await sidecar?.shutdown(0);
  });

  /** A round of batches: how many tasks it took and whether every answer is right. */
  async function round(client: SidecarClient): Promise<number> {
    const cases = payloadCases().compressed;
    const before = sidecar.stats().tasksDone;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, b) => client.extract(cases.map((c, i) => ({ key: `${b}:${i}`, payload: c.payload })))));
    for (const answer of answers) assert.equal(answer.length, cases.length);
    assert.ok(answers.every((answer) => answer[0]?.ok === true));
    return sidecar.stats().tasksDone - before;
  }

  it('1,000 cancelled calls in work leave the same worker threads, all of them usable', async () => {
    const ok = payloadCases().compressed[0];
    const threadsBefore = [...sidecar.stats().workerThreadIds].sort();
    const started = sidecar.stats().workersStarted;
    assert.equal(threadsBefore.length, POOL);
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    const raw = rawClient(sidecar.address);
    try {
      const tasksPerRoundBefore = await round(client);
      const stalled = encodeBatch([
        { key: 'first', payload: ok.payload },
        { key: 'stall', payload: ok.payload },
      ]);
      for (let i = 0; i < 1_000; i++) {
        const done = sidecar.stats().tasksDone;
        const call = rawUnary(raw, stalled);
        await spinUntil(`call ${i} to be on a worker`, () => sidecar.stats().busyWorkers === 1);
        call.call.cancel();
        assert.equal((await grpcFailure(call.result)).code, grpc.status.CANCELLED);
        await spinUntil(`call ${i}'s task to stop`, () => sidecar.stats().busyWorkers === 0 && sidecar.stats().tasksDone === done + 1);
      }
      assert.deepEqual([...sidecar.stats().workerThreadIds].sort(), threadsBefore, 'the same worker threads');
      assert.equal(sidecar.stats().workersStarted, started, 'no worker was replaced');
      // Every worker still works at once: POOL stalled calls are on POOL workers together.
      const held = Array.from({ length: POOL }, () => rawUnary(raw, stalled));
      await spinUntil('every worker busy', () => sidecar.stats().busyWorkers === POOL);
      for (const call of held) call.call.cancel();
      await spinUntil('workers free', () => sidecar.stats().busyWorkers === 0);
      // The same work takes the same number of tasks, all answered.
      assert.equal(await round(client), tasksPerRoundBefore);
      assert.deepEqual([...sidecar.stats().workerThreadIds].sort(), threadsBefore);
    } finally {
      client.close();
      raw.close();
    }
  });
});

describe('a message over --max-request-bytes', () => {
  const MAX = 1024 * 1024;
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar({ maxRequestBytes: MAX });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('is answered RESOURCE_EXHAUSTED naming the flag, by grpc-js and by a bare HTTP/2 client', async () => {
    const client = new grpc.Client(sidecar.address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
    try {
      const error = await grpcFailure(rawUnary(client, Buffer.alloc(MAX + 1)).result);
      assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(error.details, new RegExp(`max-request-bytes=${MAX} \\(--max-request-bytes\\)`));
    } finally {
      client.close();
    }
    // A bare HTTP/2 client (room for the whole body in its own session memory) gets the status too.
    const session = http2.connect(`http://${sidecar.address}`, { maxSessionMemory: 1024 });
    try {
      const stream = session.request({ ':method': 'POST', ':path': UNARY_PATH, 'content-type': 'application/grpc', te: 'trailers' });
      const headers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on('response', resolve));
      stream.on('error', () => {});
      stream.resume(); // nothing to read but the status; let the stream end
      const body = Buffer.alloc(5 + MAX * 4);
      body.writeUInt32BE(MAX * 4, 1);
      stream.end(body);
      const answer = await headers;
      assert.equal(answer['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
      assert.match(decodeURIComponent(String(answer['grpc-message'])), /--max-request-bytes/);
      await new Promise((resolve) => stream.on('close', resolve));
      assert.equal(sidecar.stats().arrivingRequestBytes, 0);
    } finally {
      session.close();
    }
  });
});
