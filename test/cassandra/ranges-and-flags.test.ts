/** Pure parts of the Cassandra backend: the token ranges and the flags (no server needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConsistency, parseContactPoints, parseKeyspace } from '../../clients/backends/cassandra/connect.js';
import { MAX_TOKEN, MIN_TOKEN, RANGE_COUNT, rangesOfShard } from '../../clients/backends/cassandra/token-ranges.js';
import { UsageError } from '../../clients/backends/registry.js';

test('the ranges tile the whole Murmur3 ring, in order, without gap or overlap', () => {
  const ranges = rangesOfShard({ index: 0, count: 1 });
  assert.equal(ranges.length, RANGE_COUNT);
  assert.equal(ranges[0].start, MIN_TOKEN);
  assert.equal(ranges[ranges.length - 1].end, MAX_TOKEN);
  for (let i = 1; i < ranges.length; i++) {
    assert.equal(ranges[i].start, ranges[i - 1].end, `range ${i} starts where ${i - 1} ends`);
    assert.ok(ranges[i].end > ranges[i].start);
  }
  // Checkpoints are saved under these names: one per range, the same on every run.
  assert.deepEqual(
    ranges.map((r) => r.name),
    ranges.map((_, i) => `range-${String(i).padStart(2, '0')}-of-${RANGE_COUNT}`),
  );
});

test('--shard K/N: the shards are disjoint and together every range', () => {
  for (const count of [2, 3, 7, 64]) {
    const seen = new Map<string, number>();
    for (let index = 0; index < count; index++) {
      for (const range of rangesOfShard({ index, count })) seen.set(range.name, (seen.get(range.name) ?? 0) + 1);
    }
    assert.equal(seen.size, RANGE_COUNT, `N=${count}: every range`);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      `N=${count}: each range once`,
    );
  }
  assert.throws(() => rangesOfShard({ index: 0, count: 65 }), /at most 64 shards/);
});

test('contact points: default port, explicit ports, IPv6; bad ones are usage errors', () => {
  assert.deepEqual(parseContactPoints('10.0.0.5, db2:9043,[::1]:9044'), ['10.0.0.5:9042', 'db2:9043', '[::1]:9044']);
  assert.throws(() => parseContactPoints(''), UsageError);
  assert.throws(() => parseContactPoints('db:99999'), /port 99999/);
  assert.throws(() => parseContactPoints('db:x'), /not HOST\[:PORT\]/);
});

test('consistency and keyspace flags', () => {
  assert.equal(parseConsistency('local_quorum'), parseConsistency('LOCAL_QUORUM'));
  assert.throws(() => parseConsistency('ANY'), /--consistency must be one of/);
  assert.equal(parseKeyspace('mongooseim'), 'mongooseim');
  assert.throws(() => parseKeyspace('mongooseim; DROP KEYSPACE x'), /not a keyspace name/);
});
