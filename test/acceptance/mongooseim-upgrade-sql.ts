/**
 * MongooseIM's own SQL for the upgrade's acceptance suite (upgrade-suite.ts), on PostgreSQL and
 * MySQL/MariaDB, with the texts as MongooseIM's code builds them at the tags:
 *
 * - 3.3.0's `mam_message` (priv/pg.sql, priv/mysql.sql): the one-to-one archive before 3.7.
 * - The upgrade guides' schema steps: 3.3.0 -> 3.4.0 (`sender_id`), 3.6.0 -> 3.7.0 (`origin_id`)
 *   and 6.2.0 -> 6.2.1 (`is_groupchat`), for an operator who ran them by hand.
 * - 3.7.0's archive id lookup (mod_mam_rdbms_user: select, insert when missing, select again),
 *   and `query_for_messages_to_retract` of mod_mam_muc_rdbms_arch and mod_mam_rdbms_arch:
 *   inlined literals escaped by mongoose_rdbms's generic escape, `ORDER BY id DESC LIMIT 1`,
 *   the remote JID minified by mam_jid_mini (the default `db_jid_format`).
 * - 6.2.1's lookup of a user's archive by a client asking with include-groupchat=false
 *   (mam_iq -> mam_filter over mod_mam_rdbms_arch:lookup_fields() -> mam_lookup_sql): a prepared
 *   statement filtering `is_groupchat = ?`, the first page (offset 0, page size 50) in id order.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mongooseStringLiteral } from './mongooseim-34-sql.js';

export type UpgradeKind = 'postgres' | 'mysql';

/** MongooseIM 3.3.0's `mam_message`, before 3.7's origin_id and 6.2.1's is_groupchat. */
export function mamMessage33(kind: UpgradeKind): string[] {
  if (kind === 'postgres') {
    return [
      `DO $$ BEGIN CREATE TYPE mam_direction AS ENUM('I','O'); EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
      `CREATE TABLE mam_message(id BIGINT NOT NULL, user_id INT NOT NULL, from_jid varchar(250) NOT NULL, remote_bare_jid varchar(250) NOT NULL,
         remote_resource varchar(250) NOT NULL, direction mam_direction NOT NULL, message bytea NOT NULL, search_body text, PRIMARY KEY(user_id, id))`,
      `CREATE INDEX i_mam_message_username_jid_id ON mam_message USING BTREE (user_id, remote_bare_jid, id)`,
    ];
  }
  return [
    `CREATE TABLE mam_message(id BIGINT UNSIGNED NOT NULL, user_id INT UNSIGNED NOT NULL, from_jid varchar(250) CHARACTER SET binary NOT NULL,
       remote_bare_jid varchar(250) CHARACTER SET binary NOT NULL, remote_resource varchar(250) CHARACTER SET binary NOT NULL,
       direction ENUM('I','O') NOT NULL, message mediumblob NOT NULL, search_body mediumtext, PRIMARY KEY (user_id, id),
       INDEX i_mam_message_rem USING BTREE (user_id, remote_bare_jid, id)) CHARACTER SET utf8mb4 ROW_FORMAT=DYNAMIC`,
  ];
}

/** The upgrade guides' schema steps, verbatim, by the version that needs them. */
export function guideSchema(kind: UpgradeKind): { readonly sender: string[]; readonly originId: string[]; readonly isGroupchat: string[] } {
  if (kind === 'postgres') {
    return {
      sender: ['ALTER TABLE mam_muc_message ADD COLUMN sender_id INT;', 'CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id);'],
      originId: [
        'ALTER TABLE mam_message ADD COLUMN origin_id varchar;',
        'CREATE INDEX i_mam_message_username_jid_origin_id ON mam_message USING BTREE (user_id, remote_bare_jid, origin_id);',
        'ALTER TABLE mam_muc_message ADD COLUMN origin_id varchar;',
        'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id ON mam_muc_message USING BTREE (room_id, sender_id, origin_id);',
      ],
      isGroupchat: ['ALTER TABLE mam_message\nADD COLUMN is_groupchat boolean NOT NULL DEFAULT false;'],
    };
  }
  return {
    sender: [
      'ALTER TABLE mam_muc_message ADD COLUMN sender_id INT UNSIGNED;',
      'CREATE INDEX i_mam_muc_message_sender_id USING BTREE ON mam_muc_message(sender_id);',
    ],
    originId: [
      'ALTER TABLE mam_message ADD COLUMN origin_id varchar(250) CHARACTER SET binary;',
      'CREATE INDEX i_mam_message_username_jid_origin_id USING BTREE ON mam_message (user_id, remote_bare_jid, origin_id);',
      'ALTER TABLE mam_muc_message ADD COLUMN origin_id varchar(250) CHARACTER SET binary;',
      'CREATE INDEX i_mam_muc_message_room_id_sender_id_origin_id USING BTREE ON mam_muc_message (room_id, sender_id, origin_id);',
    ],
    isGroupchat: ['ALTER TABLE mam_message\nADD COLUMN is_groupchat boolean NOT NULL DEFAULT false;'],
  };
}

/** A bare JID as jid:to_bare/1 gives it: lower-case user and server (the suite's JIDs are ASCII). */
export interface BareJid {
  readonly user: string;
  readonly server: string;
}

export function bareJid(jid: string): BareJid {
  const bare = jid.split('/')[0].toLowerCase();
  const at = bare.indexOf('@');
  if (at <= 0 || at === bare.length - 1) throw new Error(`${jid} is no user@server JID`);
  return { user: bare.slice(0, at), server: bare.slice(at + 1) };
}

/** mod_mam_utils:jid_to_opt_binary/2 (mam_jid_mini) for a bare remote JID, as 3.3 stores and 3.7 looks it up. */
export function minifiedBareJid(owner: BareJid, remote: BareJid): string {
  if (remote.server !== owner.server) return `${remote.server}:${remote.user}`;
  return remote.user === owner.user ? '' : remote.user;
}

/** The 6.2.1 lookup's page: MongooseIM's default page size (mod_mam default_result_limit). */
export const PAGE_SIZE = 50;

/** The SQL of 6.2.1's first-page lookup with the is_groupchat filter (mam_lookup_sql:lookup_sql/6). */
export function withoutGroupchatSql(kind: UpgradeKind): string {
  // ["SELECT ", TopSQL, " ", columns_sql(lookup), " FROM ", Table, " ", IndexHintSQL, FilterSQL, OrderSQL, LimitSQL]
  const hint = kind === 'mysql' ? 'USE INDEX(PRIMARY, i_mam_message_rem) ' : '';
  const sql = `SELECT  id, from_jid, message FROM mam_message ${hint} WHERE user_id = ? AND is_groupchat = ? ORDER BY id LIMIT ?`;
  if (kind === 'mysql') return sql;
  // mongoose_rdbms_pgsql prepares with numbered parameters.
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** One connection speaking to the database as MongooseIM 3.7 / 6.2.1 would. */
export interface MongooseSession {
  /** mod_mam:archive_id_int/2 of 3.7.0: the bare JID's mam_server_user id, the row created when missing. */
  archiveId(jid: BareJid): Promise<string>;
  /** 3.7.0's room retraction lookup: the id MongooseIM would make a tombstone of, or null. */
  mucRetractTarget(roomId: string, sender: BareJid, originId: string): Promise<string | null>;
  /** 3.7.0's one-to-one retraction lookup, in the archive of `owner`. */
  pmRetractTarget(ownerId: string, owner: BareJid, remote: BareJid, originId: string, direction: 'I' | 'O'): Promise<string | null>;
  /** 6.2.1's first page of `owner`'s archive for a client asking without groupchat messages: ids in order. */
  withoutGroupchat(ownerId: string): Promise<string[]>;
  close(): Promise<void>;
}

/** The texts of 3.7.0's lookups, generic-escaped literals inlined as 3.7.0 builds them. */
const archiveIdSql = (j: BareJid): string =>
  `SELECT id FROM mam_server_user WHERE server = ${mongooseStringLiteral(j.server)} AND user_name = ${mongooseStringLiteral(j.user)} LIMIT 1`;
const createArchiveSql = (j: BareJid): string =>
  `INSERT INTO mam_server_user (server, user_name) VALUES (${mongooseStringLiteral(j.server)}, ${mongooseStringLiteral(j.user)})`;

function integer(value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`${value} is not an integer`);
  return value;
}

/** mod_mam_muc_rdbms_arch:query_for_messages_to_retract/3 (3.7.0), LIMIT as get_db_specific_limits(1) gives it. */
export function mucRetractSql(roomId: string, senderId: string, originId: string): string {
  return `SELECT  id, message FROM mam_muc_message WHERE room_id = ${integer(roomId)} AND sender_id = ${integer(senderId)} AND origin_id = ${mongooseStringLiteral(originId)} ORDER BY id DESC LIMIT 1`;
}

/** mod_mam_rdbms_arch:query_for_messages_to_retract/4 (3.7.0). */
export function pmRetractSql(userId: string, minifiedRemote: string, originId: string, direction: 'I' | 'O'): string {
  return (
    `SELECT  id, message FROM mam_message WHERE user_id = ${integer(userId)} AND remote_bare_jid = ${mongooseStringLiteral(minifiedRemote)}` +
    ` AND origin_id = ${mongooseStringLiteral(originId)} AND direction = '${direction}' ORDER BY id DESC LIMIT 1`
  );
}

interface Raw {
  /** A text query, no parameters (epgsql:squery, mysql-otp's query). */
  text(sql: string): Promise<Record<string, unknown>[]>;
  /** A prepared statement with bound parameters. */
  prepared(name: string, sql: string, values: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

async function rawPostgres(url: string): Promise<Raw> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // As mongoose_rdbms_pgsql:connect does.
  await client.query('SET standard_conforming_strings=off');
  return {
    text: async (sql) => (await client.query(sql)).rows as Record<string, unknown>[],
    prepared: async (name, sql, values) => (await client.query({ name, text: sql, values })).rows as Record<string, unknown>[],
    close: () => client.end(),
  };
}

async function rawMysql(url: string): Promise<Raw> {
  const connection = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true });
  await connection.query("set names 'utf8mb4';");
  return {
    text: async (sql) => (await connection.query(sql))[0] as Record<string, unknown>[],
    prepared: async (_name, sql, values) => (await connection.execute(sql, values as (string | number | boolean)[]))[0] as Record<string, unknown>[],
    close: () => connection.end(),
  };
}

export async function openMongooseSession(kind: UpgradeKind, url: string): Promise<MongooseSession> {
  const raw = kind === 'postgres' ? await rawPostgres(url) : await rawMysql(url);
  const firstId = (rows: Record<string, unknown>[]): string | null => (rows.length === 0 ? null : String(rows[0].id));
  const archiveId = async (jid: BareJid): Promise<string> => {
    // query_archive_id/4: five tries of select-or-create.
    for (let tries = 5; tries > 0; tries--) {
      const found = firstId(await raw.text(archiveIdSql(jid)));
      if (found !== null) return found;
      await raw.text(createArchiveSql(jid)).catch(() => {}); // a duplicate from a racing insert is fine there too
    }
    throw new Error(`query_archive_id_failed for ${jid.user}@${jid.server}`);
  };
  return {
    archiveId,
    async mucRetractTarget(roomId, sender, originId) {
      const senderId = await archiveId(sender);
      return firstId(await raw.text(mucRetractSql(roomId, senderId, originId)));
    },
    async pmRetractTarget(ownerId, owner, remote, originId, direction) {
      return firstId(await raw.text(pmRetractSql(ownerId, minifiedBareJid(owner, remote), originId, direction)));
    },
    async withoutGroupchat(ownerId) {
      // mam_lookup_sql names the statement after its filters: mam_message_lookup_a_equeqg_limit.
      const rows = await raw.prepared('mam_message_lookup_a_equeqg_limit', withoutGroupchatSql(kind), [ownerId, false, PAGE_SIZE]);
      return rows.map((r) => String(r.id));
    },
    close: () => raw.close(),
  };
}
