/**
 * request-scan.ts against the protobuf encoder the clients use: item counts (stopping at the
 * first item over the limit), the inflation budget, and the cut into tasks, whose slices decode
 * to exactly the request's items, in order. Seeded random requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { ExtractSenderJidRequest, PayloadFormat } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { ITEM_OVERHEAD_BYTES, planRequest, type PlanSettings } from '../../services/sidecar/request-scan.js';

const SETTINGS: PlanSettings = {
  maxItemsPerBatch: 10_000,
  maxPayloadBytes: 1024 * 1024,
  maxDecompressedBytes: 16 * 1024 * 1024,
  maxRequestDecompressedBytes: 256 * 1024 * 1024,
  taskSliceBytes: 4 * 1024 * 1024,
};

/** A payload that claims (in its compressed-term header) to inflate to `declared` bytes. */
function compressedHeader(declared: number, extra = 10): Uint8Array {
  const out = new Uint8Array(6 + extra);
  out[0] = 131;
  out[1] = 80;
  new DataView(out.buffer).setUint32(2, declared);
  return out;
}

function slices(request: Uint8Array, ranges: readonly (readonly [number, number])[]): Uint8Array {
  return Buffer.concat(ranges.map(([from, to]) => request.subarray(from, to)));
}

describe('request scan', () => {
  it('counts items without decoding them and stops at the first one over the limit', () => {
    // 5 million empty items: 10 MB. The scan refuses at item 10,001.
    const empty = Buffer.alloc(10_000_000);
    for (let i = 0; i < empty.length; i += 2) empty[i] = 0x12;
    const plan = planRequest(empty, 0, empty.length, SETTINGS);
    assert.equal(plan.ok, false);
    assert.match(!plan.ok ? plan.message : '', /at least 10001 items is over the limit max-items-per-batch=10000 \(--max-items-per-batch\)/);
    const atLimit = empty.subarray(0, 2 * 10_000);
    const ok = planRequest(atLimit, 0, atLimit.length, SETTINGS);
    assert.ok(ok.ok);
    assert.equal(ok.itemCount, 10_000);
  });

  it('refuses broken framing and unknown formats as the decoder would', () => {
    const cases: [number[], RegExp][] = [
      [[0x12, 100, 1, 2], /not a valid ExtractSenderJidRequest/],
      [[0x08, 9], /unknown PayloadFormat 9 for the batch/],
      [[0x12, 5, 0x12, 1, 0x6b, 0x18, 7], /unknown PayloadFormat 7 for item 0 \(key "k"\)/],
      [[0x12, 2, 0x00, 0x00], /field number 0/],
      [[0x12, 3, 0x0a, 5, 1], /not a valid/],
      [[0x0f], /invalid wire type 7/],
    ];
    for (const [bytes, expected] of cases) {
      const plan = planRequest(Uint8Array.from(bytes), 0, bytes.length, SETTINGS);
      assert.equal(plan.ok, false, `${bytes}`);
      assert.match(!plan.ok ? plan.message : '', expected);
    }
  });

  it('cuts seeded random requests into tasks whose slices are exactly the items, with the budget applied in order', () => {
    const rand = seededRandom(11);
    for (let round = 0; round < 40; round++) {
      const count = Math.floor(rand() * 300);
      const budget = Math.floor(rand() * 40) * 1024 * 1024;
      const settings: PlanSettings = { ...SETTINGS, maxRequestDecompressedBytes: budget, taskSliceBytes: 1 + Math.floor(rand() * 8 * 1024 * 1024) };
      const items = Array.from({ length: count }, (_, i) => {
        const kind = rand();
        const declared = Math.floor(rand() * 20 * 1024 * 1024);
        const payload = kind < 0.4 ? compressedHeader(declared) : Buffer.from(`<message n="${i}"/>`.repeat(1 + Math.floor(rand() * 50)));
        const format =
          rand() < 0.2 ? PayloadFormat.PAYLOAD_FORMAT_XML : rand() < 0.5 ? PayloadFormat.PAYLOAD_FORMAT_ETERM : PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED;
        return { key: `k${i}`, payload, format };
      });
      const batchFormat = rand() < 0.5 ? PayloadFormat.PAYLOAD_FORMAT_AUTO : PayloadFormat.PAYLOAD_FORMAT_ETERM;
      const request = ExtractSenderJidRequest.encode({ format: batchFormat, items }).finish();
      const plan = planRequest(request, 0, request.length, settings);
      assert.ok(plan.ok, `round ${round}`);
      assert.equal(plan.itemCount, count);
      assert.equal(plan.batchFormat, batchFormat);
      // Expected budget, item by item, from the construction.
      let spent = 0;
      const expectedOver: number[] = [];
      items.forEach((item, i) => {
        const format = item.format === PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED ? batchFormat : item.format;
        if (format === PayloadFormat.PAYLOAD_FORMAT_XML || item.payload[1] !== 80) return;
        const declared = new DataView(item.payload.buffer, item.payload.byteOffset).getUint32(2);
        if (declared > settings.maxDecompressedBytes) return; // the per-item limit answers it
        if (spent + declared > budget) expectedOver.push(i);
        else spent += declared;
      });
      const over: number[] = [];
      let next = 0;
      for (const task of plan.tasks) {
        assert.equal(task.firstItem, next);
        const decoded = ExtractSenderJidRequest.decode(slices(request, task.ranges));
        assert.deepEqual(
          decoded.items.map((x) => x.key),
          items.slice(next, next + task.itemCount).map((x) => x.key),
        );
        for (const o of task.overBudget) over.push(task.firstItem + o);
        next += task.itemCount;
      }
      assert.equal(next, count);
      assert.deepEqual(over, expectedOver, `round ${round}: items over the budget`);
      // A task is cut when the next item would take it past the slice (a lone item may exceed it).
      for (const task of plan.tasks) {
        if (task.itemCount > 1) {
          const cost = items
            .slice(task.firstItem, task.firstItem + task.itemCount - 1)
            .reduce((sum, item) => sum + ITEM_OVERHEAD_BYTES + item.payload.length, 0);
          assert.ok(cost <= settings.taskSliceBytes, `round ${round}: a task's items before its last are within the slice`);
        }
      }
    }
  });
});
