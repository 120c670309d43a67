/** The backend suite on a real PostgreSQL 15 (Debian's server, started by test/support/postgres.ts). */
import { describe } from 'node:test';
import { backendSuite } from './backend-suite.js';
import { startPostgresFixture } from './postgres-fixture.js';

describe('PostgreSQL backend', () => backendSuite(startPostgresFixture));
