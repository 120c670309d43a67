/**
 * `mim-sender-jid serve` as a process: configuration from environment variables, metrics,
 * JSON logs, and SIGTERM with a call in flight (health NOT_SERVING, the call finishes, exit 0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { SidecarClient, type ExtractResult } from '../../clients/decoder-client/index.js';
import { startSidecarProcess } from '../support/sidecar-process.js';
import { assertAnswers, grpcFailure, itemsCounted, metricValue } from './grpc-test-kit.js';
import { asItems, payloadCases } from './payloads.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function healthClient(address: string): grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientReadableStream<{ status: string }>> {
  const definition = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String, defaults: true }));
  const Health = ((definition.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const Client = Health.Health as grpc.ServiceClientConstructor;
  return new Client(address, grpc.credentials.createInsecure()) as never;
}

describe('mim-sender-jid serve', () => {
  it('reads flags and environment variables; refuses a bad value naming the flag', () => {
    const bad = spawnSync(process.execPath, ['bin/mim-sender-jid.js', 'serve', '--max-items-per-batch', 'many'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--max-items-per-batch \(MIM_SENDER_JID_MAX_ITEMS_PER_BATCH\): 'many' is not a whole number/);
    const badEnv = spawnSync(process.execPath, ['bin/mim-sender-jid.js', 'serve'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, MIM_SENDER_JID_TLS_KEY: '/nonexistent.key' },
    });
    assert.equal(badEnv.status, 2);
    assert.match(badEnv.stderr, /MIM_SENDER_JID_TLS_CERT.*go together/);
    const help = spawnSync(process.execPath, ['bin/mim-sender-jid.js', 'serve', '--help'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.equal(help.status, 0);
    for (const flag of [
      '--listen',
      '--metrics-listen',
      '--tls-cert',
      '--tls-key',
      '--tls-client-ca',
      '--max-items-per-batch',
      '--max-payload-bytes',
      '--max-request-bytes',
      '--max-decompressed-bytes',
      '--pool-size',
      '--max-queued-batches',
      '--shutdown-grace-ms',
    ]) {
      assert.ok(help.stdout.includes(flag), `--help lists ${flag}`);
    }
  });

  it('serves with settings from the environment, logs JSON, counts items in metrics', async () => {
    const sidecar = await startSidecarProcess([], {
      MIM_SENDER_JID_LISTEN: '127.0.0.1:0',
      MIM_SENDER_JID_METRICS_LISTEN: '127.0.0.1:0',
      MIM_SENDER_JID_POOL_SIZE: '1',
      MIM_SENDER_JID_MAX_ITEMS_PER_BATCH: '3',
    });
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    try {
      const serving = sidecar.logs.find((entry) => entry.msg === 'sidecar serving')!;
      assert.equal((serving.limits as { maxItemsPerBatch: number }).maxItemsPerBatch, 3);
      assert.equal(serving.poolSize, 1);
      const cases = payloadCases().compressed.slice(0, 3);
      const items = asItems(cases);
      assertAnswers(
        await client.extract(items),
        cases,
        items.map((i) => i.key),
      );
      const error = await grpcFailure(client.extract(asItems(payloadCases().compressed.slice(0, 4))));
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.ok(sidecar.metricsAddress !== null);
      assert.equal(await itemsCounted(sidecar.metricsAddress!), 3);
      const text = await (await fetch(`http://${sidecar.metricsAddress}/metrics`)).text();
      for (const name of [
        'mim_sender_jid_items_total{outcome="jid"}',
        'mim_sender_jid_batch_duration_seconds_bucket',
        'mim_sender_jid_queue_depth',
        'mim_sender_jid_busy_workers',
        'mim_sender_jid_calls_in_flight',
      ]) {
        assert.ok(text.includes(name), `metrics include ${name}`);
      }
    } finally {
      client.close();
      await sidecar.stop();
    }
  });

  it('on SIGTERM: a unary call in flight is answered, then exit 0', async () => {
    const sidecar = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--pool-size', '1']);
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    try {
      const cases = payloadCases().compressed;
      const big = Array.from({ length: 10_000 }, (_, i) => cases[i % cases.length]);
      const items = big.map((c, i) => ({ key: String(i), payload: c.payload }));
      // SIGTERM once the server has the call (its request may still be arriving); a call that
      // finished before it was seen is simply made again (bounded).
      let answer: Promise<ExtractResult[]> | null = null;
      for (let attempt = 0; attempt < 5 && answer === null; attempt++) {
        const call = client.extract(items);
        call.catch(() => {});
        let settled = false;
        void call.finally(() => (settled = true));
        while (!settled) {
          if ((await metricValue(sidecar.metricsAddress!, 'mim_sender_jid_calls_in_flight')) >= 1) {
            answer = call;
            break;
          }
        }
        if (answer === null) await call;
      }
      assert.ok(answer !== null, 'a call was seen in flight');
      sidecar.child.kill('SIGTERM');
      assertAnswers(
        await answer,
        big,
        items.map((i) => i.key),
      );
      assert.equal(await sidecar.exited(15_000), 0);
    } finally {
      client.close();
      await sidecar.stop();
    }
  });

  it('on SIGTERM: health turns NOT_SERVING, the stream in flight is answered to its end, exit 0', async () => {
    const sidecar = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--pool-size', '1', '--shutdown-grace-ms', '20000']);
    const client = new SidecarClient({ address: sidecar.address, maxRetries: 0 });
    const health = healthClient(sidecar.address);
    try {
      const statuses: string[] = [];
      const watch = health.Watch({ service: 'mongooseim.mam.v1.SenderJidService' });
      watch.on('data', (answer: { status: string }) => statuses.push(answer.status));
      watch.on('error', () => {});
      const cases = payloadCases().compressed;
      const items = asItems(cases);
      const stream = client.openStream();
      assertAnswers(
        await stream.extract(items),
        cases,
        items.map((i) => i.key),
      );
      assert.deepEqual(statuses, ['SERVING']);

      sidecar.child.kill('SIGTERM');
      // The call in flight goes on: more batches on the same stream are still answered.
      for (let i = 0; i < 5; i++)
        assertAnswers(
          await stream.extract(items),
          cases,
          items.map((i) => i.key),
        );
      assert.ok(statuses.includes('NOT_SERVING'), `health went ${statuses.join(' -> ')}`);
      await stream.end();
      assert.equal(await sidecar.exited(15_000), 0);
      const messages = sidecar.logs.map((entry) => entry.msg);
      assert.ok(messages.includes('sidecar stopped'), `logs: ${messages.join(' | ')}`);
    } finally {
      health.close();
      client.close();
      await sidecar.stop();
    }
  });
});
