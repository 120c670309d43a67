/**
 * The sidecar's configuration: command-line flags and environment variables become one typed,
 * validated value. Every limit is a named constant here, with its flag and its variable.
 *
 * Precedence: flag, then environment variable, then default. A bad value is refused with a
 * message naming the flag and the variable; nothing is guessed.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../decode/index.js';

export const DEFAULT_LISTEN = '127.0.0.1:50051';
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';
export const DEFAULT_MAX_ITEMS_PER_BATCH = 10_000;
export const DEFAULT_MAX_PAYLOAD_BYTES = DEFAULT_DECODE_LIMITS.maxPayloadBytes; // 1 MiB
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_DECOMPRESSED_BYTES = DEFAULT_DECODE_LIMITS.maxDecompressedBytes; // 16 MiB
export const DEFAULT_MAX_DEPTH = DEFAULT_DECODE_LIMITS.maxDepth;
export const DEFAULT_MAX_XML_ATTRIBUTES = DEFAULT_DECODE_LIMITS.maxXmlAttributes;
/** Batches waiting for a free worker, over all calls; past it calls get RESOURCE_EXHAUSTED at once. */
export const DEFAULT_MAX_QUEUED_BATCHES = 64;
/** Batches of one stream being decoded or waiting for their turn to be answered. */
export const DEFAULT_STREAM_WINDOW_BATCHES = 4;
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Sum of the inflated sizes compressed terms of one request declare: 16 terms at the per-item limit. */
export const DEFAULT_MAX_REQUEST_DECOMPRESSED_BYTES = 256 * 1024 * 1024;
/** Work of one worker task (payload + declared inflated bytes); bigger requests become several tasks. */
export const DEFAULT_TASK_SLICE_BYTES = 4 * 1024 * 1024;
/** V8 old-generation heap of each decoding worker (piscina resourceLimits), in MiB. */
export const DEFAULT_WORKER_MAX_HEAP_MB = 512;
/** HTTP/2 streams (calls) at once on one connection (grpc.max_concurrent_streams). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/** Node's HTTP/2 session memory per connection, in MB (grpc-node.max_session_memory). */
export const DEFAULT_MAX_SESSION_MEMORY_MB = 64;
/** Bytes of request messages still arriving, all calls together (each counted at its announced size). */
export const DEFAULT_MAX_ARRIVING_REQUEST_BYTES = 256 * 1024 * 1024;
/** A request message whose bytes stop coming for this long is dropped. */
export const DEFAULT_REQUEST_IDLE_TIMEOUT_MS = 15_000;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface SidecarConfig {
  /** host:port of the gRPC server; port 0 picks a free port. */
  readonly listen: string;
  /** host:port of the Prometheus endpoint (GET /metrics), or null for none. */
  readonly metricsListen: string | null;
  /** PEM files; tlsCert and tlsKey together turn TLS on, tlsClientCa also asks clients for certificates. */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly tlsClientCa: string | null;
  readonly maxItemsPerBatch: number;
  readonly maxPayloadBytes: number;
  readonly maxRequestBytes: number;
  readonly maxDecompressedBytes: number;
  readonly maxDepth: number;
  readonly maxXmlAttributes: number;
  readonly poolSize: number;
  readonly maxQueuedBatches: number;
  readonly streamWindowBatches: number;
  readonly shutdownGraceMs: number;
  readonly maxRequestDecompressedBytes: number;
  readonly taskSliceBytes: number;
  readonly workerMaxHeapMb: number;
  readonly maxConcurrentStreams: number;
  readonly maxSessionMemoryMb: number;
  readonly maxArrivingRequestBytes: number;
  /** 0: no timeout. */
  readonly requestIdleTimeoutMs: number;
  readonly logLevel: LogLevel;
}

export function decodeLimitsOf(config: SidecarConfig): DecodeLimits {
  return {
    maxPayloadBytes: config.maxPayloadBytes,
    maxDecompressedBytes: config.maxDecompressedBytes,
    maxDepth: config.maxDepth,
    maxXmlAttributes: config.maxXmlAttributes,
  };
}

