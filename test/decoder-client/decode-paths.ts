/**
 * Shared by the decoder-client suites: Erlang-made payloads as items, the check of results
 * against Erlang's answers, and reading a sidecar's request counters.
 */
import assert from 'node:assert/strict';
import type { ExtractItem, ExtractResult } from '../../clients/decoder-client/index.js';
import type { PayloadRecord } from '../support/erlang-payloads.js';

/** Items with unique keys (position and name), each with its record's format. */
export function itemsOf(records: readonly PayloadRecord[], tag: string): ExtractItem[] {
  return records.map((r, i) => ({ key: `${tag}-${i}-${r.name}`, payload: r.payload, format: r.format }));
}

/**
 * One result per item, keys in order, and the answer Erlang computes: the JID, or a failure of the
 * same kind (-2: not a groupchat message; -1: anything else). A JID the reference accepts but that
 * has no local part or domain is refused by our split: a failure for us, as documented.
 */
export function assertMatchesErlang(results: readonly ExtractResult[], items: readonly ExtractItem[], records: readonly PayloadRecord[]): void {
  assert.equal(results.length, items.length, 'one result per item');
  for (let i = 0; i < items.length; i++) {
    const result = results[i];
    const expected = records[i].expected;
    assert.equal(result.key, items[i].key, `key at ${i}`);
    const what = `${records[i].name} at ${i}: got ${JSON.stringify(result)}, Erlang ${JSON.stringify(expected)}`;
    if ('jid' in expected) {
      if (result.ok) assert.equal(result.bareJid, expected.jid, what);
      else assert.ok(result.code === 'jid_without_local_part' || result.code === 'jid_without_domain', what);
    } else {
      assert.equal(result.ok, false, what);
      if (!result.ok) assert.equal(result.code === 'not_groupchat' ? '-2' : '-1', expected.code, what);
    }
  }
}

/** Requests a sidecar answered on streams with the given status, from its GET /metrics. */
export async function streamRequests(metricsAddress: string, status: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('mim_sender_jid_batches_total{') && line.includes('rpc="stream"') && line.includes(`status="${status}"`)) {
      total += Number(line.split(' ').pop());
    }
  }
  return total;
}
