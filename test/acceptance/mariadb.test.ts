/** The acceptance suite on MariaDB: MongooseIM 3.4.0's GDPR query after the backfill (sql-suite.ts). */
import { describe } from 'node:test';
import { startMariadbFixture } from '../sql/mariadb-fixture.js';
import { mysqlGdpr } from './mongooseim-34-sql.js';
import { sqlAcceptanceSuite } from './sql-suite.js';

describe('acceptance on MariaDB: MongooseIM 3.4.0 GDPR query', () =>
  sqlAcceptanceSuite({ kind: 'mysql', start: () => startMariadbFixture(), gdpr: mysqlGdpr }));
