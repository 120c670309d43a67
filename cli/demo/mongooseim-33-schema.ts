/** MongooseIM 3.3.0's `priv/pg.sql` tables for the MUC archive (no sender_id yet): what the demo fills and the PostgreSQL tests migrate. */
export const MONGOOSEIM_33_PG_SCHEMA = [
  `CREATE TABLE mam_server_user(
     id SERIAL UNIQUE PRIMARY KEY,
     server varchar(250) NOT NULL,
     user_name varchar(250) NOT NULL)`,
  `CREATE UNIQUE INDEX i_mam_server_user_name ON mam_server_user USING btree (server, user_name)`,
  `CREATE TABLE mam_muc_message(
     id BIGINT NOT NULL,
     room_id INT NOT NULL,
     nick_name varchar(250) NOT NULL,
     message bytea NOT NULL,
     search_body text,
     PRIMARY KEY(room_id, id))`,
];
