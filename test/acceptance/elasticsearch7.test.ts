/** The acceptance suite on Elasticsearch 7.17 (search-suite.ts): MongooseIM 3.4.0's GDPR search after the backfill. */
import { describe } from 'node:test';
import { searchAcceptanceSuite } from './search-suite.js';

describe('acceptance on elasticsearch: MongooseIM 3.4.0 GDPR search', () => searchAcceptanceSuite('elasticsearch', { typed: false }));