export function defaultConfig(): SidecarConfig {
  return {
    listen: DEFAULT_LISTEN,
    metricsListen: DEFAULT_METRICS_LISTEN,
    tlsCert: null,
    tlsKey: null,
    tlsClientCa: null,
    maxItemsPerBatch: DEFAULT_MAX_ITEMS_PER_BATCH,
    maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
    maxDecompressedBytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
    maxDepth: DEFAULT_MAX_DEPTH,
    maxXmlAttributes: DEFAULT_MAX_XML_ATTRIBUTES,
    poolSize: availableParallelism(),
    maxQueuedBatches: DEFAULT_MAX_QUEUED_BATCHES,
    streamWindowBatches: DEFAULT_STREAM_WINDOW_BATCHES,
    shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
    maxRequestDecompressedBytes: DEFAULT_MAX_REQUEST_DECOMPRESSED_BYTES,
    taskSliceBytes: DEFAULT_TASK_SLICE_BYTES,
    workerMaxHeapMb: DEFAULT_WORKER_MAX_HEAP_MB,
    maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
    maxSessionMemoryMb: DEFAULT_MAX_SESSION_MEMORY_MB,
    maxArrivingRequestBytes: DEFAULT_MAX_ARRIVING_REQUEST_BYTES,
    requestIdleTimeoutMs: DEFAULT_REQUEST_IDLE_TIMEOUT_MS,
    logLevel: 'info',
  };
}

type Kind = 'address' | 'optional-address' | 'path' | 'count' | 'bytes' | 'ms' | 'log-level';

interface Setting {
  readonly flag: string;
  readonly key: keyof SidecarConfig;
  readonly kind: Kind;
  readonly help: string;
  /** Upper bound for numbers: a typo such as an extra zero should fail, not eat the machine. */
  readonly max?: number;
}

const GiB = 1024 * 1024 * 1024;

