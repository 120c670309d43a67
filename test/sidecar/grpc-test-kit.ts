/**
 * Small tools shared by the gRPC suites: raw calls (to cancel, to flood a stream), metrics
 * scraping and bounded waiting.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import type { ExtractResult } from '../../clients/decoder-client/index.js';
import type { Case } from './payloads.js';

export const UNARY_PATH = '/mongooseim.mam.v1.SenderJidService/ExtractSenderJid';
export const STREAM_PATH = '/mongooseim.mam.v1.SenderJidService/ExtractSenderJidStream';
const bytes = (b: Buffer): Buffer => b;

export function rawClient(address: string, credentials = grpc.credentials.createInsecure()): grpc.Client {
  return new grpc.Client(address, credentials, { 'grpc.max_receive_message_length': -1 });
}

export interface RawUnary {
  readonly call: grpc.ClientUnaryCall;
  readonly result: Promise<Buffer>;
}

/** A unary call on already encoded bytes, which the test can cancel. */
export function rawUnary(client: grpc.Client, request: Buffer, deadlineMs = 60_000): RawUnary {
  let call!: grpc.ClientUnaryCall;
  const result = new Promise<Buffer>((resolve, reject) => {
    call = client.makeUnaryRequest(UNARY_PATH, bytes, bytes, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, response) =>
      error ? reject(error) : resolve(response as Buffer),
    );
  });
  result.catch(() => {}); // observed by the test; never an unhandled rejection
  return { call, result };
}

export function rawStream(client: grpc.Client): grpc.ClientDuplexStream<Buffer, Buffer> {
  return client.makeBidiStreamRequest(STREAM_PATH, bytes, bytes, new grpc.Metadata(), {});
}

/** Rejects with the grpc error, or fails the test if the promise resolves. */
export async function grpcFailure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    assert.equal(typeof (error as grpc.ServiceError).code, 'number', `not a grpc error: ${String(error)}`);
    return error as grpc.ServiceError;
  }
  assert.fail('the call succeeded; a grpc error was expected');
}

/** Polls `condition` every 10 ms; fails after timeoutMs (a bound on waiting, not a speed check). */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Scrapes GET /metrics and returns the value of one sample, e.g. `mim_sender_jid_items_total{outcome="jid"}`. */
export async function metricValue(metricsAddress: string, sample: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

export async function itemsCounted(metricsAddress: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('mim_sender_jid_items_total{')) total += Number(line.split(' ').pop());
  }
  return total;
}

/** Checks results against cases: one per case, same order, keys echoed, expected answer. */
export function assertAnswers(results: readonly ExtractResult[], cases: readonly Case[], keys: readonly string[]): void {
  assert.equal(results.length, cases.length, 'one result per item');
  results.forEach((result, i) => {
    const c = cases[i];
    assert.equal(result.key, keys[i], `key of item ${i} (${c.name})`);
    if ('code' in c.expected) {
      assert.equal(result.ok, false, `${c.name}: expected failure ${c.expected.code}, got ${JSON.stringify(result)}`);
      if (!result.ok) {
        assert.equal(result.code, c.expected.code, `${c.name}: ${result.detail}`);
        assert.ok(result.detail.length > 0, `${c.name}: a failure says why`);
      }
    } else {
      assert.deepEqual(result, { key: keys[i], ok: true, ...c.expected }, c.name);
    }
  });
}
