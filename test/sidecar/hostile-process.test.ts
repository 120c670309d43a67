/**
 * `mim-sender-jid serve` as a process under hostile requests: memory is measured from outside
 * (/proc/PID/status: VmHWM, the peak resident set of the whole process, worker threads included),
 * the process must live on, and signals at any moment of start-up end it with 0.
 *
 * The children run with NODE_OPTIONS=--max-old-space-size=1024 so that a regression dies at about
 * 1 GiB instead of taking the shared machine's memory (the limit covers worker threads too).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { seededRandom } from '../../cli/demo/seeded-random.js';
import { SidecarClient } from '../../clients/decoder-client/index.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { stopAtExit } from '../support/stop-at-exit.js';
import { grpcFailure, metricValue, UNARY_PATH, STREAM_PATH, waitFor } from './grpc-test-kit.js';
import { payloadCases } from './payloads.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MiB = 1024 * 1024;
const BOUNDED_HEAP = { NODE_OPTIONS: '--max-old-space-size=1024' };

/** A field of /proc/PID/status in bytes (VmRSS, VmHWM). */
function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  assert.ok(line !== undefined, `${field} in /proc/${pid}/status`);
  return Number(/(\d+)\s*kB/.exec(line)![1]) * 1024;
}

function rawGrpcClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
}

function unary(client: grpc.Client, request: Buffer): Promise<Buffer> {
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(UNARY_PATH, id, id, request, new grpc.Metadata(), { deadline: Date.now() + 120_000 }, (error, response) =>
      error ? reject(error) : resolve(response as Buffer),
    ),
  );
}

async function assertStillServing(sidecar: SidecarProcess): Promise<void> {
  assert.equal(sidecar.child.exitCode, null, `the process is alive (stderr: ${sidecar.stderr().slice(-500)})`);
  const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
  try {
    const ok = payloadCases().compressed[0];
    const [answer] = await client.extract([{ key: 'after', payload: ok.payload }]);
    assert.equal(answer?.ok, true);
  } finally {
    client.close();
  }
}

describe('requests that once took the process down', () => {
  it('two 66 MB requests of 33 million empty items: INVALID_ARGUMENT at once, memory bounded, the process lives', async () => {
    const sidecar = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--pool-size', '2'], BOUNDED_HEAP);
    const client = rawGrpcClient(sidecar.address);
    try {
      const pid = sidecar.child.pid!;
      const baseline = procStatus(pid, 'VmHWM');
      // 33,000,000 items, each an empty Item (tag 0x12, length 0): 66,000,000 bytes, under 64 MiB.
      const request = Buffer.alloc(66_000_000);
      for (let i = 0; i < request.length; i += 2) request[i] = 0x12;
      assert.ok(request.length < 64 * MiB);
      const failures = await Promise.all([grpcFailure(unary(client, request)), grpcFailure(unary(client, request))]);
      for (const error of failures) {
        assert.equal(error.code, grpc.status.INVALID_ARGUMENT, error.details);
        assert.match(error.details, /over the limit max-items-per-batch=10000 \(--max-items-per-batch\)/);
      }
      await assertStillServing(sidecar);
      const peak = procStatus(pid, 'VmHWM');
      // Two requests as grpc-js gathers them (pieces, then one buffer each): ~4 x 66 MB at most.
      assert.ok(peak - baseline < 400 * MiB, `peak RSS grew by ${Math.round((peak - baseline) / MiB)} MiB (from ${Math.round(baseline / MiB)} MiB)`);
      console.log(`# 2 x 33M items: VmHWM ${Math.round(baseline / MiB)} -> ${Math.round(peak / MiB)} MiB`);
    } finally {
      client.close();
      await sidecar.stop();
    }
  });

  it('a batch that needs more than a worker heap: RESOURCE_EXHAUSTED naming the flag, one worker replaced, the process lives', async () => {
    const sidecar = await startSidecarProcess(
      [
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--pool-size',
        '1',
        '--worker-max-heap-mb',
        '48',
        '--max-items-per-batch',
        '10000000',
        '--task-slice-bytes',
        '4294967296',
      ],
      BOUNDED_HEAP,
    );
    const client = rawGrpcClient(sidecar.address);
    try {
      const started = await metricValue(sidecar.metricsAddress!, 'mim_sender_jid_workers_started');
      // 3 million items in one task: far more objects than 48 MiB of heap holds.
      const request = Buffer.alloc(6_000_000);
      for (let i = 0; i < request.length; i += 2) request[i] = 0x12;
      const error = await grpcFailure(unary(client, request));
      assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED, error.details);
      assert.match(error.details, /worker heap limit of 48 MiB \(--worker-max-heap-mb\)/);
      await assertStillServing(sidecar);
      assert.equal(await metricValue(sidecar.metricsAddress!, 'mim_sender_jid_workers_started'), started + 1);
    } finally {
      client.close();
      await sidecar.stop();
    }
  });
});

