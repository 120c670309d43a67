/** The acceptance suite on Elasticsearch 6.8, typed index `muc` (search-suite.ts): MongooseIM 3.4.0's GDPR search after the backfill. */
import { describe } from 'node:test';
import { searchAcceptanceSuite } from './search-suite.js';

describe('acceptance on elasticsearch6: MongooseIM 3.4.0 GDPR search', () => searchAcceptanceSuite('elasticsearch6', { typed: true }));
