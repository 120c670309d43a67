/**
 * `--field is_groupchat` against a real Elasticsearch 6.8.23 with the one-to-one archive under
 * MongooseIM's mapping type `pm` (`--type pm`): the same suite as 7.17 and OpenSearch.
 */
import { groupchatSuite } from './groupchat-suite.js';

groupchatSuite('elasticsearch6', { typed: true });
