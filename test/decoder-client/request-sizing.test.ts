/**
 * Cutting batches into requests (request-sizing.ts) against the real encoder: every request,
 * encoded, is within the byte limit and the item limit, and the requests hold the batch's items
 * in order. Seeded random batches: keys with multi-byte characters, payloads of all sizes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeBatch } from '../../clients/decoder-client/batch-codec.js';
import type { ExtractItem, PayloadFormat } from '../../clients/decoder-client/index.js';
import { REQUEST_OVERHEAD_BYTES, extractInRequests, itemBytesBound, planRequests } from '../../clients/decoder-client/request-sizing.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { DEFAULT_REQUEST_LIMITS, requestLimitsFrom } from '../../services/sidecar/request-limits.js';

const FORMATS: (PayloadFormat | undefined)[] = [undefined, 'eterm', 'xml', 'auto'];
const KEY_CHARS = ['a', '7', 'é', 'ключ', '🔑', '/'];

function randomBatch(random: () => number, count: number, maxPayload: number): ExtractItem[] {
  return Array.from({ length: count }, (_, i) => {
    const key = `${i}:` + Array.from({ length: Math.floor(random() * 12) }, () => KEY_CHARS[Math.floor(random() * KEY_CHARS.length)]).join('');
    const format = FORMATS[Math.floor(random() * FORMATS.length)];
    const payload = new Uint8Array(Math.floor(random() ** 3 * maxPayload));
    return format === undefined ? { key, payload } : { key, payload, format };
  });
}

describe('request sizing', () => {
  it('every request fits both limits once encoded, and the requests hold the batch in order', () => {
    const random = seededRandom(1_234);
    for (let round = 0; round < 200; round++) {
      const limits = { maxItemsPerBatch: 1 + Math.floor(random() * 50), maxRequestBytes: 64 + Math.floor(random() * 20_000) };
      const items = randomBatch(random, Math.floor(random() * 300), 4_000);
      const parts = planRequests(items, limits);
      const seen: string[] = [];
      for (const part of parts) {
        if ('send' in part) {
          assert.ok(part.send.length >= 1 && part.send.length <= limits.maxItemsPerBatch);
          const bytes = encodeBatch(part.send, 'auto').length;
          assert.ok(bytes <= limits.maxRequestBytes, `round ${round}: a request of ${bytes} bytes over ${limits.maxRequestBytes}`);
          seen.push(...part.send.map((item) => item.key));
        } else {
          const item = items.find((candidate) => candidate.key === part.answer.key)!;
          assert.ok(itemBytesBound(item) + REQUEST_OVERHEAD_BYTES > limits.maxRequestBytes, 'only an item that cannot fit is answered here');
          assert.equal(part.answer.ok ? 'jid' : part.answer.code, 'payload_too_large');
          seen.push(part.answer.key);
        }
      }
      assert.deepEqual(
        seen,
        items.map((item) => item.key),
        `round ${round}: the batch, in order`,
      );
      // A request ends only when the next item would break a limit (the cut is not wasteful).
      for (let i = 1; i < parts.length; i++) {
        const [a, b] = [parts[i - 1], parts[i]];
        if (!('send' in a) || !('send' in b)) continue;
        const bound = [...a.send, b.send[0]].reduce((sum, item) => sum + itemBytesBound(item), REQUEST_OVERHEAD_BYTES);
        assert.ok(a.send.length === limits.maxItemsPerBatch || bound > limits.maxRequestBytes, `round ${round}: request ${i - 1} had room for the next item`);
      }
    }
  });

  it('joins the answers of the requests in the batch order, whatever order they settle in', async () => {
    const random = seededRandom(99);
    const items = randomBatch(random, 1_000, 300);
    const limits = { maxItemsPerBatch: 37, maxRequestBytes: 5_000 };
    let requests = 0;
    const results = await extractInRequests(items, limits, async (request) => {
      requests++;
      // Later requests settle first, sometimes.
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5)));
      return request.map((item) => ({ key: item.key, ok: false as const, code: 'malformed' as const, detail: String(item.payload.length) }));
    });
    assert.ok(requests > items.length / 37);
    assert.deepEqual(
      results.map((r) => r.key),
      items.map((item) => item.key),
    );
    assert.deepEqual(
      results.map((r) => (r.ok ? '' : r.detail)),
      items.map((item) => String(item.payload.length)),
    );
  });

  it('reads the limits a server announces; none announced means the defaults; nonsense is refused', () => {
    const headers = (values: Record<string, string>) => (name: string) => values[name];
    assert.deepEqual(requestLimitsFrom(headers({ 'mim-sender-jid-max-items-per-batch': '100', 'mim-sender-jid-max-request-bytes': '65536' })), {
      maxItemsPerBatch: 100,
      maxRequestBytes: 65_536,
    });
    assert.equal(requestLimitsFrom(headers({})), null);
    assert.deepEqual(requestLimitsFrom(headers({ 'mim-sender-jid-max-items-per-batch': '5' })), { ...DEFAULT_REQUEST_LIMITS, maxItemsPerBatch: 5 });
    assert.throws(() => requestLimitsFrom(headers({ 'mim-sender-jid-max-items-per-batch': '0' })), /not a whole number >= 1/);
    assert.throws(() => requestLimitsFrom(headers({ 'mim-sender-jid-max-request-bytes': 'lots' })), /not a whole number >= 1/);
  });
});
