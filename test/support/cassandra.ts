/**
 * A real single-node Cassandra 5.0.9 for tests, without Docker: the jars come from Maven Central
 * (test/support/cassandra/pom.xml, fetched once into the repo's git-ignored .tmp/), the node runs
 * `CassandraDaemon` in a JVM of its own with a cassandra.yaml written here, on free loopback
 * ports, its data in a temp directory, started and stopped as every test server is
 * (server-lifecycle.ts). A missing java or mvn, a failed download or a node that does not come up
 * fails loudly (never skipped).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import cassandra from 'cassandra-driver';
import { childServer, freeLoopbackPorts, launchTestServer, type TestServer } from './server-lifecycle.js';

export const CASSANDRA_VERSION = '5.0.9';
const JAMM_JAR = 'jamm-0.4.0.jar';

/** The repo root, from dist/test/support/ or from test/support/. */
function repoRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return here.includes(join('dist', 'test')) ? resolve(here, '../../..') : resolve(here, '../..');
}

/** Downloading ~100 jars takes 20 s here; a slow mirror gets more, but not forever. */
const MAVEN_TIMEOUT_MS = 600_000;
/** Observed 11–17 s on two cores; a loaded CI machine gets headroom. */
const START_TIMEOUT_MS = 120_000;
/** SIGTERM drains in about 6 s; after this the JVM is killed. */
const STOP_TIMEOUT_MS = 30_000;

/**
 * The classpath directory, filled by Maven on first use. Filled into a fresh directory and renamed
 * into place, so an interrupted download is never taken for a complete one.
 */
