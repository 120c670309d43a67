/**
 * Sidecar faults that waiting does not cure end the run at once, with what to fix, instead of
 * being retried as load: a port held by something that accepts and stays silent, a TLS sidecar
 * reached in plaintext, a TLS sidecar whose certificate our CA does not sign, a plaintext
 * sidecar reached over TLS. And sidecars of one target with different --max-items-per-batch:
 * requests are cut to the smallest limits any of them announces, and a refusal for size names
 * the mismatch. Real sidecars (in this process and as processes), a real silent TCP server.
 * Outcomes only (error class and message, exit status); times bound the tests, never asserted.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { openDecoder, SidecarClient, SidecarFaultError } from '../../clients/decoder-client/index.js';
import { isTransientDecodeError } from '../../clients/pipeline/retry.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { startMigrateProcess } from '../support/migrate-process.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import { startRiakDouble, type RiakDouble } from '../support/riak-double.js';
import { assertMatchesErlang, itemsOf } from './decode-paths.js';

const GENEROUS_MS = 120_000;

async function silentServer(): Promise<{ address: string; sockets: net.Socket[]; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a failure');
}

describe('sidecar faults that are not load', () => {
  let certs: TestCertificates;
  let tlsSidecar: RunningSidecar;
  let mutualSidecar: RunningSidecar;
  let plainSidecar: RunningSidecar;
  let records: PayloadRecord[];

  before(async () => {
    certs = makeTestCertificates();
    records = erlangRandomMessages(40, 17);
    tlsSidecar = await startTestSidecar({ tlsCert: certs.serverCert.path, tlsKey: certs.serverKey.path });
    mutualSidecar = await startTestSidecar({ tlsCert: certs.serverCert.path, tlsKey: certs.serverKey.path, tlsClientCa: certs.ca.path });
    plainSidecar = await startTestSidecar();
  });
  after(async () => {
    await tlsSidecar?.shutdown(1_000);
    await mutualSidecar?.shutdown(1_000);
    await plainSidecar?.shutdown(1_000);
    certs?.remove();
  });

  it('a port that accepts and stays silent: a fault after a few short tries, not retried', { timeout: GENEROUS_MS }, async () => {
    const silent = await silentServer();
    try {
      const error = await refusal(openDecoder({ sidecar: silent.address, maxInFlightBatches: 2 }));
      assert.ok(error instanceof SidecarFaultError, String(error));
      assert.match(error.message, new RegExp(`the sidecar at ${silent.address} accepts connections but sends nothing`));
      assert.equal(isTransientDecodeError(error), false, 'the pipeline does not retry it');
      assert.ok(silent.sockets.length >= 2, 'it was tried more than once before being called silent');
    } finally {
      await silent.close();
    }
  });

  it("a sidecar gone silent after start: the stream's deadline turns into the fault, for one sidecar and for a list", { timeout: GENEROUS_MS }, async () => {
    const silent = await silentServer();
    const other = await silentServer();
    try {
      for (const address of [silent.address, `${silent.address},${other.address}`]) {
        // Straight to the client, as if the start-up look had passed: only the deadline is left.
        const client = new SidecarClient({ address, deadlineMs: 1_000, maxRetries: 0 });
        const stream = client.openStream('auto');
        try {
          const error = await refusal(stream.extract(itemsOf(records, 'late')));
          assert.ok(error instanceof SidecarFaultError, `${address}: ${String(error)}`);
          assert.match(error.message, /accepts connections but sends nothing/);
        } finally {
          await stream.end().catch(() => undefined);
          client.close();
        }
      }
    } finally {
      await silent.close();
      await other.close();
    }
  });

  it('migrate through a silent port exits 1 with the message', { timeout: GENEROUS_MS }, async () => {
    const silent = await silentServer();
    let double: RiakDouble | null = null;
    try {
      double = await startRiakDouble({ seed: 1 });
      const run = startMigrateProcess(['riak', '--url', double.url, '--sidecar', silent.address, '--report', '/dev/null']);
      const { status, stderr } = await run.done;
      assert.equal(status, 1, stderr);
      assert.match(stderr, /accepts connections but sends nothing/);
      assert.doesNotMatch(stderr, /retry \d/, 'not retried as load');
    } finally {
      await double?.stop();
      await silent.close();
    }
  });

  it('a TLS sidecar reached without --sidecar-ca: says it speaks TLS', { timeout: GENEROUS_MS }, async () => {
    const error = await refusal(openDecoder({ sidecar: tlsSidecar.address, maxInFlightBatches: 2 }));
    assert.ok(error instanceof SidecarFaultError, String(error));
    assert.match(error.message, new RegExp(`the sidecar at ${tlsSidecar.address} speaks TLS: pass --sidecar-ca`));
  });

  it('a TLS sidecar whose certificate our CA does not sign: says so', { timeout: GENEROUS_MS }, async () => {
    const error = await refusal(openDecoder({ sidecar: tlsSidecar.address, maxInFlightBatches: 2, tls: { ca: certs.strangerCert.pem } }));
    assert.ok(error instanceof SidecarFaultError, String(error));
    assert.match(error.message, /failed on its certificate .*pass the CA that signed it as --sidecar-ca/);
  });

  it('a plaintext sidecar reached over TLS: says it speaks plaintext', { timeout: GENEROUS_MS }, async () => {
    const error = await refusal(openDecoder({ sidecar: plainSidecar.address, maxInFlightBatches: 2, tls: { ca: certs.ca.pem } }));
    assert.ok(error instanceof SidecarFaultError, String(error));
    assert.match(error.message, /speaks plaintext, not TLS/);
  });

  it('a mutual-TLS sidecar reached without a client certificate: a TLS fault, not load', { timeout: GENEROUS_MS }, async () => {
    const error = await refusal(openDecoder({ sidecar: mutualSidecar.address, maxInFlightBatches: 2, tls: { ca: certs.ca.pem } }));
    assert.ok(error instanceof SidecarFaultError, String(error));
    assert.match(error.message, /refused our TLS handshake .*pass --sidecar-cert and --sidecar-key/);
  });

  it('right TLS, mutual TLS and plaintext still decode (no false alarm)', { timeout: GENEROUS_MS }, async () => {
    const cases: [string, { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined][] = [
      [tlsSidecar.address, { ca: certs.ca.pem }],
      [mutualSidecar.address, { ca: certs.ca.pem, cert: certs.clientCert.pem, key: certs.clientKey.pem }],
      [plainSidecar.address, undefined],
      [`${plainSidecar.address},${plainSidecar.address.replace(/:\d+$/, ':1')}`, undefined], // one of them down: left to the retries
    ];
    for (const [sidecar, tls] of cases) {
      const decoder = await openDecoder({ sidecar, maxInFlightBatches: 2, tls });
      try {
        if (sidecar.includes(',')) continue;
        const stream = decoder.openStream('auto');
        const answers = await stream.extract(itemsOf(records, 'ok'));
        await stream.end();
        assertMatchesErlang(answers, itemsOf(records, 'ok'), records);
      } finally {
        await decoder.close();
      }
    }
  });
});

describe('sidecars of one target with different --max-items-per-batch', () => {
  let small: RunningSidecar;
  let large: RunningSidecar;
  let records: PayloadRecord[];
  const target = (): string => `${small.address},${large.address}`;

  before(async () => {
    records = erlangRandomMessages(90, 23);
    small = await startTestSidecar({ maxItemsPerBatch: 10 });
    large = await startTestSidecar({ maxItemsPerBatch: 100 });
  });
  after(async () => {
    await small?.shutdown(1_000);
    await large?.shutdown(1_000);
  });

  it('openDecoder cuts requests to the smallest limits any of them announces', { timeout: GENEROUS_MS }, async () => {
    const decoder = await openDecoder({ sidecar: target(), maxInFlightBatches: 4 });
    try {
      // Several streams: each would have probed a sidecar of its own, round_robin taking turns.
      for (let s = 0; s < 4; s++) {
        const stream = decoder.openStream('auto');
        const answers = await stream.extract(itemsOf(records, `s${s}`));
        await stream.end();
        assertMatchesErlang(answers, itemsOf(records, `s${s}`), records);
      }
    } finally {
      await decoder.close();
    }
  });

  it('without the ceiling, a refusal for size names the mismatch', { timeout: GENEROUS_MS }, async () => {
    const client = new SidecarClient({ address: target(), maxInFlightBatches: 4, maxRetries: 0 });
    let refused: Error | null = null;
    try {
      for (let s = 0; s < 6 && refused === null; s++) {
        const stream = client.openStream('auto');
        try {
          await stream.extract(itemsOf(records, `s${s}`));
          await stream.end();
        } catch (error) {
          refused = error as Error;
          await stream.end().catch(() => undefined);
        }
      }
    } finally {
      client.close();
    }
    assert.ok(refused !== null, 'one of the streams probed the large sidecar and sent it too much for the small one');
    assert.match(refused.message, /announces max-items-per-batch=10 .*run with different --max-items-per-batch or --max-request-bytes; give them all the same/);
  });
});
