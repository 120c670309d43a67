/** `postgres|mysql|mssql` + URL -> a Backend; drivers are loaded only when asked for. */
import type { Backend } from './types.js';

export const BACKEND_KINDS = ['postgres', 'mysql', 'mssql'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export function isBackendKind(value: string | undefined): value is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(value ?? '');
}

export async function openBackend(kind: BackendKind, url: string, poolSize: number): Promise<Backend> {
  switch (kind) {
    case 'postgres': {
      const { PostgresBackend } = await import('../postgres.js');
      return new PostgresBackend({ url, poolSize });
    }
    case 'mysql': {
      const { MysqlBackend } = await import('../mysql.js');
      return new MysqlBackend({ url, poolSize });
    }
    case 'mssql': {
      const { MssqlBackend } = await import('../mssql.js');
      return new MssqlBackend({ url, poolSize });
    }
  }
}
