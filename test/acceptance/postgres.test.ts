/**
 * The acceptance suites on one PostgreSQL server: MongooseIM 3.4.0's GDPR query after the backfill
 * (sql-suite.ts), and the whole upgrade to 6.2.1 with MongooseIM's own lookups (upgrade-suite.ts).
 */
import { after, describe } from 'node:test';
import pg from 'pg';
import { startPostgresFixture } from '../sql/postgres-fixture.js';
import { postgresGdpr } from './mongooseim-34-sql.js';
import { sqlAcceptanceSuite } from './sql-suite.js';
import { sharedFixture, upgradeAcceptanceSuite } from './upgrade-suite.js';

const server = sharedFixture(startPostgresFixture);
after(() => server.stop());

async function checkpoint(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ k: string | null }>(`SELECT last_room_id || ':' || last_id AS k FROM mim_sender_jid_checkpoint WHERE shard = '0/1'`);
    return rows[0]?.k ?? null;
  } catch {
    return null; // the table does not exist yet
  } finally {
    await client.end();
  }
}

describe('acceptance on PostgreSQL: MongooseIM 3.4.0 GDPR query', () =>
  sqlAcceptanceSuite({ kind: 'postgres', start: server.start, gdpr: postgresGdpr, checkpoint }));

describe('acceptance on PostgreSQL: the upgrade from MongooseIM 3.3, then 3.7.0 retraction and the 6.2.1 groupchat filter', () =>
  upgradeAcceptanceSuite({ kind: 'postgres', start: server.start }));
