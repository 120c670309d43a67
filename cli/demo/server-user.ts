/**
 * Whom the demo's PostgreSQL runs as. PostgreSQL refuses to run as root, so as root we run it as
 * the `postgres` user, created if missing the way Debian's postgresql-common creates it (a system
 * user with the same home and group), so a later `apt install postgresql` adopts it instead of
 * refusing a non-system user of that name. Anyone else runs it as themselves.
 */
import { spawnSync } from 'node:child_process';
import { DemoFailure } from './demo-failure.js';

export const SERVER_USER = 'postgres';

export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function idOf(flag: '-u' | '-g'): number | undefined {
  const result = spawnSync('id', [flag, SERVER_USER], { encoding: 'utf8' });
  const id = Number.parseInt(result.stdout ?? '', 10);
  return result.status === 0 && Number.isInteger(id) ? id : undefined;
}

/** The user to run the server as when we are root; undefined when we are not root (run as ourselves). */
export function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (idOf('-u') === undefined) {
    const created = spawnSync(
      'useradd',
      [
        '--system',
        '--user-group',
        '--home-dir',
        '/var/lib/postgresql',
        '--no-create-home',
        '--shell',
        '/bin/bash',
        '--comment',
        'PostgreSQL administrator',
        SERVER_USER,
      ],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) {
      const why = created.error?.message ?? created.stderr.trim();
      throw new DemoFailure(
        `PostgreSQL does not run as root and the '${SERVER_USER}' user could not be created (useradd: ${why}): create that user, or run the demo as a normal user`,
      );
    }
  }
  const uid = idOf('-u');
  const gid = idOf('-g');
  if (uid === undefined || gid === undefined) throw new DemoFailure(`cannot read the uid/gid of the '${SERVER_USER}' user (\`id ${SERVER_USER}\` failed)`);
  return { name: SERVER_USER, uid, gid };
}
