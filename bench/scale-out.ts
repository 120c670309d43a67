/**
 * Scale-out benchmark: the figures behind the README's "Scaling out" arithmetic. One PostgreSQL
 * archive, migrated three times in the same run (reset in between):
 *
 *   (a) one `migrate postgres` process decoding in its own worker threads (the default);
 *   (b) one process decoding through one remote sidecar (`--sidecar HOST:PORT`);
 *   (c) N shard processes (`--shard K/N`, run together, as an Indexed Job runs them) through
 *       S sidecars behind one round-robin target (`--sidecar A,B,C`).
 *
 * For each: rows/s (wall), and CPU time per row of every process involved, read from
 * /proc/<pid>/stat: the migrate processes, the sidecars, and PostgreSQL (all its processes). CPU
 * per row is what sizes a deployment: 1e6 / (sidecar CPU µs per row) is the rows/s one sidecar
 * core sustains, whatever else shares the machine; the wall rates here only mean something as
 * ratios, on a 2-core machine everything competes for the same cores.
 *
 *   npm run bench:scale-out -- [--rows 300000] [--shards 4] [--sidecars 3] [--sidecar-workers 1]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { fillDemoArchive } from '../cli/demo/demo-data.js';
import { MONGOOSEIM_33_PG_SCHEMA } from '../cli/demo/mongooseim-33-schema.js';
import { startPostgres } from '../test/support/postgres.js';
import { startSidecarProcess, type SidecarProcess } from '../test/support/sidecar-process.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process and its waited-for children, in seconds. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** PostgreSQL's processes: the postmaster and every backend it forked. */
function postgresPids(postmaster: number): number[] {
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

interface Run {
  readonly label: string;
  readonly wallSeconds: number;
  readonly migrateCpu: number;
  readonly sidecarCpu: number;
  readonly databaseCpu: number;
}

/** Runs the migrate processes together; their CPU is read just before each exits (children are reaped by us). */
async function runMigrations(argsPerProcess: string[][]): Promise<{ wallSeconds: number; cpu: number }> {
  const started = performance.now();
  let cpu = 0;
  await Promise.all(
    argsPerProcess.map(
      (args) =>
        new Promise<void>((resolve, reject) => {
          const child: ChildProcess = spawn(process.execPath, ['bin/mim-sender-jid.js', 'migrate', 'postgres', ...args], {
            cwd: REPO_ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let output = '';
          let last = 0;
          child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
          child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
          // /proc/<pid>/stat disappears once the child is reaped: sample until then.
          const poll = setInterval(() => (last = Math.max(last, cpuSeconds(child.pid!))), 50);
          child.on('exit', (code) => {
            clearInterval(poll);
            cpu += last;
            if (code === 0) resolve();
            else reject(new Error(`migrate ${args.join(' ')} exited with ${code}:\n${output.slice(-2000)}`));
          });
        }),
    ),
  );
  return { wallSeconds: (performance.now() - started) / 1000, cpu };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '300000' },
      shards: { type: 'string', default: '4' },
      sidecars: { type: 'string', default: '3' },
      'sidecar-workers': { type: 'string', default: '1' },
      'batch-size': { type: 'string', default: '2000' },
    },
  });
  const rows = Number(values.rows);
  const shards = Number(values.shards);
  const sidecarCount = Number(values.sidecars);
  const server = await startPostgres();
  const sidecars: SidecarProcess[] = [];
  try {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    for (const statement of MONGOOSEIM_33_PG_SCHEMA) await client.query(statement);
    process.stderr.write(`bench: filling ${rows.toLocaleString('en-US')} rows...\n`);
    await fillDemoArchive(client, rows);
    await client.query('ALTER TABLE mam_muc_message ADD COLUMN sender_id INT');
    await client.query('CREATE INDEX i_mam_muc_message_sender_id ON mam_muc_message USING BTREE (sender_id)');
    await client.query('VACUUM ANALYZE mam_muc_message');
    // postmaster.pid's first line; PostgreSQL's processes are the postmaster and its children.
    const postmasterPid = Number(readFileSync(`${server.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);

    for (let i = 0; i < sidecarCount; i++)
      sidecars.push(await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--pool-size', values['sidecar-workers']]));
    const common = ['--url', server.url, '--report', '/dev/null', '--batch-size', values['batch-size'], '--progress-interval', '3600'];
    const runs: Run[] = [];
    const measure = async (label: string, argsPerProcess: string[][]): Promise<void> => {
      await client.query('UPDATE mam_muc_message SET sender_id = NULL');
      await client.query('VACUUM ANALYZE mam_muc_message');
      const sidecarBefore = sidecars.reduce((sum, s) => sum + cpuSeconds(s.child.pid!), 0);
      const databaseBefore = postgresPids(postmasterPid).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      process.stderr.write(`bench: ${label}...\n`);
      const run = await runMigrations(argsPerProcess);
      const sidecarCpu = sidecars.reduce((sum, s) => sum + cpuSeconds(s.child.pid!), 0) - sidecarBefore;
      const databaseCpu = postgresPids(postmasterPid).reduce((sum, pid) => sum + cpuSeconds(pid), 0) - databaseBefore;
      const unset = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM mam_muc_message WHERE sender_id IS NULL')).rows[0].n);
      if (unset > rows / 50) throw new Error(`${label}: ${unset} rows still without sender_id`);
      runs.push({ label, wallSeconds: run.wallSeconds, migrateCpu: run.cpu, sidecarCpu, databaseCpu });
    };
    const everySidecar = sidecars.map((s) => s.address).join(',');
    await measure('(a) 1 process, decoding in-process', [['--apply-schema', '--reset', '--workers', values['sidecar-workers'], ...common]]);
    await measure('(b) 1 process, 1 remote sidecar', [['--reset', '--sidecar', sidecars[0].address, ...common]]);
    await measure(
      `(c) ${shards} shards, ${sidecarCount} sidecars round-robin`,
      Array.from({ length: shards }, (_, k) => ['--reset', '--shard', `${k}/${shards}`, '--sidecar', everySidecar, ...common]),
    );
    await client.end();

    const base = runs[0];
    const us = (seconds: number): string => ((seconds * 1e6) / rows).toFixed(1);
    process.stdout.write(`${rows.toLocaleString('en-US')} rows, compressed eterm payloads, PostgreSQL ${server.url.replace(/\/\/[^@]*@/, '//')}\n`);
    process.stdout.write('run | rows/s (wall) | ratio to (a) | CPU µs per row: migrate / sidecars / PostgreSQL\n');
    for (const r of runs) {
      process.stdout.write(
        `${r.label} | ${Math.round(rows / r.wallSeconds).toLocaleString('en-US')} | ${(base.wallSeconds / r.wallSeconds).toFixed(2)} | ${us(r.migrateCpu)} / ${us(r.sidecarCpu)} / ${us(r.databaseCpu)}\n`,
      );
    }
    const remote = runs.slice(1);
    const sidecarUs = remote.reduce((sum, r) => sum + r.sidecarCpu, 0) / remote.length;
    process.stdout.write(`one sidecar core sustains about ${Math.round(rows / sidecarUs).toLocaleString('en-US')} rows/s (mean of the remote runs)\n`);
    process.stdout.write(JSON.stringify({ rows, shards, sidecars: sidecarCount, runs }) + '\n');
  } finally {
    for (const s of sidecars) await s.stop();
    await server.stop();
  }
}

await main();