/** The table of settings: flag, environment variable (derived), meaning. README's table comes from here. */
export const SETTINGS: readonly Setting[] = [
  { flag: 'listen', key: 'listen', kind: 'address', help: 'host:port to serve gRPC on (port 0: any free port)' },
  { flag: 'metrics-listen', key: 'metricsListen', kind: 'optional-address', help: "host:port for Prometheus GET /metrics; 'off' for none" },
  { flag: 'tls-cert', key: 'tlsCert', kind: 'path', help: 'PEM server certificate (chain); with --tls-key turns TLS on' },
  { flag: 'tls-key', key: 'tlsKey', kind: 'path', help: 'PEM private key of --tls-cert' },
  { flag: 'tls-client-ca', key: 'tlsClientCa', kind: 'path', help: 'PEM CA bundle: clients must present a certificate it signed (mutual TLS)' },
  { flag: 'max-items-per-batch', key: 'maxItemsPerBatch', kind: 'count', max: 10_000_000, help: 'items in one request; more: INVALID_ARGUMENT' },
  {
    flag: 'max-payload-bytes',
    key: 'maxPayloadBytes',
    kind: 'bytes',
    max: GiB,
    help: 'bytes of one payload; more: that item fails with ERROR_CODE_PAYLOAD_TOO_LARGE',
  },
  { flag: 'max-request-bytes', key: 'maxRequestBytes', kind: 'bytes', max: 2 * GiB - 1, help: 'bytes of one request message; more: RESOURCE_EXHAUSTED' },
  {
    flag: 'max-decompressed-bytes',
    key: 'maxDecompressedBytes',
    kind: 'bytes',
    max: 4 * GiB,
    help: 'bytes a compressed term may inflate to; more: that item fails with ERROR_CODE_PAYLOAD_TOO_LARGE',
  },
  { flag: 'max-depth', key: 'maxDepth', kind: 'count', max: 100_000, help: 'nesting depth of terms or XML elements; deeper: ERROR_CODE_MALFORMED' },
  { flag: 'max-xml-attributes', key: 'maxXmlAttributes', kind: 'count', max: 100_000, help: 'attributes on one XML element; more: ERROR_CODE_MALFORMED' },
  { flag: 'pool-size', key: 'poolSize', kind: 'count', max: 1024, help: 'decoding worker threads (default: the core count)' },
  {
    flag: 'max-queued-batches',
    key: 'maxQueuedBatches',
    kind: 'count',
    max: 1_000_000,
    help: 'batches waiting for a worker, all calls together; more: RESOURCE_EXHAUSTED at once',
  },
  {
    flag: 'stream-window-batches',
    key: 'streamWindowBatches',
    kind: 'count',
    max: 10_000,
    help: 'batches of one stream in work before the server stops reading it',
  },
  {
    flag: 'shutdown-grace-ms',
    key: 'shutdownGraceMs',
    kind: 'ms',
    max: 3_600_000,
    help: 'on SIGTERM, time given to calls in flight before they are ended with UNAVAILABLE',
  },
  {
    flag: 'max-request-decompressed-bytes',
    key: 'maxRequestDecompressedBytes',
    kind: 'bytes',
    max: 1024 * GiB,
    help: 'bytes the compressed terms of one request may inflate to, together (as they declare); items past it fail with ERROR_CODE_PAYLOAD_TOO_LARGE',
  },
  {
    flag: 'task-slice-bytes',
    key: 'taskSliceBytes',
    kind: 'bytes',
    max: 4 * GiB,
    help: 'work of one worker task (payload bytes + inflated bytes); a bigger request is cut into tasks that take turns with other calls',
  },
  {
    flag: 'worker-max-heap-mb',
    key: 'workerMaxHeapMb',
    kind: 'count',
    max: 65_536,
    help: 'V8 heap of each decoding worker, MiB; a batch needing more fails with RESOURCE_EXHAUSTED, the process lives on',
  },
  { flag: 'max-concurrent-streams', key: 'maxConcurrentStreams', kind: 'count', max: 2 ** 31 - 1, help: 'calls (HTTP/2 streams) at once on one connection' },
  {
    flag: 'max-session-memory-mb',
    key: 'maxSessionMemoryMb',
    kind: 'count',
    max: 1_000_000,
    help: "HTTP/2 memory of one connection, MB (Node's maxSessionMemory); past it new calls on it are refused",
  },
  {
    flag: 'max-arriving-request-bytes',
    key: 'maxArrivingRequestBytes',
    kind: 'bytes',
    max: 1024 * GiB,
    help: 'request messages still arriving, all calls together, at their announced size; more: RESOURCE_EXHAUSTED at once',
  },
  {
    flag: 'request-idle-timeout-ms',
    key: 'requestIdleTimeoutMs',
    kind: 'ms',
    max: 3_600_000,
    help: 'a request message whose bytes stop coming this long is dropped (DEADLINE_EXCEEDED); 0: never',
  },
  { flag: 'log-level', key: 'logLevel', kind: 'log-level', help: `JSON log level on stdout: ${LOG_LEVELS.join(', ')}` },
];

export const ENV_PREFIX = 'MIM_SENDER_JID_';

