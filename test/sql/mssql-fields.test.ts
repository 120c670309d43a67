/**
 * MSSQL's `--field origin_id|is_groupchat` statements, tested as MSSQL is (no SQL Server runs
 * here; README "MSSQL: what is verified"): the guides' schema statements verbatim, the generated
 * pages and writes (their shape, the default-only condition, chunks under the parameter limit) and
 * the binding of every parameter on the real `mssql` driver. The same backend class runs them as
 * PostgreSQL's and MariaDB's, which field-walk-suite.ts runs against real servers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sql from 'mssql';
import { fieldTargets, type FieldTarget, type WalkTarget } from '../../clients/backends/sql/field-statements.js';
import { bindStatement, MssqlDriver } from '../../clients/backends/sql/mssql.js';
import { SqlFieldBackend } from '../../clients/backends/sql/field-backend.js';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { fieldPageStatement, fieldUpdateStatements, MSSQL_FIELD_DIALECT } from '../../clients/backends/sql/mssql-field-statements.js';
import { MSSQL_MAX_PARAMS, type MssqlStatement } from '../../clients/backends/sql/mssql-statements.js';

const ORIGIN_ROOMS: FieldTarget = { table: 'mam_muc_message', field: 'origin_id' };
const ORIGIN_USERS: FieldTarget = { table: 'mam_message', field: 'origin_id' };
const GROUPCHAT: FieldTarget = { table: 'mam_message', field: 'is_groupchat' };
const WALK_ORIGIN_ROOMS: WalkTarget = { table: 'mam_muc_message', fields: ['origin_id'] };
const WALK_ORIGIN_USERS: WalkTarget = { table: 'mam_message', fields: ['origin_id'] };
const WALK_GROUPCHAT: WalkTarget = { table: 'mam_message', fields: ['is_groupchat'] };
const WALK_BOTH: WalkTarget = { table: 'mam_message', fields: ['origin_id', 'is_groupchat'] };

/** Every @name in the text is a parameter, every parameter is used, no name twice, under the limit. */
function assertParamsConsistent(statement: MssqlStatement): void {
  const names = statement.params.map((p) => p.name);
  assert.equal(new Set(names).size, names.length, 'parameter names are unique');
  assert.ok(statement.params.length <= MSSQL_MAX_PARAMS);
  const used = new Set([...statement.sql.matchAll(/@(\w+)/g)].map((m) => m[1]).filter((n) => n !== 'ROWCOUNT' && n !== 'result'));
  assert.deepEqual([...used].sort(), [...new Set(names)].sort(), statement.sql.slice(0, 120));
}

test('schema statements are the guides’ for SQL Server, verbatim (3.6.0 -> 3.7.0, 6.2.0 -> 6.2.1)', () => {
  assert.deepEqual(MSSQL_FIELD_DIALECT.schemaStatements(ORIGIN_USERS), {
    column: 'ALTER TABLE mam_message ADD origin_id nvarchar(250) NULL;',
    index: 'CREATE INDEX i_mam_message_username_jid_origin_id ON mam_message (user_id, remote_bare_jid, origin_id);',
  });
  assert.deepEqual(MSSQL_FIELD_DIALECT.schemaStatements(ORIGIN_ROOMS), {
    column: 'ALTER TABLE mam_muc_message ADD origin_id nvarchar(250) NULL;',
    index: 'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id ON mam_muc_message (room_id, sender_id, origin_id);',
  });
  assert.deepEqual(MSSQL_FIELD_DIALECT.schemaStatements(GROUPCHAT), {
    column: 'ALTER TABLE mam_message ADD is_groupchat smallint NOT NULL DEFAULT 0;',
    index: null,
  });
  assert.deepEqual(
    fieldTargets('origin_id').map((t) => t.table),
    ['mam_muc_message', 'mam_message'],
  );
  assert.deepEqual(
    fieldTargets('is_groupchat').map((t) => t.table),
    ['mam_message'],
  );
  for (const target of [ORIGIN_ROOMS, ORIGIN_USERS, GROUPCHAT]) {
    const check = MSSQL_FIELD_DIALECT.schemaCheck(target).sql;
    assert.match(check, new RegExp(`COL_LENGTH\\('dbo\\.${target.table}', '${target.field}'\\)`));
  }
});

