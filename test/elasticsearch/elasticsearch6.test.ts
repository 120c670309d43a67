/**
 * The Elasticsearch-protocol backend against a real Elasticsearch 6.8.23 with MongooseIM 3.3's
 * typed index (mapping type `muc`, `--type muc`): the same suite as 7.17 and OpenSearch.
 */
import { backendSuite } from './backend-suite.js';

backendSuite('elasticsearch6', { typed: true });
