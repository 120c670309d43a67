/**
 * The acceptance suites on one MariaDB server: MongooseIM 3.4.0's GDPR query after the backfill
 * (sql-suite.ts), and the whole upgrade to 6.2.1 with MongooseIM's own lookups (upgrade-suite.ts).
 */
import { after, describe } from 'node:test';
import { startMariadbFixture } from '../sql/mariadb-fixture.js';
import { mysqlGdpr } from './mongooseim-34-sql.js';
import { sqlAcceptanceSuite } from './sql-suite.js';
import { sharedFixture, upgradeAcceptanceSuite } from './upgrade-suite.js';

const server = sharedFixture(() => startMariadbFixture());
after(() => server.stop());

describe('acceptance on MariaDB: MongooseIM 3.4.0 GDPR query', () => sqlAcceptanceSuite({ kind: 'mysql', start: server.start, gdpr: mysqlGdpr }));

describe('acceptance on MariaDB: the upgrade from MongooseIM 3.3, then 3.7.0 retraction and the 6.2.1 groupchat filter', () =>
  upgradeAcceptanceSuite({ kind: 'mysql', start: server.start }));
