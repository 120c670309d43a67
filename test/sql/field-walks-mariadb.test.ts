/** The --field walks on a real MariaDB (test/support/mariadb.ts). */
import { fieldWalkSuite } from './field-walk-suite.js';
import { startMariadbFixture } from './mariadb-fixture.js';

fieldWalkSuite('mysql', () => startMariadbFixture());
