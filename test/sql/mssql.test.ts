/**
 * MSSQL: no SQL Server can run on our machines, so this suite checks everything up to the server:
 * the statements the dialect generates, their parameter shapes and limits, the URL parsing, the
 * binding of every parameter on the real `mssql` driver, and the driver's connection failure on a
 * real (closed) socket being classified as transient. Running the statements against a server is
 * NOT verified here (README: "MSSQL: what is verified").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sql from 'mssql';
import { bindStatement, MssqlBackend } from '../../clients/backends/sql/mssql.js';
import {
  checkMssqlStorable,
  insertSendersStatements,
  MSSQL_DIALECT,
  MSSQL_MAX_PARAMS,
  MSSQL_SCHEMA_STATEMENTS,
  mssqlConfigFromUrl,
  pageStatement,
  saveCheckpointStatement,
  selectSendersStatements,
  updateStatements,
  type MssqlStatement,
} from '../../clients/backends/sql/mssql-statements.js';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';

/** Every @name in the text is a parameter, every parameter is used, no name twice. */
function assertParamsConsistent(statement: MssqlStatement): void {
  const names = statement.params.map((p) => p.name);
  assert.equal(new Set(names).size, names.length, 'parameter names are unique');
  assert.ok(statement.params.length <= MSSQL_MAX_PARAMS && MSSQL_MAX_PARAMS < 2100, 'under SQL Server’s 2,100 parameters');
  const used = new Set([...statement.sql.matchAll(/@(\w+)/g)].map((m) => m[1]).filter((n) => n !== '@ROWCOUNT' && n !== 'ROWCOUNT'));
  assert.deepEqual([...used].sort(), [...new Set(names)].sort());
}

test('schema statements are the upgrade guide’s, verbatim', () => {
  assert.equal(MSSQL_SCHEMA_STATEMENTS.column, 'ALTER TABLE [dbo].[mam_muc_message] ADD sender_id bigint;');
  assert.equal(MSSQL_SCHEMA_STATEMENTS.index, 'CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message(sender_id);');
});

test('pages: TOP (@limit), keyset after the last key in primary key order, shard filter', () => {
  const first = pageStatement(null, 500, { index: 0, count: 1 });
  assert.match(first.sql, /^SELECT TOP \(@limit\) .* FROM dbo\.mam_muc_message t WHERE sender_id IS NULL ORDER BY t.room_id, t.id$/);
  assert.deepEqual(first.params, [{ name: 'limit', type: 'Int', value: 500 }]);
  const next = pageStatement({ roomId: '12', id: '399582233150625537' }, 500, { index: 2, count: 3 });
  assert.match(
    next.sql,
    /\(room_id > @after_room_id OR \(room_id = @after_room_id AND id > @after_id\)\) AND \(\(room_id % @shard_count\) \+ @shard_count\) % @shard_count = @shard_index ORDER BY t.room_id, t.id$/,
  );
  assert.doesNotMatch(next.sql, /OFFSET/);
  assert.deepEqual(
    next.params.map((p) => [p.name, p.type, p.value]),
    [
      ['limit', 'Int', 500],
      ['after_room_id', 'BigInt', '12'],
      ['after_id', 'BigInt', '399582233150625537'],
      ['shard_count', 'Int', 3],
      ['shard_index', 'Int', 2],
    ],
  );
  for (const s of [first, next]) assertParamsConsistent(s);
});

/**
 * Every key an ORDER BY of a page statement sorts on, as written. The page casts the keys to
 * varchar under their own names, and T-SQL resolves an unqualified ORDER BY name to a select-list
 * alias before a table column: only a name qualified with its table or derived table is safe.
 */
function orderByTerms(sqlText: string): string[] {
  return [...sqlText.matchAll(/ORDER BY ((?:[\w.]+(?: (?:ASC|DESC))?)(?:, [\w.]+(?: (?:ASC|DESC))?)*)/g)].flatMap((m) => m[1].split(', '));
}

