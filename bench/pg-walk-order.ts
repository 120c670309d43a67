/**
 * What PostgreSQL spends per row on the backfill's statements, by walk order: the key-order walk
 * (today's page and write) against a walk in heap order (pages as block ranges read by a TID
 * Range Scan, written by ctid with the key as a guard, or by key), against the in-database
 * UPDATE. Each variant runs alone on a fresh checkpointed copy of the same table; the CPU is read
 * from /proc for the reading backend, the writing backend and the whole cluster.
 *
 * Variants (`--only`, comma-separated, run in that order, each on its own copy):
 * - `in-database`: one `UPDATE mam_muc_message SET sender_id = (id % 100000)::int`;
 * - `key`: today's walk, the dialect's own page (binary COPY) and write, the checkpoint upsert;
 * - `heap-ctid`, `heap-ctid-range`, `heap-key`: fixed block ranges of about `--batch` rows, read
 *   without a byte bound, written by ctid + key guard, the same with the range's ctid bounds, or
 *   by key alone;
 * - `heap-walk`: the walk as it would be built (see heapWalk), `heap-walk-tail` the same with an
 *   open last range, `heap-walk-case` the byte bound without COUNT(*) OVER ().
 * Sender ids are an expression of the id, or with `--senders` resolved as the migration does
 * (SenderIdResolver on a third connection) for the senders the payloads name; nothing is decoded.
 * `--explain` prints the fourth write's plan of each variant and the first page's of `heap-walk*`.
 *
 *   npm run build && node dist/bench/pg-walk-order.js [--rows 200000] [--batch 2000] [--only key,heap-walk] [--senders] [--explain]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { demoPayload, fillDemoArchive } from '../cli/demo/demo-data.js';
import { seededRandom } from '../cli/demo/seeded-random.js';
import { SenderIdResolver } from '../clients/backends/sql/sender-id-resolver.js';
import { senderIdsOf } from '../clients/backends/sql/sender-id-cache.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../cli/demo/mongooseim-33-schema.js';
import { copyRowsBinary } from '../clients/backends/sql/pg-binary-copy.js';
import { PAGE_READER_SETTINGS } from '../clients/backends/sql/postgres.js';
import { POSTGRES_CHECKPOINT_SQL, POSTGRES_DIALECT, PG_CHECKPOINT_TABLE_SQL } from '../clients/backends/sql/postgres-statements.js';
import type { RowKey, SenderPair, SqlRow, SqlStatement } from '../clients/backends/sql/sql-dialect.js';
import { startPostgres } from '../test/support/postgres.js';
import { CLOCK_TICKS, postgresCpuSeconds } from './proc-cpu.js';

/** `--explain`: also the plan of the first page of `heap-walk*`. */
let explainPages = false;

function pidTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function clusterTicks(dataDir: string): number {
  return Math.round(postgresCpuSeconds(dataDir) * CLOCK_TICKS);
}

const senderOf = (id: string): string => String(Number(id.slice(-5)) % 100000);

const FIRST_MESSAGE_ID = 399582233150625537n;
const DOMAINS = ['example.com', 'example.org', 'chat.example.net', 'brzęczyszczykiewicz.pl'];

/**
 * The sender of each row `fillDemoArchive` made (seed 42), by replaying its random draws: the
 * first draw of each `demoPayload` picks the sender, the draw after it the room. The JIDs are
 * close to what the decoder gives (same senders, same count), enough for the statements' cost.
 */
function replayedSenders(rows: number): SenderPair[] {
  const random = seededRandom(42);
  const senders = Math.max(1, Math.min(50_000, Math.ceil(rows / 20)));
  const pairs: SenderPair[] = [];
  for (let n = 0; n < rows; n++) {
    let first = -1;
    demoPayload(
      n,
      () => {
        const v = random();
        if (first < 0) first = v;
        return v;
      },
      senders,
    );
    random();
    const sender = Math.floor(first * senders);
    pairs.push({ user: `${sender % 7 === 0 ? 'ünïcødé' : 'user'}${sender}`, server: DOMAINS[sender % DOMAINS.length] });
  }
  return pairs;
}

