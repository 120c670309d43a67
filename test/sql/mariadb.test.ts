/** The backend suite on a real MariaDB (Debian's mariadbd, started by test/support/mariadb.ts). */
import { describe } from 'node:test';
import { backendSuite } from './backend-suite.js';
import { startMariadbFixture } from './mariadb-fixture.js';

describe('MySQL backend on MariaDB', () => backendSuite(startMariadbFixture));