export function cassandraClasspath(): string {
  const cache = join(repoRoot(), '.tmp', `cassandra-${CASSANDRA_VERSION}`);
  const lib = join(cache, 'lib');
  if (existsSync(join(lib, JAMM_JAR)) && existsSync(join(lib, `cassandra-all-${CASSANDRA_VERSION}.jar`))) return lib;
  mkdirSync(cache, { recursive: true });
  const partial = mkdtempSync(join(cache, 'lib-partial-'));
  const pom = join(repoRoot(), 'test', 'support', 'cassandra', 'pom.xml');
  const result = spawnSync('mvn', ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`, '-DincludeScope=runtime'], {
    encoding: 'utf8',
    timeout: MAVEN_TIMEOUT_MS,
  });
  if (result.error || result.status !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(
      `cannot fetch Cassandra ${CASSANDRA_VERSION} from Maven Central (mvn ${result.error?.message ?? `exited ${result.status}`}); ` +
        `needs mvn and a JDK 17 (Debian: maven openjdk-17-jdk-headless):\n${result.stdout ?? ''}\n${result.stderr ?? ''}`,
    );
  }
  if (!existsSync(join(partial, JAMM_JAR)))
    throw new Error(`Maven gave no ${JAMM_JAR} in ${partial}: the pom no longer matches Cassandra ${CASSANDRA_VERSION}`);
  rmSync(lib, { recursive: true, force: true });
  renameSync(partial, lib);
  return lib;
}

/** Cassandra's own conf/jvm17-server.options (branch cassandra-5.0), JPMS section. */
const JVM17_MODULE_OPTIONS = [
  '--add-exports',
  'java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-exports',
  'java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
  '--add-exports',
  'java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports',
  'java.rmi/sun.rmi.server=ALL-UNNAMED',
  '--add-exports',
  'java.sql/java.sql=ALL-UNNAMED',
  '--add-exports',
  'java.base/java.lang.ref=ALL-UNNAMED',
  '--add-exports',
  'jdk.unsupported/sun.misc=ALL-UNNAMED',
  '--add-exports',
  'jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
  '--add-exports',
  'jdk.attach/sun.tools.attach=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang.module=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.loader=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.reflect=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.math=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.module=ALL-UNNAMED',
  '--add-opens',
  'java.base/jdk.internal.util.jar=ALL-UNNAMED',
  '--add-opens',
  'jdk.management/com.sun.management.internal=ALL-UNNAMED',
  '--add-opens',
  'java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.io=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens',
  'jdk.compiler/com.sun.tools.javac=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util=ALL-UNNAMED',
];

/** No caches of roles and permissions: a GRANT in a test holds for the very next request. */
const AUTH_SETTINGS = `authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
roles_validity: 0ms
permissions_validity: 0ms
credentials_validity: 0ms`;

function cassandraYaml(dir: string, nativePort: number, storagePort: number, auth: boolean): string {
  const path = (name: string): string => JSON.stringify(join(dir, name));
  return `cluster_name: mim-sender-jid-test
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: [${path('data')}]
commitlog_directory: ${path('commitlog')}
saved_caches_directory: ${path('saved_caches')}
hints_directory: ${path('hints')}
cdc_raw_directory: ${path('cdc_raw')}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:${storagePort}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${storagePort}
native_transport_port: ${nativePort}
start_native_transport: true
endpoint_snitch: SimpleSnitch
${auth ? AUTH_SETTINGS : 'authenticator: AllowAllAuthenticator\nauthorizer: AllowAllAuthorizer'}
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
disk_access_mode: mmap_index_only
auto_snapshot: false
`;
}

/** INFO to a file in the node's directory (read back when a start fails), nothing on the console. */
function logbackXml(logFile: string): string {
  return `<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${logFile}</file>
    <encoder><pattern>%date %level [%thread] %logger{20} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
`;
}

export interface StartOptions {
  /**
   * Password authentication and Cassandra's own authorizer (roles, GRANT/REVOKE), logged in as
   * the built-in superuser `SUPERUSER` until a test makes roles of its own.
   */
  readonly auth?: boolean;
}

/** The superuser a node with `auth` creates at its first start. */
export const SUPERUSER = Object.freeze({ username: 'cassandra', password: 'cassandra' });

/** stopServer: SIGTERM (the JVM drains in about 6 s), SIGKILL after a while. */
export interface CassandraNode extends TestServer {
  /** `127.0.0.1:PORT`, for `contactPoints` and `--contact-points`. */
  readonly contactPoint: string;
  readonly nativePort: number;
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** With `auth`, the superuser role is made a moment after the port opens: log in until it works. */
async function superuserCanLogIn(nativePort: number): Promise<boolean> {
  const client = new cassandra.Client({
    contactPoints: [`127.0.0.1:${nativePort}`],
    localDataCenter: 'datacenter1',
    authProvider: new cassandra.auth.PlainTextAuthProvider(SUPERUSER.username, SUPERUSER.password),
  });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.shutdown().catch(() => {});
  }
}

export async function startCassandra(options: StartOptions = {}): Promise<CassandraNode> {
  const auth = options.auth === true;
  const lib = cassandraClasspath();
  const root = mkdtempSync(join(tmpdir(), 'mim-cassandra-'));
  const [nativePort, storagePort] = await freeLoopbackPorts(2);
  const yamlFile = join(root, 'cassandra.yaml');
  const logFile = join(root, 'system.log');
  const outFile = join(root, 'stdout.log');
  const logbackFile = join(root, 'logback.xml');
  writeFileSync(yamlFile, cassandraYaml(root, nativePort, storagePort, auth));
  writeFileSync(logbackFile, logbackXml(logFile));
  const javaArgs = [
    '-Xms1g',
    '-Xmx1g',
    '-XX:MaxDirectMemorySize=512m',
    '-XX:+UseG1GC',
    `-javaagent:${join(lib, JAMM_JAR)}`,
    '-Djdk.attach.allowAttachSelf=true',
    ...JVM17_MODULE_OPTIONS,
    '-Dio.netty.tryReflectionSetAccessible=true',
    `-Dcassandra.config=${pathToFileURL(yamlFile).href}`,
    `-Dcassandra.storagedir=${root}`,
    `-Dcassandra.logdir=${root}`,
    `-Dlogback.configurationFile=${pathToFileURL(logbackFile).href}`,
    '-Dcassandra-foreground=yes',
    // A single fresh node: no peers to wait for.
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=1000',
    // The superuser role at once instead of 10 s after the start.
    ...(auth ? ['-Dcassandra.superuser_setup_delay_ms=0'] : []),
    '-cp',
    `${lib}/*`,
    'org.apache.cassandra.service.CassandraDaemon',
  ];

  const logTail = (): string => {
    const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-40).join('\n') : '');
    return `--- system.log ---\n${read(logFile)}\n--- stdout/stderr ---\n${read(outFile)}`;
  };
  const server = await launchTestServer(
    root,
    childServer({
      name: `Cassandra ${CASSANDRA_VERSION}`,
      spawn: () => {
        const out = openSync(outFile, 'a');
        try {
          return spawn('java', javaArgs, { cwd: root, stdio: ['ignore', out, out] });
        } finally {
          closeSync(out);
        }
      },
      ready: async () => {
        if (!(await portAccepts(nativePort))) return `CQL port ${nativePort} closed`;
        return !auth || (await superuserCanLogIn(nativePort)) ? true : 'the superuser cannot log in yet';
      },
      readyTimeoutMs: START_TIMEOUT_MS,
      pollMs: 250,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      logTail,
    }),
  );
  return { ...server, contactPoint: `127.0.0.1:${nativePort}`, nativePort };
}

/**
 * cassandra-driver 4.10 can keep a shut-down client's connection pool re-arming "new connection
 * attempt" timers when a connection was still opening during `shutdown()` (seen after a node
 * restart: HostConnectionPool.scheduleNewConnectionAttempt from Host._checkPoolState, every ~2 s,
 * forever). Nothing is left to do then, so once a test file has cleaned up, a process still held
 * open by such timers after a few seconds is ended with the test runner's exit code.
 */
export function endProcessIfHeldOpen(graceMs = 5000): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), graceMs).unref();
}
