/**
 * MongooseIM 3.4.0's `get_mam_muc_gdpr_data` on PostgreSQL and MySQL/MariaDB, as
 * mod_mam_muc_rdbms_arch and mod_mam_rdbms_user send it (docs/mongooseim-gdpr-queries.md, "RDBMS"):
 * two SQL texts with inlined, generically escaped literals (3.4.0 prepares neither), the simple
 * query protocol on PostgreSQL with standard_conforming_strings off, the text protocol on MySQL.
 * `prepared`: the form MongooseIM uses from 4.2.0 on (same SQL as prepared statements with bound
 * parameters, no LIMIT on the id lookup), for archives read by later releases.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { splitJid } from './archive.js';
import type { GdprRow } from './gdpr-check.js';

/** mongoose_rdbms's generic escape_string (3.4.0, src/rdbms/mongoose_rdbms.erl 370-397), quotes included. */
export function mongooseStringLiteral(value: string): string {
  const escaped: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\t': '\\t', '\b': '\\b', '\r': '\\r', "'": "''", '"': '\\"', '\\': '\\\\' };
  return `'${value.replace(/[\0\n\t\b\r'"\\]/g, (c) => escaped[c])}'`;
}

function archiveIdQuery(jid: string): string {
  const { user, host } = splitJid(jid);
  return `SELECT id FROM mam_server_user WHERE server = ${mongooseStringLiteral(host)} AND user_name = ${mongooseStringLiteral(user)} LIMIT 1`;
}

function messagesQuery(archiveId: string): string {
  if (!/^\d+$/.test(archiveId)) throw new Error(`archive id ${archiveId} is not an integer`);
  return `SELECT id, message FROM mam_muc_message WHERE sender_id = ${archiveId} ORDER BY id`;
}

/** For each JID, the answer of MongooseIM 3.4.0 (or, `prepared`, 4.2.0 and later) on PostgreSQL. */
export async function postgresGdpr(url: string, jids: readonly string[], prepared = false): Promise<Map<string, GdprRow[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // As mongoose_rdbms_pgsql:connect does; node-postgres sends a query without values as a
    // simple Query message, as epgsql:squery does.
    await client.query('SET standard_conforming_strings=off');
    const answers = new Map<string, GdprRow[]>();
    for (const jid of jids) {
      const { user, host } = splitJid(jid);
      const found = prepared
        ? await client.query<{ id: string }>({
            name: 'mam_user_select',
            text: 'SELECT id FROM mam_server_user WHERE server=$1 AND user_name=$2',
            values: [host, user],
          })
        : await client.query<{ id: string }>(archiveIdQuery(jid));
      if (found.rows.length === 0) {
        answers.set(jid, []);
        continue;
      }
      const archiveId = String(found.rows[0].id);
      const { rows } = prepared
        ? await client.query<{ id: string; message: Buffer }>({
            name: 'mam_muc_extract_gdpr_messages',
            text: 'SELECT id, message FROM mam_muc_message WHERE sender_id = $1 ORDER BY id',
            values: [archiveId],
          })
        : await client.query<{ id: string; message: Buffer }>(messagesQuery(archiveId));
      answers.set(
        jid,
        rows.map((r) => ({ id: String(r.id), message: r.message })),
      );
    }
    return answers;
  } finally {
    await client.end();
  }
}

/** For each JID, the answer of MongooseIM 3.4.0 (or, `prepared`, 4.2.0 and later) on MySQL/MariaDB. */
export async function mysqlGdpr(url: string, jids: readonly string[], prepared = false): Promise<Map<string, GdprRow[]>> {
  const connection = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true });
  try {
    // As mongoose_rdbms_mysql:connect does; query() without values is the text protocol (COM_QUERY).
    await connection.query("set names 'utf8mb4';");
    const answers = new Map<string, GdprRow[]>();
    for (const jid of jids) {
      const { user, host } = splitJid(jid);
      // execute() is a server-side prepared statement (binary protocol), as mysql-otp's execute.
      const [found] = (prepared
        ? await connection.execute('SELECT id FROM mam_server_user WHERE server=? AND user_name=?', [host, user])
        : await connection.query(archiveIdQuery(jid))) as unknown as [{ id: string | number }[]];
      if (found.length === 0) {
        answers.set(jid, []);
        continue;
      }
      const archiveId = String(found[0].id);
      const [rows] = (prepared
        ? await connection.execute('SELECT id, message FROM mam_muc_message WHERE sender_id = ? ORDER BY id', [archiveId])
        : await connection.query(messagesQuery(archiveId))) as unknown as [{ id: string | number; message: Buffer }[]];
      answers.set(
        jid,
        rows.map((r) => ({ id: String(r.id), message: r.message })),
      );
    }
    return answers;
  } finally {
    await connection.end();
  }
}
