/** `--field is_groupchat` against a real OpenSearch 2.19.6 (typeless one-to-one archive). */
import { groupchatSuite } from './groupchat-suite.js';

groupchatSuite('opensearch');
