/**
 * Every backend the CLI knows, each loaded only when asked for. A backend module's default export
 * is a `BackendDefinition`: its own flags, its usage lines and how to open it. Adding a backend
 * is one module here plus one line in `BACKEND_MODULES`; `cli/` needs no change.
 */
import type { AnyBackend } from '../pipeline/types.js';

/** A flag as `node:util` parseArgs takes it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface OpenContext {
  /** The command: `migrate` or `verify` (a backend may open fewer connections for verify). */
  readonly command: 'migrate' | 'verify';
  /** Batches in flight: a backend sizes its connection pool from it. */
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

export interface BackendDefinition {
  readonly kind: string;
  /** One line for `migrate --help`. */
  readonly summary: string;
  /** The backend's own flags (beyond the pipeline's common ones). */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Usage lines of those flags, aligned like the common ones. */
  readonly usage: string;
  /** Most `--shard` processes, when the backend's partitions allow fewer than the pipeline's limit. */
  readonly maxShards?: number;
  /** Opens the backend from the parsed flags; throws `UsageError` for a flag it cannot use. */
  open(values: FlagValues, context: OpenContext): Promise<AnyBackend>;
}

/** A flag or argument the user must change: printed with the usage, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const BACKEND_MODULES: Record<string, () => Promise<{ default: BackendDefinition }>> = {
  postgres: () => import('./sql/postgres.js'),
  mysql: () => import('./sql/mysql.js'),
  mssql: () => import('./sql/mssql.js'),
  cassandra: () => import('./cassandra/definition.js'),
  elasticsearch: () => import('./elasticsearch/definition.js'),
  riak: () => import('./riak/definition.js'),
};

export const BACKEND_KINDS = Object.keys(BACKEND_MODULES);

export async function loadBackend(kind: string | undefined): Promise<BackendDefinition> {
  const load = kind === undefined ? undefined : BACKEND_MODULES[kind];
  if (load === undefined) throw new UsageError(`first argument must be one of ${BACKEND_KINDS.join(', ')}, got '${kind ?? ''}'`);
  return (await load()).default;
}