test('pages sort by the table’s columns (qualified), never by a select-list alias, in every ORDER BY', () => {
  const shards = [
    { index: 0, count: 1 },
    { index: 2, count: 3 },
  ];
  const statements = shards.flatMap((shard) => [
    pageStatement(null, 10, shard),
    pageStatement({ roomId: '9', id: '10000000' }, 10, shard),
    MSSQL_DIALECT.page(null, { records: 10, bytes: 1000 }, shard),
    MSSQL_DIALECT.page({ roomId: '9', id: '10000000' }, { records: 10, bytes: 1000 }, shard),
    MSSQL_DIALECT.scanPage(null, { records: 10, bytes: 1000 }, shard),
    MSSQL_DIALECT.scanPage({ roomId: '9', id: '10000000' }, { records: 10, bytes: 1000 }, shard),
  ]);
  for (const statement of statements) {
    const terms = orderByTerms(statement.sql);
    assert.ok(terms.length > 0, `an ORDER BY in ${statement.sql}`);
    // Keys only, each qualified, in primary key order.
    for (let i = 0; i < terms.length; i += 2) {
      assert.match(terms[i], /^\w+\.room_id$/, `${terms[i]} in ${statement.sql}`);
      assert.match(terms[i + 1], /^\w+\.id$/, `${terms[i + 1]} in ${statement.sql}`);
    }
    // The qualifier is a table or derived-table alias of the statement, not a column alias.
    for (const term of terms) {
      const qualifier = term.split('.')[0];
      assert.match(statement.sql, new RegExp(`(mam_muc_message|\\)) (AS )?${qualifier}\\b`), `${qualifier} names a source of ${statement.sql}`);
    }
  }
  // The window of the byte bound sorts the same keys as the page.
  assert.match(MSSQL_DIALECT.page(null, { records: 10, bytes: 1000 }, shards[0]).sql, /OVER \(ORDER BY s\.room_id, s\.id ROWS/);
});

test('verify --complete scan: the walk without the sender_id IS NULL filter, each row joined to its mam_server_user row', () => {
  for (const shard of [
    { index: 0, count: 1 },
    { index: 1, count: 4 },
  ]) {
    for (const after of [null, { roomId: '3', id: '26600000' }]) {
      const page = MSSQL_DIALECT.page(after, { records: 7, bytes: 500 }, shard);
      const scan = MSSQL_DIALECT.scanPage(after, { records: 7, bytes: 500 }, shard);
      assert.match(page.sql, /sender_id IS NULL/);
      assert.doesNotMatch(scan.sql, /sender_id IS NULL/);
      assert.match(scan.sql, /LEFT JOIN dbo\.mam_server_user u ON u\.id = m\.sender_id /);
      assert.match(scan.sql, /CAST\(m\.sender_id AS varchar\(20\)\) AS sender_id, u\.server, u\.user_name FROM/);
      // The same keyset, bound and parameters as the walk's page: taking away what the scan
      // adds (the sender's columns and join) and putting back the filter gives the page itself.
      assert.deepEqual(scan.params, page.params);
      assert.equal(
        scan.sql
          .replace(/, CAST\(m\.sender_id.*? FROM \(/, ' FROM (')
          .replace('LEFT JOIN dbo.mam_server_user u ON u.id = m.sender_id ', '')
          .replace(/ WHERE \(room_id/, ' WHERE sender_id IS NULL AND (room_id')
          .replace(/ t WHERE \(\(room_id %/, ' t WHERE sender_id IS NULL AND ((room_id %')
          .replace(/ t ORDER BY/, ' t WHERE sender_id IS NULL ORDER BY'),
        page.sql,
      );
      assertParamsConsistent(scan);
    }
  }
});

test('end-of-run accounting: keys of rows still NULL through the index on sender_id, with the shard filter', () => {
  const whole = MSSQL_DIALECT.unwrittenKeys({ index: 0, count: 1 }, 1001);
  assert.equal(
    whole.sql,
    'SELECT TOP (@limit) CAST(room_id AS varchar(20)) AS room_id, CAST(id AS varchar(20)) AS id ' +
      'FROM dbo.mam_muc_message WITH (INDEX(i_mam_muc_message_sender_id)) WHERE sender_id IS NULL',
  );
  assert.deepEqual(whole.params, [{ name: 'limit', type: 'Int', value: 1001 }]);
  const shard = MSSQL_DIALECT.unwrittenKeys({ index: 2, count: 3 }, 11);
  assert.match(shard.sql, /WHERE sender_id IS NULL AND \(\(room_id % @shard_count\) \+ @shard_count\) % @shard_count = @shard_index$/);
  for (const s of [whole, shard]) assertParamsConsistent(s);
  assert.deepEqual(MSSQL_DIALECT.unwrittenKeysSettings, []);
});

test('update: one UPDATE ... JOIN (VALUES ...) per chunk under the parameter limit, only where sender_id IS NULL', () => {
  const rows = Array.from({ length: 1500 }, (_, i) => ({ roomId: String(i % 7), id: String(399582233150625537n + BigInt(i)), senderId: String(1000 + i) }));
  const statements = updateStatements(rows);
  assert.equal(statements.length, Math.ceil(1500 / Math.floor(MSSQL_MAX_PARAMS / 3)));
  const seen: string[] = [];
  for (const s of statements) {
    assert.match(
      s.sql,
      /^UPDATE m SET m\.sender_id = v\.sid FROM dbo\.mam_muc_message AS m JOIN \(VALUES \(@r\d+, @i\d+, @s\d+\)(, \(@r\d+, @i\d+, @s\d+\))*\) AS v\(room_id, id, sid\) ON m\.room_id = v\.room_id AND m\.id = v\.id WHERE m\.sender_id IS NULL$/,
    );
    assert.ok(s.params.every((p) => p.type === 'BigInt'));
    assertParamsConsistent(s);
    for (let k = 0; k < s.params.length; k += 3) seen.push(`${s.params[k].value}/${s.params[k + 1].value}/${s.params[k + 2].value}`);
  }
  assert.deepEqual(
    seen,
    rows.map((r) => `${r.roomId}/${r.id}/${r.senderId}`),
    'every row once, in order, values intact',
  );
  assert.deepEqual(updateStatements([]), []);
});

test('sender ids: select tagged by pair index, race-safe insert of the missing ones', () => {
  const pairs = Array.from({ length: 1500 }, (_, i) => ({ server: 'example.com', user: `user${i}` }));
  const selects = selectSendersStatements(pairs);
  assert.ok(selects.length >= 2);
  const indexes = selects.flatMap((s) => s.params.filter((p) => p.type === 'Int').map((p) => p.value));
  assert.deepEqual(
    indexes,
    pairs.map((_, i) => i),
  );
  for (const s of selects) {
    assert.match(s.sql, /JOIN \(VALUES .*\) AS p\(pair, server, user_name\) ON u\.server = p\.server AND u\.user_name = p\.user_name$/);
    assertParamsConsistent(s);
  }
  const inserts = insertSendersStatements(pairs);
  for (const s of inserts) {
    assert.match(s.sql, /^INSERT INTO dbo\.mam_server_user \(server, user_name\) SELECT p\.server, p\.user_name FROM \(VALUES /);
    assert.match(
      s.sql,
      /WHERE NOT EXISTS \(SELECT 1 FROM dbo\.mam_server_user u WITH \(UPDLOCK, HOLDLOCK\) WHERE u\.server = p\.server AND u\.user_name = p\.user_name\)$/,
    );
    assert.ok(s.params.every((p) => p.type === 'NVarChar'));
    assertParamsConsistent(s);
  }
  assert.equal(
    inserts.reduce((n, s) => n + s.params.length, 0),
    3000,
  );
});

test('checkpoint: update, insert when absent, in the batch transaction', () => {
  const s = saveCheckpointStatement({ index: 1, count: 4 }, { roomId: '5', id: '6' });
  assert.match(s.sql, /^UPDATE dbo\.mim_sender_jid_checkpoint SET .* WHERE shard = @shard; IF @@ROWCOUNT = 0 INSERT INTO dbo\.mim_sender_jid_checkpoint/);
  assert.deepEqual(
    s.params.map((p) => [p.name, p.type, p.value]),
    [
      ['shard', 'NVarChar', '1/4'],
      ['room_id', 'BigInt', '5'],
      ['id', 'BigInt', '6'],
    ],
  );
});

test('nvarchar(250) counts UTF-16 units', () => {
  assert.equal(checkMssqlStorable('😀'.repeat(125), 'h'), null);
  assert.match(checkMssqlStorable('😀'.repeat(126), 'h') ?? '', /252 UTF-16 units/);
});

test('URL: mssql://user:password@host:port/db?flags to the driver config; ADO strings pass through', () => {
  assert.deepEqual(mssqlConfigFromUrl('mssql://sa:p%40ss@db.example.com:1444/mongooseim?trustServerCertificate=true'), {
    server: 'db.example.com',
    port: 1444,
    database: 'mongooseim',
    user: 'sa',
    password: 'p@ss',
    options: { encrypt: true, trustServerCertificate: true },
  });
  assert.equal((mssqlConfigFromUrl('sqlserver://u:p@h/d?encrypt=false') as { options: { encrypt: boolean } }).options.encrypt, false);
  const ado = 'Server=db,1433;Database=mongooseim;User Id=sa;Password=x;Encrypt=true';
  assert.equal(mssqlConfigFromUrl(ado), ado);
});

test('the real mssql driver accepts every statement’s parameters with the intended types', () => {
  const statements = [
    pageStatement({ roomId: '1', id: '2' }, 10, { index: 0, count: 2 }),
    MSSQL_DIALECT.scanPage({ roomId: '1', id: '2' }, { records: 10, bytes: 100 }, { index: 0, count: 2 }),
    MSSQL_DIALECT.unwrittenKeys({ index: 1, count: 2 }, 10),
    ...updateStatements([{ roomId: '1', id: '399582233150625537', senderId: '3' }]),
    ...selectSendersStatements([{ server: 'ελλάδα.gr', user: 'σασ' }]),
    ...insertSendersStatements([{ server: 'example.com', user: 'zoë😀' }]),
    saveCheckpointStatement({ index: 0, count: 1 }, { roomId: '1', id: '2' }),
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

test('driver on a real socket: a refused connection fails clearly and counts as transient', async () => {
  const port = await freeLoopbackPort();
  const backend = new MssqlBackend({ url: `mssql://sa:secret@127.0.0.1:${port}/mongooseim?encrypt=false` });
  try {
    await assert.rejects(backend.checkSchema(), (error: unknown) => {
      assert.match((error as Error).message, /127\.0\.0\.1|ECONNREFUSED|connect/i);
      assert.equal(backend.isTransient(error), true);
      return true;
    });
  } finally {
    await backend.close();
  }
});
