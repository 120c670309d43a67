/** The shared backend suite's view of a real PostgreSQL (test/support/postgres.ts). */
import pg from 'pg';
import { PostgresBackend } from '../../clients/backends/sql/postgres.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../../cli/demo/mongooseim-33-schema.js';
import { startPostgres } from '../support/postgres.js';
import type { DatabaseFixture, FreshDatabaseOptions, TestDatabase, UserRow } from './fixture.js';
import { rowKey } from './fixture.js';

let databaseCounter = 0;

export async function startPostgresFixture(): Promise<DatabaseFixture> {
  const server = await startPostgres();
  const adminUrl = server.url.replace(/\/[^/]+$/, '/postgres');
  return {
    name: 'postgres',
    async freshDatabase(options: FreshDatabaseOptions = {}): Promise<TestDatabase> {
      const name = `t${++databaseCounter}`;
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      const encoding = options.encoding === undefined ? '' : ` ENCODING '${options.encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`;
      await admin.query(`CREATE DATABASE ${name}${encoding}`);
      await admin.end();
      const url = adminUrl.replace(/\/postgres$/, `/${name}`);
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on('error', () => {});
      pool.on('connect', (client) => client.on('error', () => {}));
      for (const statement of MONGOOSEIM_33_PG_SCHEMA) await pool.query(statement);
      return {
        url,
        backend: () => new PostgresBackend({ url }),
        async insertUsers(pairs) {
          const ids = new Map<string, string>();
          for (const p of pairs) {
            const { rows } = await pool.query<{ id: string }>('INSERT INTO mam_server_user (server, user_name) VALUES ($1, $2) RETURNING id::text', [
              p.server,
              p.user,
            ]);
            ids.set(`${p.server}\u0000${p.user}`, rows[0].id);
          }
          return ids;
        },
        async insertMessages(rows) {
          const CHUNK = 500;
          for (let i = 0; i < rows.length; i += CHUNK) {
            const chunk = rows.slice(i, i + CHUNK);
            await pool.query(
              `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body)
                 SELECT r, i, 'nick', m, 'hello' FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS v(r, i, m)`,
              [chunk.map((r) => r.roomId), chunk.map((r) => r.id), chunk.map((r) => r.payload)],
            );
          }
        },
        async senderIds() {
          const { rows } = await pool.query<{ room_id: number; id: string; sender_id: string | null }>(
            'SELECT room_id, id::text, sender_id::text FROM mam_muc_message',
          );
          return new Map(rows.map((r) => [rowKey(String(r.room_id), r.id), r.sender_id]));
        },
        async users(): Promise<UserRow[]> {
          const { rows } = await pool.query<{ id: string; server: string; user_name: string }>(
            'SELECT id::text, server, user_name FROM mam_server_user ORDER BY id',
          );
          return rows.map((r) => ({ id: r.id, server: r.server, user: r.user_name }));
        },
        async setSenderId(roomId, id, senderId) {
          await pool.query('UPDATE mam_muc_message SET sender_id = $3 WHERE room_id = $1 AND id = $2', [roomId, id, senderId]);
        },
        async tableExists(table) {
          const { rows } = await pool.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [table]);
          return rows[0].e;
        },
        async columnExists(table, column) {
          const { rows } = await pool.query('SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2', [table, column]);
          return rows.length > 0;
        },
        async execute(...statements) {
          for (const statement of statements) await pool.query(statement);
        },
        urlAs: (user) => url.replace('postgres://postgres@', `postgres://${user}@`),
        async close() {
          await pool.end();
        },
      };
    },
    restartServer: () => server.restart(),
    stopServer: () => server.stopServer(),
    startServer: () => server.startServer(),
    stop: () => server.stop(),
  };
}
