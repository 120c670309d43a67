/** The acceptance suite on OpenSearch 2.19 (search-suite.ts): MongooseIM 3.4.0's GDPR search after the backfill. */
import { describe } from 'node:test';
import { searchAcceptanceSuite } from './search-suite.js';

describe('acceptance on opensearch: MongooseIM 3.4.0 GDPR search', () => searchAcceptanceSuite('opensearch', { typed: false }));