interface Variant {
  name: string;
  /** Next page after `cursor` (a key or a block), null when done. */
  page(reader: pg.PoolClient, cursor: unknown): Promise<{ rows: SqlRow[]; next: unknown } | null>;
  /** `sids`: the sender id of each row. */
  write(writer: pg.PoolClient, rows: SqlRow[], next: unknown, sids: readonly string[]): Promise<void>;
}

function keyOrder(batch: number): Variant {
  return {
    name: 'key',
    async page(reader, cursor) {
      const statement = POSTGRES_DIALECT.page(cursor as RowKey | null, { records: batch, bytes: 64 * 1024 * 1024 }, { index: 0, count: 1 });
      const rows = await copyRowsBinary(reader, statement, ['room_id', 'id', 'message', 'candidates'], ['integer', 'text', 'bytea', 'integer']);
      if (rows.length === 0) return null;
      const last = rows[rows.length - 1];
      return { rows, next: { roomId: String(last.room_id), id: String(last.id) } };
    },
    async write(writer, rows, next, sids) {
      const keyed = rows.map((r, i) => ({ roomId: String(r.room_id), id: String(r.id), senderId: sids[i] }));
      await writer.query('BEGIN');
      for (const s of POSTGRES_DIALECT.update(keyed)) await writer.query(s.sql, s.params as unknown[]);
      const n = next as RowKey;
      await writer.query(POSTGRES_CHECKPOINT_SQL, ['bench', n.roomId, n.id]);
      await writer.query('COMMIT');
    },
  };
}

type HeapWrite = 'ctid' | 'ctid-range' | 'key';

function heapOrder(blocksPerPage: number, totalBlocks: number, how: HeapWrite): Variant {
  return {
    name: `heap-${how}`,
    async page(reader, cursor) {
      const from = (cursor as number | null) ?? 0;
      if (from >= totalBlocks) return null;
      const to = from + blocksPerPage;
      const statement: SqlStatement = {
        sql: `SELECT ctid::text AS ctid, room_id, id::text AS id, message FROM mam_muc_message WHERE ctid >= '(${from},0)'::tid AND ctid < '(${to},0)'::tid AND sender_id IS NULL`,
        params: [],
      };
      const rows = await copyRowsBinary(reader, statement, ['ctid', 'room_id', 'id', 'message'], ['text', 'integer', 'text', 'bytea']);
      return { rows, next: to };
    },
    async write(writer, rows, next, sids) {
      const to = next as number;
      const from = to - blocksPerPage;
      await writer.query('BEGIN');
      if (rows.length > 0) {
        const { tids, rooms, ids, sidArray } = arrayLiterals(rows, sids);
        if (how === 'key') {
          await writer.query(
            `UPDATE mam_muc_message m SET sender_id = v.sid FROM unnest($1::int[], $2::bigint[], $3::int[]) AS v(r, i, sid)
              WHERE m.room_id = v.r AND m.id = v.i AND m.sender_id IS NULL`,
            [rooms, ids, sidArray],
          );
        } else {
          const range = how === 'ctid-range' ? ` AND m.ctid >= '(${from},0)'::tid AND m.ctid < '(${to},0)'::tid` : '';
          await writer.query(
            `UPDATE mam_muc_message m SET sender_id = v.sid FROM unnest($1::tid[], $2::int[], $3::bigint[], $4::int[]) AS v(t, r, i, sid)
              WHERE m.ctid = v.t AND m.room_id = v.r AND m.id = v.i AND m.sender_id IS NULL${range}`,
            [tids, rooms, ids, sidArray],
          );
        }
      }
      await writer.query(POSTGRES_CHECKPOINT_SQL, ['bench', String(to), '0']);
      await writer.query('COMMIT');
    },
  };
}