test('pages: TOP (@limit) rows still holding the default (every row for a scan), keyset on the table’s own key, shard on its owner, qualified ORDER BYs', () => {
  const limits = { records: 50, bytes: 4096 };
  const first = fieldPageStatement(WALK_ORIGIN_USERS, null, limits, { index: 0, count: 1 }, false);
  assert.match(
    first.sql,
    /SELECT TOP \(@limit\) t\.user_id AS owner, t\.id, DATALENGTH\(t\.message\) AS len FROM dbo\.mam_message t WHERE t\.origin_id IS NULL ORDER BY t\.user_id, t\.id/,
  );
  assert.match(first.sql, /k\.candidates, m\.origin_id FROM/);
  assert.deepEqual(
    first.params.map((p) => [p.name, p.type, p.value]),
    [
      ['limit', 'Int', 50],
      ['bytes', 'BigInt', 4096],
    ],
  );
  const next = fieldPageStatement(WALK_GROUPCHAT, { owner: '7', id: '399582233150625537' }, limits, { index: 2, count: 3 }, false);
  assert.match(
    next.sql,
    /WHERE t\.is_groupchat = 0 AND \(t\.user_id > @after_owner OR \(t\.user_id = @after_owner AND t\.id > @after_id\)\) AND \(\(t\.user_id % @shard_count\) \+ @shard_count\) % @shard_count = @shard_index ORDER BY/,
  );
  const scan = fieldPageStatement(WALK_ORIGIN_ROOMS, { owner: '1', id: '2' }, limits, { index: 0, count: 1 }, true);
  assert.doesNotMatch(scan.sql, /IS NULL/, 'a scan reads every row');
  assert.match(scan.sql, /FROM dbo\.mam_muc_message t WHERE \(t\.room_id > @after_owner/);
  // Both fields: a row still holding either default is read, and both columns come back.
  const both = fieldPageStatement(WALK_BOTH, null, limits, { index: 0, count: 1 }, false);
  assert.match(both.sql, /FROM dbo\.mam_message t WHERE \(t\.origin_id IS NULL OR t\.is_groupchat = 0\) ORDER BY/);
  assert.match(both.sql, /k\.candidates, m\.origin_id, m\.is_groupchat FROM/);
  for (const s of [first, next, scan, both]) {
    assertParamsConsistent(s);
    const orderBys = [...s.sql.matchAll(/ORDER BY ([\w., ]+?)(?: ROWS|\)|$)/g)].flatMap((m) => m[1].split(', '));
    assert.ok(orderBys.length >= 3);
    for (const term of orderBys) assert.match(term, /^[smt]\.\w+$/, `ORDER BY ${term} is qualified`);
  }
});

