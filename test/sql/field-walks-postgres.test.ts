/** The --field walks on a real PostgreSQL (test/support/postgres.ts). */
import { fieldWalkSuite } from './field-walk-suite.js';
import { startPostgresFixture } from './postgres-fixture.js';

fieldWalkSuite('postgres', startPostgresFixture);
