/**
 * origin_id and is_groupchat through the decoder client, as the walks ask for them: the
 * in-process pool and a remote sidecar (ExtractMessageFields) answer Erlang-made payloads as
 * MongooseIM's own functions do, batches larger than a request are cut and answered in order, and
 * an item no request can hold is answered payload_too_large for both fields.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDecoder, type Decoder, type ExtractItem, type FieldsResult } from '../../clients/decoder-client/index.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { erlangFieldCases, erlangFieldMessages, type FieldRecord } from '../support/erlang-fields.js';
import { fuzzSeed } from '../support/fuzz-seed.js';
import { startTestSidecar } from '../support/test-sidecar.js';

const SEED = fuzzSeed('FIELDS_PATHS_SEED', 'decoder client fields');
/** Small on purpose: a batch of the test's size is cut into several requests. */
const ITEMS_PER_REQUEST = 40;

function itemsOf(records: readonly FieldRecord[]): ExtractItem[] {
  return records.map((r, i) => ({ key: `k${i}`, payload: r.payload, format: r.format }));
}

/** Erlang's answer in the client's words. */
function expected(record: FieldRecord, key: string): Pick<FieldsResult, 'key'> & { originId: unknown; isGroupchat: unknown } {
  return {
    key,
    originId: record.originId === 'malformed' ? 'malformed' : record.originId.originId,
    isGroupchat: record.isGroupchat,
  };
}

function asErlangWords(result: FieldsResult): { key: string; originId: unknown; isGroupchat: unknown } {
  return {
    key: result.key,
    originId: result.originId.ok ? result.originId.value : result.originId.code,
    isGroupchat: result.isGroupchat.ok ? result.isGroupchat.value : result.isGroupchat.code,
  };
}

describe('decoder client: fields streams', () => {
  let sidecar: RunningSidecar;
  let small: RunningSidecar;
  let inProcess: Decoder;
  let remote: Decoder;
  let remoteSmall: Decoder;
  let records: FieldRecord[];

  before(async () => {
    records = [...erlangFieldCases(), ...erlangFieldMessages(60, SEED % 100_000)];
    sidecar = await startTestSidecar();
    small = await startTestSidecar({ maxItemsPerBatch: ITEMS_PER_REQUEST, maxRequestBytes: 64 * 1024, maxArrivingRequestBytes: 64 * 1024 });
    inProcess = await openDecoder({ maxInFlightBatches: 2, workers: 1 });
    remote = await openDecoder({ sidecar: sidecar.address, maxInFlightBatches: 2 });
    remoteSmall = await openDecoder({ sidecar: small.address, maxInFlightBatches: 2 });
  });
  after(async () => {
    await inProcess?.close();
    await remote?.close();
    await remoteSmall?.close();
    await sidecar?.shutdown(1_000);
    await small?.shutdown(1_000);
  });

  async function answer(decoder: Decoder, items: ExtractItem[]): Promise<FieldsResult[]> {
    const stream = decoder.openFieldsStream('auto');
    try {
      return await stream.extract(items);
    } finally {
      await stream.end();
    }
  }

  it('answers Erlang-made payloads as Erlang does, in process and over gRPC, in order across requests', async () => {
    const items = itemsOf(records);
    assert.ok(items.length > ITEMS_PER_REQUEST * 3, 'the batch needs several requests of the small sidecar');
    const want = records.map((r, i) => expected(r, items[i].key));
    for (const [name, decoder] of [
      ['in-process', inProcess],
      ['sidecar', remote],
      ['sidecar cutting requests', remoteSmall],
    ] as const) {
      const got = await answer(decoder, items);
      assert.deepEqual(got.map(asErlangWords), want, name);
    }
    assert.ok(
      want.some((w) => typeof w.originId === 'string') && want.some((w) => w.originId === null) && want.some((w) => w.isGroupchat === true),
      'the records hold ids, messages without one and groupchat messages',
    );
  });

  it('answers an item too large for any request payload_too_large for both fields, and the rest as usual', async () => {
    const huge: ExtractItem = { key: 'huge', payload: new Uint8Array(128 * 1024).fill(0x41), format: 'xml' };
    const items = [...itemsOf(records.slice(0, 3)), huge, ...itemsOf(records.slice(3, 6)).map((i) => ({ ...i, key: `${i.key}b` }))];
    const got = await answer(remoteSmall, items);
    assert.deepEqual(
      got.map((r) => r.key),
      items.map((i) => i.key),
    );
    const big = got[3];
    assert.equal(big.originId.ok, false);
    assert.equal(big.isGroupchat.ok, false);
    assert.equal(!big.originId.ok && big.originId.code, 'payload_too_large');
    assert.equal(!big.isGroupchat.ok && big.isGroupchat.code, 'payload_too_large');
    assert.deepEqual(
      got.slice(0, 3).map(asErlangWords),
      records.slice(0, 3).map((r, i) => expected(r, items[i].key)),
    );
  });
});
