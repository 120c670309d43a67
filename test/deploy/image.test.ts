/**
 * deploy/Dockerfile, without a container runtime (none runs on our machines): its instructions are
 * read, and its two stages are replayed in temporary directories, the Dockerfile's own commands
 * run there: the build stage compiles only what it copies, the runtime stage installs production
 * dependencies only, and the result must run `serve` (answering on gRPC and metrics) and
 * `migrate` for every backend. What this cannot tell: anything about the base image itself.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BACKEND_KINDS } from '../../clients/backends/registry.js';
import { DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN, parseHostPort } from '../../services/sidecar/config.js';
import { IMAGE_UID, REPO_ROOT } from './manifest-checks.js';

const execFileAsync = promisify(execFile);

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions by stage: comments dropped, continuation lines joined. */
export function parseDockerfile(text: string): Instruction[][] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*\S)\s*$/.exec(line);
    if (m === null) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stages.push([]);
    if (stages.length === 0) throw new Error(`${op} before FROM`);
    stages[stages.length - 1].push({ op, args: m[2].replace(/\s+/g, ' ') });
  }
  return stages;
}

// What .dockerignore keeps out of the build context: paths from the root, or "**/*.EXT" patterns.
function ignoredByDockerignore(): (relativePath: string) => boolean {
  const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  return (path) =>
    patterns.some((pattern) => {
      const ext = /^\*\*\/\*(\.[\w.]+)$/.exec(pattern);
      if (ext !== null) return path.endsWith(ext[1]);
      if (/[*?[]/.test(pattern)) throw new Error(`.dockerignore pattern '${pattern}': not understood by this test`);
      return path === pattern || path.startsWith(pattern + '/');
    });
}

const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const [buildStage, runtimeStage] = stages;
const all = (stage: Instruction[], op: string): string[] => stage.filter((i) => i.op === op).map((i) => i.args);

describe('deploy/Dockerfile, read', () => {
  test('two stages on Node 20 slim images; the runtime one copies no node_modules from the build', () => {
    assert.equal(stages.length, 2);
    for (const stage of stages) assert.match(stage[0].args, /^node:20[-.\w]*slim\b/);
    assert.match(stages[0][0].args, / AS build$/i);
    for (const copy of all(runtimeStage, 'COPY')) assert.doesNotMatch(copy, /node_modules/);
    assert.ok(
      all(runtimeStage, 'RUN').some((run) => /npm ci --omit=dev/.test(run)),
      'npm ci --omit=dev in the runtime stage',
    );
  });

  test('non-root numeric user, the CLI as entrypoint, the gRPC and metrics ports exposed', () => {
    assert.deepEqual(all(runtimeStage, 'USER'), [`${IMAGE_UID}:${IMAGE_UID}`]);
    assert.deepEqual(JSON.parse(all(runtimeStage, 'ENTRYPOINT')[0]), ['node', '/app/bin/mim-sender-jid.js']);
    const exposed = all(runtimeStage, 'EXPOSE').join(' ').split(' ').map(Number);
    assert.ok(exposed.includes(parseHostPort(DEFAULT_LISTEN).port), `EXPOSE ${exposed} includes the gRPC port`);
    assert.ok(exposed.includes(parseHostPort(DEFAULT_METRICS_LISTEN).port), `EXPOSE ${exposed} includes the metrics port`);
    assert.equal(all(runtimeStage, 'WORKDIR').at(-1), '/data', 'the working directory (where reports go) is /data, as the manifests mount it');
  });
});

describe('deploy/Dockerfile, replayed in temporary directories', () => {
  let root: string;
  /** Image paths (/src, /app, /data) -> temporary directories. */
  const at = (imagePath: string): string => join(root, imagePath);
  let sidecar: ReturnType<typeof spawn> | undefined;
  const ignored = ignoredByDockerignore();

  /** Runs one RUN command of the Dockerfile with sh, in `workdir`. */
  async function run(command: string, workdir: string): Promise<void> {
    await execFileAsync('sh', ['-ec', command], {
      cwd: workdir,
      // The machine's npm cache holds every package already (npm ci ran before the tests).
      env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  /** Replays one stage: WORKDIR, COPY (from the repository or an earlier stage), RUN. */
  async function replay(stage: Instruction[], skipRun: (command: string) => boolean): Promise<void> {
    let workdir = '/';
    for (const { op, args } of stage) {
      if (op === 'WORKDIR') {
        workdir = args;
        mkdirSync(at(workdir), { recursive: true });
      } else if (op === 'COPY') {
        const words = args.split(' ');
        const from = words[0].startsWith('--from=') ? words.shift() : undefined;
        const dest = words.pop()!;
        for (const src of words) {
          const source = from === undefined ? join(REPO_ROOT, src) : at(src);
          const target = dest.endsWith('/') ? join(at(workdir), dest, src.split('/').at(-1)!) : join(at(dest.startsWith('/') ? dest : join(workdir, dest)));
          const filter = from === undefined ? (p: string) => !ignored(relative(REPO_ROOT, p)) : () => true;
          cpSync(source, target, { recursive: true, filter });
        }
      } else if (op === 'RUN') {
        // A RUN of several commands: each, except the ones the replay must not do on this machine.
        const commands = args.split(/\s*&&\s*/).filter((c) => !skipRun(c));
        for (const command of commands) {
          if (/^(mkdir|chown)\b/.test(command)) continue; // /data: a temporary directory here
          await run(command, at(workdir));
        }
      }
    }
  }

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'mim-image-'));
    // Build stage: `npm ci` (all dependencies) is the repository's node_modules, linked.
    mkdirSync(at('/src'), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(at('/src'), 'node_modules'));
    await replay(buildStage, (c) => /^npm ci\b/.test(c));
    // Runtime stage: its own install, production dependencies only. `npm cache clean` would
    // empty this machine's cache: not replayed.
    await replay(runtimeStage, (c) => /^npm cache clean\b/.test(c));
    mkdirSync(at('/data'), { recursive: true });
  });

  after(() => {
    sidecar?.kill('SIGKILL');
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    execFileAsync(process.execPath, [join(at('/app'), 'bin/mim-sender-jid.js'), ...args], {
      cwd: at('/data'),
      env: { ...process.env, NODE_ENV: 'production' },
    });

  test('the build compiled only the CLI, the clients and the services', () => {
    assert.ok(existsSync(join(at('/app'), 'dist/cli/cli.js')));
    assert.ok(!existsSync(join(at('/app'), 'dist/test')), 'no tests in the image');
    assert.ok(!existsSync(join(at('/app'), 'node_modules/typescript')), 'no devDependency installed');
    assert.ok(!existsSync(join(at('/app'), 'node_modules/kubernetes-models')), 'no devDependency installed');
  });

  test('`serve --help` and `migrate KIND --help` for every backend run on production dependencies', async () => {
    assert.match((await cli(['serve', '--help'])).stdout, /--listen/);
    for (const kind of BACKEND_KINDS) assert.match((await cli(['migrate', kind, '--help'])).stdout, new RegExp(`usage: mim-sender-jid migrate ${kind}`));
  });

  test('`serve` starts and serves metrics, stops on SIGTERM; `migrate` loads its backend and its sidecar client', async () => {
    const child = spawn(
      process.execPath,
      [join(at('/app'), 'bin/mim-sender-jid.js'), 'serve', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '1'],
      {
        cwd: at('/data'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    sidecar = child;
    const serving = await new Promise<{ address: string; metrics: string }>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`sidecar did not start: ${out}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        for (const line of out.split('\n')) {
          if (!line.includes('"sidecar serving"')) continue;
          clearTimeout(timer);
          const log = JSON.parse(line);
          resolve({ address: log.address, metrics: log.metrics });
        }
      });
      child.on('exit', (code) => reject(new Error(`sidecar exited ${code}: ${out}`)));
    });
    const metrics = await fetch(`http://${serving.metrics}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /mim_sender_jid_items_total/);

    // A database that refuses connections: the command gets as far as connecting, with every module loaded.
    const migrate = await cli(['migrate', 'postgres', '--sidecar', serving.address, '--url', 'postgres://u:p@127.0.0.1:1/none', '--max-retries', '0']).then(
      () => assert.fail('migrate succeeded without a database'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(migrate.code, 1, migrate.stderr);
    assert.match(migrate.stderr, /decoding with the sidecar/);
    assert.match(migrate.stderr, /cannot connect to 127\.0\.0\.1:1: nothing is listening there \(connection refused\)/);

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (c) => resolve(c))));
    assert.equal(code, 0);
  });
});
