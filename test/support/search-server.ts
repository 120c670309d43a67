/**
 * A real single-node OpenSearch 2.19.6, Elasticsearch 7.17.29 or Elasticsearch 6.8.23 for tests, without Docker: the
 * Java launcher of test/support/search-server/<product>/ (a Node subclass with classpath plugins,
 * see its source) is built by Maven into the repository's .tmp/ on first use, with the server's
 * jars from Maven Central, then run on free loopback ports in a temp home, started and stopped
 * as every test server is (server-lifecycle.ts). A server that cannot be built or started throws
 * (the test fails, never skips).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childServer, freeLoopbackPorts, launchTestServer, type TestServer } from './server-lifecycle.js';

/** `elasticsearch6`: Elasticsearch 6.8, the last line with mapping types (MongooseIM's `muc`). */
export type SearchProduct = 'opensearch' | 'elasticsearch' | 'elasticsearch6';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/support -> repo
const SOURCE_DIR = join(REPO_ROOT, 'test', 'support', 'search-server');
const BUILD_DIR = join(REPO_ROOT, '.tmp', 'search-server');
const MAIN_CLASS: Record<SearchProduct, string> = {
  opensearch: 'mimsenderjid.test.OpenSearchLauncher',
  elasticsearch: 'mimsenderjid.test.ElasticsearchLauncher',
  elasticsearch6: 'mimsenderjid.test.Elasticsearch6Launcher',
};
const LAUNCHER_SOURCE: Record<SearchProduct, string> = {
  opensearch: 'OpenSearchLauncher.java',
  elasticsearch: 'ElasticsearchLauncher.java',
  elasticsearch6: 'Elasticsearch6Launcher.java',
};
export const SEARCH_SERVER_VERSION: Record<SearchProduct, string> = { opensearch: '2.19.6', elasticsearch: '7.17.29', elasticsearch6: '6.8.23' };
const BUILD_TIMEOUT_MS = 600_000;
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

/** stopServer: SIGTERM, SIGKILL after a while. */
export interface SearchServer extends TestServer {
  readonly product: SearchProduct;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** The node's console log so far (for failure messages). */
  log(): string;
}

export interface StartSearchOptions {
  /** Extra node settings, e.g. `{ 'thread_pool.write.queue_size': '2' }` to provoke 429s. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** Builds the launcher and copies the server's classpath once; later calls reuse .tmp/. */
export function buildSearchLauncher(product: SearchProduct): { jar: string; lib: string } {
  const out = join(BUILD_DIR, product);
  const jar = join(out, 'target', `${product}-node-1.jar`);
  const lib = join(out, 'lib');
  const done = join(out, 'built');
  const source = join(SOURCE_DIR, product);
  const newestSource = Math.max(...['pom.xml', `src/main/java/mimsenderjid/test/${LAUNCHER_SOURCE[product]}`].map((f) => statSync(join(source, f)).mtimeMs));
  if (existsSync(done) && existsSync(jar) && statSync(done).mtimeMs >= newestSource) return { jar, lib };
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const result = spawnSync(
    'mvn',
    ['-q', '-B', 'package', 'dependency:copy-dependencies', `-DoutputDirectory=${lib}`, '-DincludeScope=runtime', `-DbuildDir=${join(out, 'target')}`],
    {
      cwd: source,
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
    },
  );
  if (result.error || result.status !== 0) {
    throw new Error(
      `search-server: cannot build the ${product} launcher with Maven (status ${result.status}, ${result.error?.message ?? ''}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  spawnSync('touch', [done]);
  return { jar, lib };
}

export async function startSearchServer(product: SearchProduct, options: StartSearchOptions = {}): Promise<SearchServer> {
  const { jar, lib } = buildSearchLauncher(product);
  const home = mkdtempSync(join(tmpdir(), `mim-${product}-`));
  const [httpPort, transportPort] = await freeLoopbackPorts(2);
  const url = `http://127.0.0.1:${httpPort}`;
  const classpath = [jar, ...readdirSync(lib).map((f) => join(lib, f))].join(':');
  const settings: Record<string, string> = {
    'path.home': home,
    'path.data': join(home, 'data'),
    'path.logs': join(home, 'logs'),
    'discovery.type': 'single-node',
    'network.host': '127.0.0.1',
    'http.port': String(httpPort),
    'transport.port': String(transportPort),
    'cluster.routing.allocation.disk.threshold_enabled': 'false',
    ...options.settings,
  };
  let output = '';
  const log = (): string => output;
  const server = await launchTestServer(
    home,
    childServer({
      name: `${product} ${SEARCH_SERVER_VERSION[product]}`,
      spawn: () => {
        const started = spawn(
          'java',
          [
            '-Xms512m',
            '-Xmx512m',
            '-Dlog4j.shutdownHookEnabled=false',
            '-cp',
            classpath,
            MAIN_CLASS[product],
            ...Object.entries(settings).map(([k, v]) => `${k}=${v}`),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const keep = (chunk: Buffer): void => {
          output += chunk.toString();
          if (output.length > 200_000) output = output.slice(-100_000);
        };
        started.stdout?.on('data', keep);
        started.stderr?.on('data', keep);
        return started;
      },
      ready: async () => {
        try {
          const response = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, { signal: AbortSignal.timeout(5000) });
          return response.status === 200 ? true : `cluster health answers ${response.status}`;
        } catch (error) {
          return `not listening yet (${(error as Error).message})`;
        }
      },
      readyTimeoutMs: START_TIMEOUT_MS,
      pollMs: 500,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      logTail: () => log().slice(-4000),
    }),
  );
  return { ...server, product, url, log };
}