export function envVarOf(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replaceAll('-', '_');
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function formatDefault(setting: Setting, defaults: SidecarConfig = defaultConfig()): string {
  const value = defaults[setting.key];
  return value === null ? '(none)' : String(value);
}

export function usage(): string {
  const defaults = defaultConfig();
  const lines = ['usage: mim-sender-jid serve [options]', '', 'Every option can also be set by the environment variable shown.', ''];
  for (const s of SETTINGS) {
    lines.push(`  --${s.flag} VALUE   (${envVarOf(s.flag)}, default ${formatDefault(s, defaults)})`);
    lines.push(`      ${s.help}`);
  }
  return lines.join('\n') + '\n';
}

/** Flags (argv) and environment -> config. Throws ConfigError on any bad or unknown value. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  let parsed: Record<string, string | boolean | undefined>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const raw: Record<string, string> = {};
  for (const s of SETTINGS) {
    const fromFlag = parsed[s.flag];
    const fromEnv = env[envVarOf(s.flag)];
    if (typeof fromFlag === 'string') raw[s.key] = fromFlag;
    else if (fromEnv !== undefined && fromEnv !== '') raw[s.key] = fromEnv;
  }
  return resolveConfig(raw, (key) => {
    const s = settingOf(key);
    return `--${s.flag} (${envVarOf(s.flag)})`;
  });
}

/** Programmatic settings (startSidecar) -> config, validated the same way as flags. */
export function configFrom(partial: Partial<SidecarConfig>): SidecarConfig {
  const merged = { ...defaultConfig(), ...stripUndefined(partial) } as SidecarConfig;
  validate(merged, (key) => `${key} (--${settingOf(key).flag})`);
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function settingOf(key: string): Setting {
  const s = SETTINGS.find((x) => x.key === key);
  if (s === undefined) throw new Error(`no setting ${key}`);
  return s;
}

function resolveConfig(raw: Record<string, string>, nameOf: (key: string) => string): SidecarConfig {
  const config: Record<string, unknown> = { ...defaultConfig() };
  for (const s of SETTINGS) {
    const text = raw[s.key];
    if (text === undefined) continue;
    config[s.key] = parseValue(s, text.trim(), nameOf(s.key));
  }
  const result = config as unknown as SidecarConfig;
  validate(result, nameOf);
  return result;
}

function parseValue(s: Setting, text: string, name: string): unknown {
  switch (s.kind) {
    case 'address':
    case 'path':
      if (text === '') throw new ConfigError(`${name}: empty value`);
      return text;
    case 'optional-address':
      return text === 'off' || text === 'none' ? null : text;
    case 'log-level':
      return text;
    case 'count':
    case 'bytes':
    case 'ms':
      if (!/^[0-9]+$/.test(text)) {
        throw new ConfigError(`${name}: '${text}' is not a whole number${s.kind === 'bytes' ? ' of bytes' : ''}`);
      }
      return Number(text);
  }
}

function validate(config: SidecarConfig, nameOf: (key: string) => string): void {
  for (const s of SETTINGS) {
    const value = config[s.key];
    const name = nameOf(s.key);
    switch (s.kind) {
      case 'address':
        parseHostPort(String(value), name);
        break;
      case 'optional-address':
        if (value !== null) parseHostPort(String(value), name);
        break;
      case 'path':
        if (value !== null && (typeof value !== 'string' || value === '')) throw new ConfigError(`${name}: expected a file path`);
        break;
      case 'log-level':
        if (!LOG_LEVELS.includes(value as LogLevel)) {
          throw new ConfigError(`${name}: '${String(value)}' is not one of ${LOG_LEVELS.join(', ')}`);
        }
        break;
      default: {
        const n = value as number;
        const min = s.kind === 'ms' ? 0 : 1;
        if (!Number.isSafeInteger(n) || n < min || (s.max !== undefined && n > s.max)) {
          throw new ConfigError(`${name}: ${String(value)} is out of range [${min}, ${s.max ?? Number.MAX_SAFE_INTEGER}]`);
        }
      }
    }
  }
  if ((config.tlsCert === null) !== (config.tlsKey === null)) {
    throw new ConfigError(`${nameOf('tlsCert')} and ${nameOf('tlsKey')} go together: give both or neither`);
  }
  if (config.maxArrivingRequestBytes < config.maxRequestBytes) {
    throw new ConfigError(
      `${nameOf('maxArrivingRequestBytes')} (${config.maxArrivingRequestBytes}) is below ${nameOf('maxRequestBytes')} (${config.maxRequestBytes}): a request of the largest size could never arrive`,
    );
  }
  if (config.tlsClientCa !== null && config.tlsCert === null) {
    throw new ConfigError(`${nameOf('tlsClientCa')} needs TLS: give ${nameOf('tlsCert')} and ${nameOf('tlsKey')} too`);
  }
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:50051", "[::1]:0", "localhost:8080" -> host and port. */
export function parseHostPort(text: string, name = 'address'): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text);
  if (match === null) throw new ConfigError(`${name}: '${text}' is not HOST:PORT (IPv6 as [::1]:PORT)`);
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(`${name}: port ${port} is over 65535`);
  return { host: (match[1] ?? match[2]) as string, port };
}

/** True for a host only this machine can reach: localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
