/** The Elasticsearch-protocol backend against a real OpenSearch 2.19.6 (typeless index). */
import { backendSuite } from './backend-suite.js';

backendSuite('opensearch');
