/**
 * A real single-node Cassandra 5.0.9 for tests, without Docker: the jars come from Maven Central
 * (test/support/cassandra/pom.xml, fetched once into the repo's git-ignored .tmp/), the node runs
 * `CassandraDaemon` in a JVM of its own with a cassandra.yaml written here, on free loopback
 * ports, its data in a temp directory. Always stopped: by `stop()` in an after hook, and by a
 * process exit handler if a test dies first. A missing java or mvn, a failed download or a node
 * that does not come up fails loudly (never skipped).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import cassandra from 'cassandra-driver';
import { freeLoopbackPort } from '../../cli/demo/free-port.js';
import { stopAtExit } from './stop-at-exit.js';

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

export interface CassandraNode {
  /** `127.0.0.1:PORT`, for `contactPoints` and `--contact-points`. */
  readonly contactPoint: string;
  readonly nativePort: number;
  /** SIGTERM, wait for the JVM to end, start again on the same data and ports, wait until ready. */
  restart(): Promise<void>;
  /** Stops the JVM (SIGTERM, SIGKILL after a while) without removing the data. */
  stopNode(): Promise<void>;
  startNode(): Promise<void>;
  /** Stops the node and removes its files. Idempotent. */
  stop(): Promise<void>;
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  const nativePort = await freeLoopbackPort();
  let storagePort = await freeLoopbackPort();
  while (storagePort === nativePort) storagePort = await freeLoopbackPort();
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

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const logTail = (): string => {
    const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-40).join('\n') : '');
    return `--- system.log ---\n${read(logFile)}\n--- stdout/stderr ---\n${read(outFile)}`;
  };

  const startNode = async (): Promise<void> => {
    const out = openSync(outFile, 'a');
    const started = spawn('java', javaArgs, { cwd: root, stdio: ['ignore', out, out] });
    closeSync(out);
    child = started;
    let exitNote: string | undefined;
    exited = new Promise((resolve) => {
      started.once('exit', (code, signal) => {
        exitNote = `exited with ${code ?? signal}`;
        resolve();
      });
      started.once('error', (error) => {
        exitNote = `could not run java: ${error.message}`;
        resolve();
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitNote !== undefined) throw new Error(`Cassandra ${CASSANDRA_VERSION} ${exitNote} before accepting CQL clients\n${logTail()}`);
      if ((await portAccepts(nativePort)) && (!auth || (await superuserCanLogIn(nativePort)))) return;
      await sleep(250);
    }
    started.kill('SIGKILL');
    throw new Error(`Cassandra ${CASSANDRA_VERSION} did not accept CQL clients on port ${nativePort} within ${START_TIMEOUT_MS / 1000} s\n${logTail()}`);
  };

  const stopNode = async (): Promise<void> => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    running.kill('SIGTERM');
    const killed = sleep(STOP_TIMEOUT_MS).then(() => 'timeout' as const);
    if ((await Promise.race([exited.then(() => 'exited' as const), killed])) === 'timeout') running.kill('SIGKILL');
    await exited;
    child = undefined;
  };

  const forgetAtExit = stopAtExit(() => {
    child?.kill('SIGKILL');
  });
  try {
    await startNode();
  } catch (error) {
    child?.kill('SIGKILL');
    forgetAtExit();
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  let removed = false;
  return {
    contactPoint: `127.0.0.1:${nativePort}`,
    nativePort,
    async restart() {
      await stopNode();
      await startNode();
    },
    stopNode,
    startNode,
    async stop() {
      if (removed) return;
      removed = true;
      try {
        child?.kill('SIGKILL'); // the data is thrown away: no need to drain
        await exited;
      } finally {
        forgetAtExit();
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
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
