/** `--field is_groupchat` against a real Elasticsearch 7.17 (typeless one-to-one archive). */
import { groupchatSuite } from './groupchat-suite.js';

groupchatSuite('elasticsearch');
