/** Pure parts of the SQL backends: decisions with the SQL rules, storability, statements, the sender id cache, binary COPY. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideBatch } from '../../clients/pipeline/run-migration.js';
import { checkPostgresStorable, PostgresBackend } from '../../clients/backends/sql/postgres.js';
import { checkMysqlStorable, mysqlPageSql, mysqlUpdateSql } from '../../clients/backends/sql/mysql.js';
import type { ExtractResult } from '../../clients/pipeline/types.js';
import type { SourceRow } from '../../clients/backends/sql/sql-backend.js';
import fc from 'fast-check';
import { parseBinaryCopy } from '../../clients/backends/sql/pg-binary-copy.js';
import { integerArrayLiteral, POSTGRES_DIALECT } from '../../clients/backends/sql/postgres-statements.js';
import { compareDecimal, compareRowKeys, type RowKey } from '../../clients/backends/sql/sql-dialect.js';
import { fuzzSeed } from '../support/fuzz-seed.js';

test('decideBatch with the SQL rules: writes, failures, unsplittable and unstorable JIDs, order checked', async () => {
  // The backend's decide needs no connection: the pool connects lazily.
  const backend = new PostgresBackend({ url: 'postgres://127.0.0.1:1/none' });
  const rows: SourceRow[] = [1, 2, 3, 4].map((n) => ({ key: { roomId: '1', id: String(n) }, payload: new Uint8Array() }));
  const results: ExtractResult[] = [
    { key: '0', ok: true, bareJid: 'a@b', user: 'a', server: 'b' },
    { key: '1', ok: false, code: 'not_groupchat', detail: 'type chat' },
    { key: '2', ok: true, bareJid: 'x@b', user: 'x'.repeat(251), server: 'b' },
    { key: '3', ok: true, bareJid: '@b', user: '', server: 'b' },
  ];
  const { writes, notWritten } = decideBatch(backend, rows, results);
  assert.deepEqual(writes, [{ key: rows[0].key, write: { bareJid: 'a@b', user: 'a', server: 'b' } }]);
  assert.deepEqual(
    notWritten.map((r) => [r.key.id, r.reason]),
    [
      ['2', 'not_groupchat'],
      ['3', 'jid_not_storable'],
      ['4', 'jid_without_local_part'],
    ],
  );
  assert.throws(() => decideBatch(backend, rows, [results[1], results[0], results[2], results[3]]), /out of order/);
  assert.throws(() => decideBatch(backend, rows, results.slice(1)), /3 results for a batch of 4/);
  await backend.close();
});

test('storable: PostgreSQL counts characters, MySQL binary columns count bytes', () => {
  const cyrillic = 'ж'.repeat(200); // 200 characters, 400 bytes
  assert.equal(checkPostgresStorable(cyrillic, 'host'), null);
  assert.match(checkMysqlStorable(cyrillic, 'host') ?? '', /400 bytes/);
  assert.match(checkPostgresStorable('a\u0000b', 'host') ?? '', /NUL/);
});

test('MySQL SQL: keys are inlined integers (no double comparison), anything else refused', () => {
  const sql = mysqlPageSql({ roomId: '7', id: '399582233150625537' }, 100, { index: 1, count: 4 });
  assert.match(sql, /room_id > 7 OR \(room_id = 7 AND id > 399582233150625537\)/);
  assert.match(sql, /\(\(room_id % 4\) \+ 4\) % 4 = 1/);
  assert.match(sql, /ORDER BY t.room_id, t.id LIMIT 100$/);
  assert.throws(() => mysqlPageSql({ roomId: '7 OR 1=1', id: '1' }, 1, { index: 0, count: 1 }), /not an unsigned integer/);
  const update = mysqlUpdateSql([
    { roomId: '1', id: '2', senderId: '3' },
    { roomId: '4', id: '5', senderId: '6' },
  ]);
  assert.equal(
    update,
    'UPDATE mam_muc_message m JOIN (SELECT 1 AS room_id, 2 AS id, 3 AS sid UNION ALL SELECT 4, 5, 6) v ' +
      'ON m.room_id = v.room_id AND m.id = v.id SET m.sender_id = v.sid WHERE m.sender_id IS NULL',
  );
});

test('sender id cache: the batch keeps its own ids even if the shared cache is emptied meanwhile', async () => {
  const { SenderIdCache, senderCacheKey, senderIdsOf } = await import('../../clients/backends/sql/sender-id-cache.js');
  const cache = new SenderIdCache(2);
  cache.set('h', 'a', '1');
  const writes = [
    { user: 'b', server: 'h' },
    { user: 'a', server: 'h' },
    { user: 'c', server: 'g' },
    { user: 'b', server: 'h' },
  ];
  const { ids, missing, keys } = cache.lookup(writes);
  assert.deepEqual(
    keys,
    writes.map((w) => senderCacheKey(w.server, w.user)),
    'one key per write, in order',
  );
  assert.deepEqual(
    missing,
    [
      { server: 'g', user: 'c' },
      { server: 'h', user: 'b' },
    ],
    'distinct, sorted, cached ones left out',
  );
  ids.set(senderCacheKey('h', 'b'), '2');
  cache.set('h', 'b', '2');
  cache.set('g', 'c', '3'); // full: the shared cache forgets everything
  ids.set(senderCacheKey('g', 'c'), '3');
  assert.equal(cache.get('h', 'a'), undefined);
  assert.deepEqual(senderIdsOf(writes, ids), ['2', '1', '3', '2']);
  assert.deepEqual(senderIdsOf(writes, ids, keys), ['2', '1', '3', '2'], 'the same with the keys lookup made');
  assert.throws(() => senderIdsOf([{ user: 'z', server: 'h' }], ids), /no mam_server_user id resolved for z@h/);
});

test('binary COPY: integer params inlined, anything else refused; rows parsed from the wire format', async () => {
  const { inlineIntegerParams, parseBinaryCopy } = await import('../../clients/backends/sql/pg-binary-copy.js');
  assert.equal(
    inlineIntegerParams({ sql: 'SELECT $1::int, $2, $10', params: [7, '399582233150625537', 0, 0, 0, 0, 0, 0, 0, -3] }),
    'SELECT 7::int, 399582233150625537, (-3)',
  );
  assert.throws(() => inlineIntegerParams({ sql: 'SELECT $1', params: ['1; DROP TABLE x'] }), /not an integer/);
  const field = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length].map(Number)), b]);
  const int4 = Buffer.alloc(4);
  int4.writeInt32BE(42);
  const int8 = Buffer.alloc(8);
  int8.writeBigInt64BE(2n ** 40n);
  const data = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    Buffer.alloc(8),
    Buffer.from([0, 3]),
    field(int4),
    field(Buffer.from('12')),
    field(Buffer.from([0x83, 0x50])),
    Buffer.from([0, 3]),
    field(int8),
    Buffer.from([0xff, 0xff, 0xff, 0xff]),
    field(Buffer.alloc(0)),
    Buffer.from([0xff, 0xff]),
  ]);
  const rows = parseBinaryCopy(data, ['a', 'b', 'c'], ['integer', 'text', 'bytea']);
  assert.deepEqual(
    rows.map((r) => [r.a, r.b, Buffer.from(r.c as Buffer).toString('hex')]),
    [
      ['42', '12', '8350'],
      [String(2n ** 40n), null, ''],
    ].map((x) => x) as unknown[],
  );
});

const UNITS_SEED = fuzzSeed('MIM_SQL_UNITS_SEED', 'SQL unit properties');
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
// Around the edges the fast paths switch at: 2^31, 2^53, 2^63, and MongooseIM's 18-digit ids.
const edgy = fc.oneof(
  int64,
  fc.constantFrom(
    0n,
    -1n,
    1n,
    2n ** 31n,
    -(2n ** 31n),
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    -(2n ** 53n),
    -(2n ** 53n) - 1n,
    2n ** 63n - 1n,
    -(2n ** 63n),
  ),
  fc.bigInt({ min: 399582233150625537n, max: 499582233150625537n }),
  fc.bigInt({ min: -(2n ** 54n), max: 2n ** 54n }),
);

test('binary COPY: booleans (the field walks: is_groupchat) read as one byte; NULL as null', () => {
  const data = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    Buffer.alloc(8),
    Buffer.from([0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]),
    Buffer.from([0, 2, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0xff, 0xff]),
  ]);
  assert.deepEqual(
    parseBinaryCopy(data, ['a', 'b'], ['boolean', 'boolean']).map((r) => [r.a, r.b]),
    [
      [true, false],
      [false, null],
    ],
  );
  const wide = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8), Buffer.from([0, 1, 0, 0, 0, 2, 0, 1]), Buffer.from([0xff, 0xff])]);
  assert.throws(() => parseBinaryCopy(wide, ['a'], ['boolean']), /a boolean field of 2 bytes/);
});

test('binary COPY: every int8, int4 and int2 value reads back as its decimal text', () => {
  const frame = (values: bigint[]): Buffer => {
    const parts = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
    for (const v of values) {
      const row = Buffer.alloc(2 + 3 * 4 + 8 + 4 + 2);
      let pos = row.writeInt16BE(3, 0);
      pos = row.writeInt32BE(8, pos);
      pos = row.writeBigInt64BE(v, pos);
      pos = row.writeInt32BE(4, pos);
      pos = row.writeInt32BE(Number(BigInt.asIntN(32, v)), pos);
      pos = row.writeInt32BE(2, pos);
      row.writeInt16BE(Number(BigInt.asIntN(16, v)), pos);
      parts.push(row);
    }
    parts.push(Buffer.from([0xff, 0xff]));
    return Buffer.concat(parts);
  };
  fc.assert(
    fc.property(fc.array(edgy, { minLength: 1, maxLength: 20 }), (values) => {
      const rows = parseBinaryCopy(frame(values), ['a', 'b', 'c'], ['integer', 'integer', 'integer']);
      assert.deepEqual(
        rows.map((r) => [r.a, r.b, r.c]),
        values.map((v) => [String(v), String(BigInt.asIntN(32, v)), String(BigInt.asIntN(16, v))]),
      );
    }),
    { seed: UNITS_SEED, numRuns: 300 },
  );
  // A field longer than what is left is refused, not read past the end.
  const cut = frame([5n]);
  cut.writeInt32BE(9, 21);
  assert.throws(() => parseBinaryCopy(cut, ['a', 'b', 'c'], ['integer', 'integer', 'integer']), /an integer field of 9 bytes/);
  cut.writeInt32BE(1000, 21);
  assert.throws(() => parseBinaryCopy(cut, ['a', 'b', 'c'], ['integer', 'integer', 'integer']), /past the end/);
});

test('row keys compare as integers (lengths, signs, leading zeros), the same as BigInt', () => {
  const decimal = fc.oneof(
    edgy.map(String),
    // Not what the database sends, but still integers: the slow path must agree.
    fc.tuple(fc.nat({ max: 3 }), fc.bigInt({ min: 0n, max: 10n ** 19n })).map(([zeros, v]) => '0'.repeat(zeros) + String(v)),
  );
  const key = fc.record({ roomId: decimal, id: decimal });
  const byBigInt = (a: RowKey, b: RowKey): number => {
    const d = BigInt(a.roomId) - BigInt(b.roomId) || BigInt(a.id) - BigInt(b.id);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
  fc.assert(
    fc.property(key, key, (a, b) => {
      assert.equal(compareRowKeys(a, b), byBigInt(a, b));
      assert.equal(compareDecimal(a.id, b.id), Math.sign(Number(BigInt(a.id) - BigInt(b.id))));
    }),
    { seed: UNITS_SEED, numRuns: 1000 },
  );
  assert.equal(compareRowKeys({ roomId: '9', id: '10000000' }, { roomId: '9', id: '9999999' }), 1);
  assert.equal(compareRowKeys({ roomId: '10', id: '1' }, { roomId: '9', id: '2' }), 1);
});

test('PostgreSQL update: integer array literals in row order, the key range, anything not an integer refused', () => {
  const rows = [
    { roomId: '7', id: '399582233150625793', senderId: '3' },
    { roomId: '2', id: '-5', senderId: '12' },
    { roomId: '7', id: '399582233150625537', senderId: '3' },
  ];
  const [update] = POSTGRES_DIALECT.update(rows);
  assert.deepEqual(update.params, ['{7,2,7}', '{399582233150625793,-5,399582233150625537}', '{3,12,3}', '2', '-5', '7', '399582233150625793']);
  for (const bad of ['1,2', '', ' 1', '1}', '"1"', '1.5', 'NULL']) {
    assert.throws(() => POSTGRES_DIALECT.update([{ roomId: '1', id: '1', senderId: bad }]), /senderId .* is not an integer/);
  }
  assert.equal(integerArrayLiteral([], 'id'), '{}');
});

test('PostgreSQL storable: characters counted as code points, so 250 astral characters fit and 251 do not', () => {
  assert.equal(checkPostgresStorable('😀'.repeat(250), 'host'), null);
  assert.match(checkPostgresStorable('😀'.repeat(251), 'host') ?? '', /user_name longer than 250 characters/);
  assert.match(checkPostgresStorable('user', 'h'.repeat(251)) ?? '', /server longer than 250 characters/);
  assert.match(checkPostgresStorable('user', 'h\u0000') ?? '', /server contains a NUL/);
});