/** A bare HTTP/2 request that announces `announced` bytes, sends `sent` of them and stalls. */
function stallingRequest(
  session: http2.ClientHttp2Session,
  path: string,
  announced: number,
  sent: number,
): { status: Promise<{ code: number; message: string }> } {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  const status = new Promise<{ code: number; message: string }>((resolve) => {
    let code = -1;
    let message = '';
    const take = (headers: http2.IncomingHttpHeaders): void => {
      if (headers['grpc-status'] !== undefined) {
        code = Number(headers['grpc-status']);
        message = decodeURIComponent(String(headers['grpc-message'] ?? ''));
      }
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('error', () => {});
    stream.on('close', () => resolve({ code, message }));
  });
  stream.resume();
  const header = Buffer.alloc(5);
  header.writeUInt32BE(announced, 1);
  stream.write(header);
  if (sent > 0) stream.write(Buffer.alloc(sent, 0x55));
  return { status };
}

describe('requests still arriving', () => {
  it('are bounded in total (at their announced size) and dropped when their bytes stop', async () => {
    const BUDGET = 64 * MiB;
    const ANNOUNCED = 30 * MiB;
    const SENT = 25 * MiB;
    const STREAMS = 16;
    const sidecar = await startSidecarProcess(
      [
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--pool-size',
        '1',
        '--max-request-bytes',
        String(32 * MiB),
        '--max-arriving-request-bytes',
        String(BUDGET),
        '--request-idle-timeout-ms',
        '3000',
      ],
      BOUNDED_HEAP,
    );
    const sessions = Array.from({ length: 4 }, () => http2.connect(`http://${sidecar.address}`, { maxSessionMemory: 4096 }));
    try {
      const pid = sidecar.child.pid!;
      const baseline = procStatus(pid, 'VmHWM');
      const requests = Array.from({ length: STREAMS }, (_, i) => stallingRequest(sessions[i % sessions.length]!, UNARY_PATH, ANNOUNCED, SENT));
      // The two that fit are counted while they stall...
      await waitFor(
        'two requests arriving',
        async () => (await metricValue(sidecar.metricsAddress!, 'mim_sender_jid_arriving_request_bytes')) === 2 * ANNOUNCED,
      );
      const statuses = await Promise.all(requests.map((r) => r.status));
      const refused = statuses.filter((s) => s.code === grpc.status.RESOURCE_EXHAUSTED);
      const timedOut = statuses.filter((s) => s.code === grpc.status.DEADLINE_EXCEEDED);
      assert.equal(refused.length, STREAMS - 2, JSON.stringify(statuses));
      for (const s of refused) assert.match(s.message, /--max-arriving-request-bytes/);
      // ...and dropped once their bytes stop coming.
      assert.equal(timedOut.length, 2, JSON.stringify(statuses));
      for (const s of timedOut) assert.match(s.message, /--request-idle-timeout-ms/);
      assert.equal(await metricValue(sidecar.metricsAddress!, 'mim_sender_jid_arriving_request_bytes'), 0);
      const peak = procStatus(pid, 'VmHWM');
      console.log(`# ${STREAMS} stalled streams x ${SENT / MiB} MiB: VmHWM ${Math.round(baseline / MiB)} -> ${Math.round(peak / MiB)} MiB`);
      // Without the bound the server held 16 x 25 MiB = 400 MiB of stalled bytes.
      assert.ok(peak - baseline < 160 * MiB, `peak RSS grew by ${Math.round((peak - baseline) / MiB)} MiB`);
      await assertStillServing(sidecar);
    } finally {
      for (const session of sessions) session.destroy();
      await sidecar.stop();
    }
  });

  it('at most --max-concurrent-streams calls per connection', async () => {
    const LIMIT = 6;
    const sidecar = await startSidecarProcess([
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--pool-size',
      '1',
      '--max-concurrent-streams',
      String(LIMIT),
      '--request-idle-timeout-ms',
      '2000',
    ]);
    const session = http2.connect(`http://${sidecar.address}`);
    try {
      // Once the client knows the server's limit it holds the extra streams back itself (before, the
      // server would refuse them with REFUSED_STREAM).
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      assert.equal(session.remoteSettings.maxConcurrentStreams, LIMIT);
      const calls = () => metricValue(sidecar.metricsAddress!, 'mim_sender_jid_calls_in_flight');
      // Each stream announces a message and sends none of it: it stays open until the idle timeout.
      const requests = Array.from({ length: LIMIT + 4 }, () => stallingRequest(session, STREAM_PATH, 100, 0));
      await waitFor(`${LIMIT} calls in flight`, async () => (await calls()) === LIMIT);
      let most = 0;
      for (let i = 0; i < 20; i++) most = Math.max(most, await calls());
      assert.equal(most, LIMIT, 'calls of one connection in flight at once');
      // The ones held back by the limit start when the first are dropped; all end with the timeout.
      const statuses = await Promise.all(requests.map((r) => r.status));
      assert.deepEqual(
        statuses.map((s) => s.code),
        statuses.map(() => grpc.status.DEADLINE_EXCEEDED),
      );
    } finally {
      session.destroy();
      await sidecar.stop();
    }
  });
});

describe('signals and warnings', () => {
  /** Starts serve, waits until it says it is starting, sends SIGTERM after delayMs (twice when `twice`), returns its exit and logs. */
  async function sigtermAfter(delayMs: number | 'serving', twice = false): Promise<{ exit: number | string; logs: string }> {
    const child = spawn(
      process.execPath,
      ['bin/mim-sender-jid.js', 'serve', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '2'],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const unregister = stopAtExit(() => child.kill('SIGKILL'));
    let logs = '';
    child.stderr.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const exit = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          logs += chunk.toString();
          if (logs.includes(delayMs === 'serving' ? '"sidecar serving"' : '"sidecar starting"')) resolve();
        });
        void exit.then(() => reject(new Error(`serve exited before starting: ${logs}`)));
      });
      if (typeof delayMs === 'number' && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill('SIGTERM');
      if (twice) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        child.kill('SIGTERM');
      }
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exit, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('no exit within 30 s'), 30_000)))]);
      clearTimeout(timer);
      return { exit: code, logs };
    } finally {
      child.kill('SIGKILL');
      unregister();
    }
  }

  it('SIGTERM at any moment of start-up (seeded moments), or twice, exits 0 after a clean stop', async () => {
    const rand = seededRandom(143);
    const moments: (number | 'serving')[] = [0, 1, ...Array.from({ length: 4 }, () => Math.floor(rand() * 1_200)), 'serving'];
    for (const moment of moments) {
      const { exit, logs } = await sigtermAfter(moment);
      assert.equal(exit, 0, `SIGTERM ${moment} ms after 'sidecar starting': ${logs.slice(-800)}`);
      assert.match(logs, /"sidecar stopped"/, `SIGTERM at ${moment}: a clean stop`);
    }
    const { exit, logs } = await sigtermAfter(300, true);
    assert.equal(exit, 0, `two SIGTERMs: ${logs.slice(-800)}`);
  });

  it('warns at start when gRPC is served without TLS, or metrics are served, on a non-loopback address', async () => {
    const open = await startSidecarProcess(['--listen', '0.0.0.0:0', '--metrics-listen', '0.0.0.0:0', '--pool-size', '1']);
    try {
      const warnings = open.logs.filter((entry) => entry.level === 40).map((entry) => String(entry.msg));
      assert.ok(
        warnings.some((w) => /WITHOUT TLS/.test(w) && /not a loopback address/.test(w) && /--tls-cert/.test(w)),
        warnings.join(' | '),
      );
      assert.ok(
        warnings.some((w) => /metrics/.test(w) && /not a loopback address/.test(w)),
        warnings.join(' | '),
      );
    } finally {
      await open.stop();
    }
    const closed = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '1']);
    try {
      assert.deepEqual(
        closed.logs.filter((entry) => entry.level === 40),
        [],
        'no warning on loopback',
      );
    } finally {
      await closed.stop();
    }
  });
});