test('writes: each column only from its default, the id as NVarChar, chunked under the parameter limit; both fields in one statement', () => {
  const rows = Array.from({ length: 1500 }, (_, i) => ({
    owner: String(1 + (i % 4)),
    id: String(399582233150625537n + BigInt(i)),
    origin_id: `id-${i}-zoë😀`,
  }));
  const origin = fieldUpdateStatements(WALK_ORIGIN_ROOMS, rows);
  assert.ok(origin.length >= 3, 'three parameters a row: 1,500 rows need several statements');
  assert.equal(
    origin.reduce((n, s) => n + s.params.length / 3, 0),
    rows.length,
  );
  for (const s of origin) {
    assert.match(s.sql, /^UPDATE m SET m\.origin_id = COALESCE\(m\.origin_id, v\.origin_id\) FROM dbo\.mam_muc_message AS m JOIN \(VALUES /);
    assert.match(s.sql, /AS v\(owner, id, origin_id\) ON m\.room_id = v\.owner AND m\.id = v\.id WHERE \(m\.origin_id IS NULL AND v\.origin_id IS NOT NULL\)$/);
    assertParamsConsistent(s);
  }
  const groupchat = fieldUpdateStatements(
    WALK_GROUPCHAT,
    rows.map((r) => ({ owner: r.owner, id: r.id, is_groupchat: true as const })),
  );
  assert.equal(groupchat.length, 2, 'two parameters a row');
  for (const s of groupchat) {
    assert.match(
      s.sql,
      /^UPDATE m SET m\.is_groupchat = CASE WHEN v\.is_groupchat = 1 THEN 1 ELSE m\.is_groupchat END FROM dbo\.mam_message AS m JOIN \(VALUES \(@o\d+, @i\d+, 1\).*\) AS v\(owner, id, is_groupchat\) ON m\.user_id = v\.owner AND m\.id = v\.id WHERE \(m\.is_groupchat = 0 AND v\.is_groupchat = 1\)$/,
    );
    assertParamsConsistent(s);
  }
  // Both: a row's absent origin_id is a NULL parameter (the column keeps what it holds), its groupchat a literal.
  const [both] = fieldUpdateStatements(WALK_BOTH, [
    { owner: '1', id: '10', origin_id: 'a' },
    { owner: '1', id: '11', is_groupchat: true },
  ]);
  assert.match(both.sql, /SET m\.origin_id = COALESCE\(m\.origin_id, v\.origin_id\), m\.is_groupchat = CASE/);
  assert.match(both.sql, /\(VALUES \(@o0, @i0, @v0, 0\), \(@o1, @i1, @v1, 1\)\) AS v\(owner, id, origin_id, is_groupchat\)/);
  assert.match(both.sql, /WHERE \(m\.origin_id IS NULL AND v\.origin_id IS NOT NULL\) OR \(m\.is_groupchat = 0 AND v\.is_groupchat = 1\)$/);
  assert.deepEqual(
    both.params.filter((p) => p.name.startsWith('v')).map((p) => [p.name, p.type, p.value]),
    [
      ['v0', 'NVarChar', 'a'],
      ['v1', 'NVarChar', null],
    ],
  );
  assertParamsConsistent(both);
});

test('an origin-id longer than nvarchar(250) is not storable (counted in UTF-16 units)', () => {
  assert.equal(MSSQL_FIELD_DIALECT.checkStorable('x'.repeat(250)), null);
  assert.match(MSSQL_FIELD_DIALECT.checkStorable('x'.repeat(251)) ?? '', /251 UTF-16 code units, longer than 250/);
  assert.match(MSSQL_FIELD_DIALECT.checkStorable('😀'.repeat(126)) ?? '', /252 UTF-16/);
});

test('the real mssql driver accepts every field statement’s parameters with the intended types', () => {
  const name = 'mam_message.origin_id 0/2';
  const statements: MssqlStatement[] = [
    fieldPageStatement(WALK_ORIGIN_USERS, { owner: '1', id: '2' }, { records: 10, bytes: 100 }, { index: 0, count: 2 }, false),
    MSSQL_FIELD_DIALECT.exactCount(WALK_GROUPCHAT, { index: 1, count: 2 }),
    MSSQL_FIELD_DIALECT.exactCount(WALK_BOTH, { index: 1, count: 2 }),
    ...fieldUpdateStatements(WALK_ORIGIN_USERS, [{ owner: '1', id: '399582233150625537', origin_id: 'ελλάδα-😀' }]),
    ...fieldUpdateStatements(WALK_GROUPCHAT, [{ owner: '1', id: '399582233150625537', is_groupchat: true }]),
    ...fieldUpdateStatements(WALK_BOTH, [
      { owner: '1', id: '399582233150625537', is_groupchat: true },
      { owner: '1', id: '399582233150625538', origin_id: 'x' },
    ]),
    MSSQL_FIELD_DIALECT.verifySample(WALK_ORIGIN_ROOMS, 10),
    MSSQL_FIELD_DIALECT.verifySample(WALK_BOTH, 10),
    MSSQL_FIELD_DIALECT.readCheckpoint(name),
    MSSQL_FIELD_DIALECT.saveCheckpoint(name, '1', '2'),
    MSSQL_FIELD_DIALECT.deleteCheckpoint(name),
    MSSQL_FIELD_DIALECT.lock(name),
    MSSQL_FIELD_DIALECT.unlock(name),
  ];
  const expectedType = { BigInt: sql.BigInt, Int: sql.Int, NVarChar: sql.NVarChar } as const;
  for (const statement of statements) {
    const request = bindStatement(new sql.Request(), statement);
    const bound = request.parameters as Record<string, { type: unknown; value: unknown; length?: number }>;
    assert.deepEqual(Object.keys(bound).sort(), statement.params.map((p) => p.name).sort());
    for (const p of statement.params) {
      assert.equal(bound[p.name].type, expectedType[p.type], `${p.name} bound as ${p.type}`);
      assert.equal(bound[p.name].value, p.value);
      if (p.type === 'NVarChar') assert.equal(bound[p.name].length, 250);
    }
  }
});

test('the field backend on the real mssql driver: a closed port is a transient failure, nothing else', async () => {
  const port = await freeLoopbackPort();
  const backend = new SqlFieldBackend(
    'mssql',
    'origin_id',
    MSSQL_FIELD_DIALECT,
    new MssqlDriver({ url: `mssql://sa:secret@127.0.0.1:${port}/mongooseim?encrypt=false` }),
  );
  try {
    await assert.rejects(backend.checkSchema(), (error: unknown) => {
      assert.equal(backend.isTransient(error), true);
      return true;
    });
  } finally {
    await backend.close();
  }
});
