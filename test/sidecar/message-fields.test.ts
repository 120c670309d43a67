/**
 * ExtractMessageFields end to end on a real sidecar: every Erlang-made field case answered as
 * Erlang answers it (split over workers), the sender RPC's limits (items per batch, payload size)
 * and metrics applied unchanged, and an ExtractSenderJidRequest's bytes accepted as they are.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import {
  ErrorCode,
  ExtractMessageFieldsRequest,
  ExtractMessageFieldsResponse,
  ExtractSenderJidRequest,
  PayloadFormat,
  type FieldsResult,
} from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { erlangFieldCases, type FieldRecord } from '../support/erlang-fields.js';
import { grpcFailure, metricValue, rawClient } from './grpc-test-kit.js';

const FIELDS_PATH = '/mongooseim.mam.v1.SenderJidService/ExtractMessageFields';
const MAX_ITEMS = 400;
const MAX_PAYLOAD = 4_096;
const bytes = (b: Buffer): Buffer => b;

function call(client: grpc.Client, request: Uint8Array): Promise<FieldsResult[]> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(FIELDS_PATH, bytes, bytes, Buffer.from(request), new grpc.Metadata(), { deadline: Date.now() + 60_000 }, (error, response) =>
      error ? reject(error) : resolve(ExtractMessageFieldsResponse.decode(response as Buffer).results),
    );
  });
}

/** The wire answer in the oracle's terms. */
function asExpected(r: FieldsResult): { originId: unknown; isGroupchat: unknown } {
  const o = r.originId;
  const g = r.isGroupchat;
  return {
    originId: o?.error !== undefined ? 'malformed' : o?.none !== undefined ? { originId: null } : { originId: o?.originId },
    isGroupchat: g?.error !== undefined ? 'malformed' : g?.isGroupchat,
  };
}

describe('ExtractMessageFields', () => {
  let sidecar: RunningSidecar;
  let client: grpc.Client;
  const cases: FieldRecord[] = erlangFieldCases().filter((c) => c.payload.length <= MAX_PAYLOAD);

  before(async () => {
    sidecar = await startTestSidecar({
      metricsListen: '127.0.0.1:0',
      poolSize: 2,
      maxItemsPerBatch: MAX_ITEMS,
      maxPayloadBytes: MAX_PAYLOAD,
    });
    client = rawClient(sidecar.address);
  });
  after(async () => {
    client?.close();
    await sidecar?.shutdown(1_000);
  });

  it('answers every Erlang case as Erlang does, in order, keys echoed', async () => {
    assert.ok(cases.length > 150 && cases.length <= MAX_ITEMS, `${cases.length} cases`);
    const request = ExtractMessageFieldsRequest.encode({
      format: PayloadFormat.PAYLOAD_FORMAT_AUTO,
      items: cases.map((c, i) => ({ key: `k${i}`, payload: c.payload, format: PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED })),
    }).finish();
    const results = await call(client, request);
    assert.equal(results.length, cases.length);
    results.forEach((r, i) => {
      const c = cases[i] as FieldRecord;
      assert.equal(r.key, `k${i}`);
      assert.deepEqual(asExpected(r), { originId: c.originId, isGroupchat: c.isGroupchat }, c.name);
    });
    // An empty origin-id and a false is_groupchat are sent as values, not as absent fields.
    const empty = results[cases.findIndex((c) => c.name === 'origin-id empty (minor 1)')];
    assert.equal(empty?.originId?.originId, '');
    assert.equal(empty?.isGroupchat?.isGroupchat, false);
  });

  it('reads the bytes of an ExtractSenderJidRequest as they are (same fields)', async () => {
    const c = cases.find((x) => x.name === 'groupchat with origin-id (compressed)');
    assert.ok(c);
    const request = ExtractSenderJidRequest.encode({
      format: PayloadFormat.PAYLOAD_FORMAT_ETERM,
      items: [{ key: 'one', payload: c.payload, format: PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED }],
    }).finish();
    const [result] = await call(client, request);
    assert.deepEqual(asExpected(result as FieldsResult), { originId: { originId: 'abc' }, isGroupchat: true });
  });

  it("applies the sender's limits: items per batch, payload size; and counts items and batches in the metrics", async () => {
    const one = cases[0] as FieldRecord;
    const tooMany = ExtractMessageFieldsRequest.encode({
      format: PayloadFormat.PAYLOAD_FORMAT_AUTO,
      items: Array.from({ length: MAX_ITEMS + 1 }, (_, i) => ({ key: String(i), payload: one.payload, format: 0 })),
    }).finish();
    const error = await grpcFailure(call(client, tooMany));
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, new RegExp(`max-items-per-batch=${MAX_ITEMS}`));

    const big = ExtractMessageFieldsRequest.encode({
      format: PayloadFormat.PAYLOAD_FORMAT_XML,
      items: [{ key: 'big', payload: Buffer.alloc(MAX_PAYLOAD + 1, 0x20), format: 0 }],
    }).finish();
    const [tooLarge] = await call(client, big);
    assert.equal(tooLarge?.originId?.error?.code, ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE);
    assert.equal(tooLarge?.isGroupchat?.error?.code, ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE);

    const metrics = sidecar.metricsAddress as string;
    assert.ok((await metricValue(metrics, 'mim_sender_jid_items_total{outcome="fields"}')) > 100);
    assert.ok((await metricValue(metrics, 'mim_sender_jid_batches_total{rpc="fields",status="OK"}')) >= 3);
    assert.equal(await metricValue(metrics, 'mim_sender_jid_batches_total{rpc="fields",status="INVALID_ARGUMENT"}'), 1);
  });
});
