/** The Elasticsearch-protocol backend against a real Elasticsearch 7.17.29 (typeless index). */
import { backendSuite } from './backend-suite.js';

backendSuite('elasticsearch');
