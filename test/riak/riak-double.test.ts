/**
 * The Riak double held to Riak's documentation with plain HTTP requests (not our client): what
 * the riak_kv webmachine resources answer, byte shapes included. If these fail, the double drifted
 * from Riak, and the backend's suites prove less.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jsonObjects } from '../../clients/backends/riak/json-object-stream.js';
import { startRiakDouble, type RiakDouble } from '../support/riak-double.js';

const SEED = Number(process.env.RIAK_TEST_SEED ?? 99);
console.log(`riak double suite: seed ${SEED}`);

describe('riak double, as documented', () => {
  let double: RiakDouble;
  const keys = Array.from({ length: 230 }, (_, i) => `pokój@muc.host/a/b/${1000 + i}`);
  before(async () => {
    double = await startRiakDouble({ seed: SEED, keysPerChunk: 20 });
    for (const key of keys) double.putMap('mam_2019_1', key, { packet: '<message/>', msg_id: key.slice(-4) });
  });
  after(() => double.stop());

  it('streams keys as back-to-back JSON objects, the last one empty, non-ASCII escaped as mochijson2 does', async () => {
    const response = await fetch(`${double.url}/types/mam_yz/buckets/mam_2019_1/keys?keys=stream`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('transfer-encoding'), 'chunked');
    const raw = await response.text();
    assert.ok(raw.includes('pok\\u00f3j@'), 'non-ASCII escaped');
    const parts = [];
    for await (const o of jsonObjects([raw])) parts.push(o as { keys: string[] });
    assert.ok(parts.length > 2);
    assert.deepEqual(parts[parts.length - 1], { keys: [] });
    assert.deepEqual(parts.flatMap((p) => p.keys).sort(), [...keys].sort());
    const whole = (await (await fetch(`${double.url}/types/mam_yz/buckets/mam_2019_1/keys?keys=true`)).json()) as { keys: string[] };
    assert.equal(whole.keys.length, keys.length);
    assert.equal((await fetch(`${double.url}/types/nope/buckets/mam_2019_1/keys?keys=true`)).status, 404);
  });

  it('pages the $bucket index sorted, with a continuation only on full pages; bad max_results is 400', async () => {
    const seen: string[] = [];
    let continuation: string | undefined;
    let pages = 0;
    do {
      const q = `max_results=100${continuation ? `&continuation=${encodeURIComponent(continuation)}` : ''}`;
      const page = (await (await fetch(`${double.url}/types/mam_yz/buckets/mam_2019_1/index/$bucket/_?${q}`)).json()) as {
        keys: string[];
        continuation?: string;
      };
      seen.push(...page.keys);
      continuation = page.continuation;
      assert.equal(continuation === undefined, page.keys.length < 100);
      pages++;
    } while (continuation !== undefined && pages < 10);
    assert.deepEqual(
      seen,
      [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    assert.equal((await fetch(`${double.url}/types/mam_yz/buckets/mam_2019_1/index/$bucket/_?max_results=0`)).status, 400);
  });

  it('fetches maps with a context, updates them with 204, refuses a wrong content type with 406 and bad fields with 400', async () => {
    const url = `${double.url}/types/mam_yz/buckets/mam_2019_1/datatypes/${encodeURIComponent(keys[0])}`;
    const fetched = (await (await fetch(url)).json()) as { type: string; value: Record<string, string>; context: string };
    assert.equal(fetched.type, 'map');
    assert.equal(fetched.value.packet_register, '<message/>');
    assert.match(fetched.context, /^[A-Za-z0-9+/]+=*$/);
    const noContext = (await (await fetch(`${url}?include_context=false`)).json()) as Record<string, unknown>;
    assert.equal('context' in noContext, false);
    const body = JSON.stringify({ update: { mam_type_register: 'muc', msg_owner_jid_register: { assign: 'a@b' } }, context: fetched.context });
    assert.equal((await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body })).status, 406);
    const ok = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(ok.status, 204);
    assert.equal(await ok.text(), '');
    const after = (await (await fetch(url)).json()) as { value: Record<string, string>; context: string };
    assert.equal(after.value.msg_owner_jid_register, 'a@b');
    assert.notEqual(after.context, fetched.context, 'the context changes with an update');
    const bad = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ update: { mam_type: 'x' } }) });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Invalid map field name 'mam_type'/);
    const missing = await fetch(`${double.url}/types/mam_yz/buckets/mam_2019_1/datatypes/none`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { type: 'map', error: 'notfound' });
  });
});
