/** The shared backend suite's view of a real MariaDB (test/support/mariadb.ts). */
import mysql from 'mysql2/promise';
import { MysqlBackend } from '../../clients/backends/sql/mysql.js';
import { MONGOOSEIM_33_MYSQL_SCHEMA, startMariadb } from '../support/mariadb.js';
import type { DatabaseFixture, FreshDatabaseOptions, TestDatabase, UserRow } from './fixture.js';
import { rowKey } from './fixture.js';

let databaseCounter = 0;
type Row = Record<string, unknown>;
const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

export async function startMariadbFixture(options: { grants?: boolean } = {}): Promise<DatabaseFixture> {
  const server = await startMariadb(options);
  const baseUrl = server.url.replace(/\/[^/]+$/, '');
  return {
    name: 'mariadb',
    async freshDatabase(options: FreshDatabaseOptions = {}): Promise<TestDatabase> {
      const name = `t${++databaseCounter}`;
      const admin = await mysql.createConnection({ uri: baseUrl });
      await admin.query(`CREATE DATABASE ${name} CHARACTER SET ${options.encoding ?? 'utf8mb4'}`);
      await admin.end();
      const url = `${baseUrl}/${name}`;
      const pool = mysql.createPool({ uri: url, connectionLimit: 2, supportBigNumbers: true, bigNumberStrings: true, charset: 'utf8mb4' });
      pool.on('connection', (c) => c.on('error', () => {}));
      const rows = async (sql: string, params: unknown[] = []): Promise<Row[]> => (await pool.query(sql, params))[0] as Row[];
      for (const statement of MONGOOSEIM_33_MYSQL_SCHEMA) await pool.query(statement);
      return {
        url,
        backend: () => new MysqlBackend({ url }),
        async insertUsers(pairs) {
          const ids = new Map<string, string>();
          for (const p of pairs) {
            const [result] = await pool.query('INSERT INTO mam_server_user (server, user_name) VALUES (?, ?)', [p.server, p.user]);
            ids.set(`${p.server}\u0000${p.user}`, String((result as mysql.ResultSetHeader).insertId));
          }
          return ids;
        },
        async insertMessages(messages) {
          const CHUNK = 200;
          for (let i = 0; i < messages.length; i += CHUNK) {
            const chunk = messages.slice(i, i + CHUNK);
            await pool.query(
              `INSERT INTO mam_muc_message (room_id, id, nick_name, message, search_body) VALUES ${chunk.map(() => `(?, ${'?'}, 'nick', ?, 'hello')`).join(', ')}`,
              chunk.flatMap((m) => [Number(m.roomId), mysql.raw(m.id), m.payload]),
            );
          }
        },
        async senderIds() {
          const result = await rows('SELECT room_id, id, sender_id FROM mam_muc_message');
          return new Map(result.map((r) => [rowKey(String(r.room_id), String(r.id)), r.sender_id === null ? null : String(r.sender_id)]));
        },
        async users(): Promise<UserRow[]> {
          const result = await rows('SELECT id, server, user_name FROM mam_server_user ORDER BY id');
          return result.map((r) => ({ id: String(r.id), server: text(r.server), user: text(r.user_name) }));
        },
        async setSenderId(roomId, id, senderId) {
          await pool.query(`UPDATE mam_muc_message SET sender_id = ? WHERE room_id = ? AND id = ${mysql.escape(mysql.raw(id))}`, [
            Number(senderId),
            Number(roomId),
          ]);
        },
        async tableExists(table) {
          const result = await rows('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table]);
          return Number(result[0].n) > 0;
        },
        async columnExists(table, column) {
          const result = await rows(
            'SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
            [table, column],
          );
          return Number(result[0].n) > 0;
        },
        async execute(...statements) {
          for (const statement of statements) await pool.query(statement);
        },
        urlAs: (user) => url.replace('mysql://root@', `mysql://${user}@`),
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