/** The write's arrays as PostgreSQL array literals, as the migration sends them. */
function arrayLiterals(rows: readonly Record<string, unknown>[], sids: readonly unknown[]): { tids: string; rooms: string; ids: string; sidArray: string } {
  return {
    tids: '{' + rows.map((r) => `"${String(r.ctid)}"`).join(',') + '}',
    rooms: '{' + rows.map((r) => String(r.room_id)).join(',') + '}',
    ids: '{' + rows.map((r) => String(r.id)).join(',') + '}',
    sidArray: '{' + sids.join(',') + '}',
  };
}

/** Runs `write` with its UPDATE statements under EXPLAIN (ANALYZE, BUFFERS), printing the plans. */
async function explained(client: pg.PoolClient, write: () => Promise<void>): Promise<void> {
  const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
  (client as unknown as { query: unknown }).query = async (text: string, params?: unknown[]) => {
    if (!text.trimStart().startsWith('UPDATE')) return query(text, params);
    const plan = await query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
    process.stdout.write(plan.rows.map((r: Record<string, unknown>) => `    ${String(r['QUERY PLAN'])}`).join('\n') + '\n');
    return plan;
  };
  try {
    await write();
  } finally {
    (client as unknown as { query: unknown }).query = query;
  }
}

/**
 * The walk as it would be built: the cursor is a ctid (the next one to read), a page is at most
 * `batch` rows of a block range, cut inside the query once the payloads pass the byte bound (a
 * running sum in the scan's own order, no Sort), and the last range is open: the walk ends only
 * once its cursor passes the heap's size read again (rows moved behind the planned end, and the
 * new versions of the walk's own writes, are read there) in `heap-walk-tail`; `heap-walk` ends at
 * the heap's size when the walk began.
 */
