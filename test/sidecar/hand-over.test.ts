/**
 * How a request's bytes reach a worker: given away when grpc-js's buffer holds that message alone,
 * copied otherwise (a buffer shared with anything else must never be detached).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handOver } from '../../services/sidecar/hand-over.js';

describe('handOver', () => {
  it('gives away a buffer that holds one framed message alone, without copying', () => {
    const framed = Buffer.concat([Buffer.from([0, 0, 1, 0, 0]), Buffer.alloc(64 * 1024, 7)]);
    const message = framed.subarray(5);
    const task = handOver(message);
    assert.equal(task.request, framed.buffer);
    assert.deepEqual([task.offset, task.length], [5, 64 * 1024]);
  });

  it("copies a small message (Buffer's shared pool) and leaves the original intact", () => {
    const small = Buffer.from('a small request');
    const task = handOver(small);
    assert.notEqual(task.request, small.buffer);
    assert.deepEqual(Buffer.from(task.request, task.offset, task.length), small);
    structuredClone(task.request, { transfer: [task.request] });
    assert.equal(small.toString(), 'a small request');
  });

  it('copies a view that does not reach the end of its memory, or starts deeper than a frame header', () => {
    const big = Buffer.alloc(64 * 1024, 1);
    for (const view of [big.subarray(5, big.length - 1), big.subarray(100)]) {
      const task = handOver(view);
      assert.notEqual(task.request, big.buffer);
      assert.deepEqual(Buffer.from(task.request, task.offset, task.length), view);
    }
  });
});