function heapWalk(blocksPerPage: number, totalBlocks: number, batch: number, tail: boolean, cased = false): Variant {
  let known = totalBlocks;
  return {
    name: tail ? 'heap-walk-tail' : cased ? 'heap-walk-case' : 'heap-walk',
    async page(reader, cursor) {
      let { block, offset } = (cursor as { block: number; offset: number } | null) ?? { block: 0, offset: 0 };
      if (block >= known && tail) {
        known = Number(
          (await reader.query<{ n: string }>(`SELECT (pg_relation_size('mam_muc_message') / current_setting('block_size')::int)::text AS n`)).rows[0].n,
        );
      }
      if (block >= known) return null;
      const end = block + blocksPerPage;
      const bound = 64 * 1024 * 1024;
      const range = `ctid >= '(${block},${offset})'::tid AND ctid < '(${end},0)'::tid AND sender_id IS NULL LIMIT ${batch}`;
      // `case`: no COUNT(*) OVER () (which holds the whole page before the first row goes out):
      // rows past the byte bound come without their payload, and the first of them is the cut.
      const statement: SqlStatement = {
        sql: cased
          ? `SELECT s.ctid::text AS ctid, s.room_id, s.id::text AS id,
                    CASE WHEN SUM(octet_length(s.message)) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) <= ${bound}::bigint OR row_number() OVER () = 1 THEN s.message END AS message,
                    0 AS candidates
               FROM (SELECT ctid, room_id, id, message FROM mam_muc_message WHERE ${range}) s`
          : `SELECT k.ctid::text AS ctid, k.room_id, k.id::text AS id, k.message, k.candidates::int AS candidates FROM (
                SELECT s.ctid, s.room_id, s.id, s.message, octet_length(s.message) AS len,
                       SUM(octet_length(s.message)) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running,
                       COUNT(*) OVER () AS candidates
                  FROM (SELECT ctid, room_id, id, message FROM mam_muc_message WHERE ${range}) s
              ) k WHERE k.running <= ${bound}::bigint OR k.running = k.len`,
        params: [],
      };
      if (explainPages && block === 0 && offset === 0) {
        const plan = await reader.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement.sql}`);
        process.stdout.write(plan.rows.map((r: Record<string, unknown>) => `    ${String(r['QUERY PLAN'])}`).join('\n') + '\n');
      }
      const rows = await copyRowsBinary(reader, statement, ['ctid', 'room_id', 'id', 'message', 'candidates'], ['text', 'integer', 'text', 'bytea', 'integer']);
      if (cased) {
        const cut = rows.findIndex((r) => r.message === null);
        if (cut >= 0) rows.length = cut;
      }
      const candidates = rows.length === 0 ? 0 : cased ? rows.length : Number(rows[0].candidates);
      if (candidates >= batch || rows.length < candidates) {
        const [b, o] = String(rows[rows.length - 1].ctid)
          .slice(1, -1)
          .split(',')
          .map(Number);
        block = b;
        offset = o + 1;
      } else {
        block = end;
        offset = 0;
      }
      return { rows, next: { block, offset, from: (cursor as { block: number } | null)?.block ?? 0, end } };
    },
    async write(writer, rows, next, sids) {
      const n = next as { block: number; offset: number; from: number; end: number };
      await writer.query('BEGIN');
      if (rows.length > 0) {
        const { tids, rooms, ids, sidArray } = arrayLiterals(rows, sids);
        await writer.query(
          `UPDATE mam_muc_message m SET sender_id = v.sid FROM unnest($1::tid[], $2::int[], $3::bigint[], $4::int[]) AS v(t, r, i, sid)
            WHERE m.ctid = v.t AND m.room_id = v.r AND m.id = v.i AND m.sender_id IS NULL
              AND m.ctid >= '(${n.from},0)'::tid AND m.ctid < '(${n.end},0)'::tid`,
          [tids, rooms, ids, sidArray],
        );
      }
      await writer.query(POSTGRES_CHECKPOINT_SQL, ['bench', String(n.block), String(n.offset)]);
      await writer.query('COMMIT');
    },
  };
}

async function backendPid(client: pg.PoolClient): Promise<number> {
  return Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '200000' },
      batch: { type: 'string', default: '2000' },
      only: { type: 'string', default: 'in-database,key,heap-ctid,heap-ctid-range,heap-key,heap-walk' },
      explain: { type: 'boolean', default: false },
      // Sender ids resolved as the migration does (SenderIdResolver on a third connection, its cache, mam_server_user inserts).
      senders: { type: 'boolean', default: false },
    },
  });
  explainPages = values.explain;
  const rows = Number(values.rows);
  const batch = Number(values.batch);
  const server = await startPostgres({ durable: true });
  try {
    const loader = new pg.Client({ connectionString: server.url });
    await loader.connect();
    for (const s of MONGOOSEIM_33_PG_SCHEMA) await loader.query(s);
    await fillDemoArchive(loader, rows);
    await loader.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT');
    await loader.query('CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id)');
    await loader.query(PG_CHECKPOINT_TABLE_SQL);
    await loader.query('VACUUM ANALYZE mam_muc_message');
    await loader.end();
    const pairs = values.senders ? replayedSenders(rows) : [];
    const admin = new pg.Client({ connectionString: server.url.replace(/\/mim$/, '/postgres') });
    await admin.connect();
    const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    process.stdout.write(`${new Date().toISOString()} rows ${rows}, batch ${batch}, load ${load()}\n`);
    for (const name of values.only.split(',')) {
      await admin.query(`CREATE DATABASE bench_copy TEMPLATE mim STRATEGY FILE_COPY`);
      await admin.query('CHECKPOINT');
      const url = server.url.replace(/\/mim$/, '/bench_copy');
      const pool = new pg.Pool({ connectionString: url, max: 3 });
      const reader = await pool.connect();
      const writer = await pool.connect();
      await reader.query(PAGE_READER_SETTINGS);
      const { rows: rel } = await reader.query<{ blocks: string; tuples: number }>(
        `SELECT (pg_relation_size('mam_muc_message') / current_setting('block_size')::int)::text AS blocks, reltuples::float8 AS tuples FROM pg_class WHERE relname = 'mam_muc_message'`,
      );
      const totalBlocks = Number(rel[0].blocks);
      const blocksPerPage = Math.max(1, Math.round((batch * totalBlocks) / rel[0].tuples));
      const idsClient = await pool.connect();
      const resolver = new SenderIdResolver(POSTGRES_DIALECT, {
        query: async (st) => {
          const r = await idsClient.query(st.sql, st.params as unknown[]);
          return { rows: r.rows as SqlRow[], rowCount: r.rowCount ?? 0 };
        },
      });
      const sidsOf = async (page: SqlRow[]): Promise<string[]> => {
        if (!values.senders) return page.map((r) => senderOf(String(r.id)));
        const writes = page.map((r) => pairs[Number((BigInt(String(r.id)) - FIRST_MESSAGE_ID) / 256n)]);
        const { ids, keys } = await resolver.resolve(writes);
        return senderIdsOf(writes, ids, keys);
      };
      const idsPid = await backendPid(idsClient);
      const i0 = pidTicks(idsPid);
      const readerPid = await backendPid(reader);
      const writerPid = await backendPid(writer);
      const r0 = pidTicks(readerPid);
      const w0 = pidTicks(writerPid);
      const c0 = clusterTicks(server.dataDir);
      const started = performance.now();
      let pages = 0;
      if (name === 'in-database') {
        await writer.query('UPDATE mam_muc_message SET sender_id = (id % 100000)::int');
      } else {
        const variant =
          name === 'key'
            ? keyOrder(batch)
            : name.startsWith('heap-walk')
              ? heapWalk(blocksPerPage, totalBlocks, batch, name === 'heap-walk-tail', name === 'heap-walk-case')
              : heapOrder(blocksPerPage, totalBlocks, name.slice('heap-'.length) as HeapWrite);
        let cursor: unknown = null;
        for (;;) {
          const page = await variant.page(reader, cursor);
          if (page === null) break;
          const sids = await sidsOf(page.rows);
          if (values.explain && pages === 3) {
            process.stdout.write(`  page ${pages}: ${page.rows.length} rows\n`);
            await explained(writer, () => variant.write(writer, page.rows, page.next, sids));
          } else await variant.write(writer, page.rows, page.next, sids);
          cursor = page.next;
          pages++;
        }
      }
      const ms = performance.now() - started;
      const us = (ticks: number): string => ((ticks / CLOCK_TICKS / rows) * 1e6).toFixed(2);
      const readerCpu = pidTicks(readerPid) - r0;
      const writerCpu = pidTicks(writerPid) - w0;
      const clusterCpu = clusterTicks(server.dataDir) - c0;
      const idsCpu = pidTicks(idsPid) - i0;
      const { rows: left } = await writer.query<{ n: string }>('SELECT count(*)::text AS n FROM mam_muc_message WHERE sender_id IS NULL');
      process.stdout.write(
        `${name.padEnd(16)} pages ${String(pages).padStart(5)} (${blocksPerPage} blocks each of ${totalBlocks}), ${Math.round((rows * 1000) / ms)} rows/s, ` +
          `PostgreSQL CPU µs/row: reader ${us(readerCpu)} + writer ${us(writerCpu)}${values.senders ? ` + ids ${us(idsCpu)}` : ''} = ${us(readerCpu + writerCpu + idsCpu)}, cluster ${us(clusterCpu)}; left NULL ${left[0].n}; load ${load()}\n`,
      );
      reader.release();
      writer.release();
      idsClient.release();
      await pool.end();
      await admin.query('DROP DATABASE bench_copy');
    }
    await admin.end();
  } finally {
    await server.stop();
  }
}

await main();
