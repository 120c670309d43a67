/**
 * TLS and mutual TLS, with certificates made by openssl for this test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SidecarClient } from '../../clients/decoder-client/index.js';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import { assertAnswers, grpcFailure } from './grpc-test-kit.js';
import { asItems, payloadCases } from './payloads.js';

describe('TLS', () => {
  let certs: TestCertificates;
  let tls: RunningSidecar;
  let mutual: RunningSidecar;

  before(async () => {
    certs = makeTestCertificates();
    tls = await startTestSidecar({ tlsCert: certs.serverCert.path, tlsKey: certs.serverKey.path });
    mutual = await startTestSidecar({ tlsCert: certs.serverCert.path, tlsKey: certs.serverKey.path, tlsClientCa: certs.ca.path });
  });
  after(async () => {
    await tls?.shutdown(1_000);
    await mutual?.shutdown(1_000);
    certs?.remove();
  });

  const cases = () => payloadCases().compressed.slice(0, 3);
  const answered = async (client: SidecarClient): Promise<void> => {
    try {
      const items = asItems(cases());
      assertAnswers(
        await client.extract(items),
        cases(),
        items.map((i) => i.key),
      );
    } finally {
      client.close();
    }
  };

  it('serves TLS to a client that trusts the CA', async () => {
    await answered(new SidecarClient({ address: tls.address, tls: { ca: certs.ca.pem } }));
  });

  it('is not reachable in plaintext, nor by a client that does not trust its certificate', async () => {
    const plain = new SidecarClient({ address: tls.address, maxRetries: 0, deadlineMs: 5_000 });
    const plainError = await grpcFailure(plain.extract(asItems(cases())));
    plain.close();
    assert.equal(plainError.code, grpc.status.UNAVAILABLE);
    const distrustful = new SidecarClient({ address: tls.address, maxRetries: 0, deadlineMs: 5_000, tls: { ca: certs.strangerCert.pem } });
    const distrustError = await grpcFailure(distrustful.extract(asItems(cases())));
    distrustful.close();
    assert.equal(distrustError.code, grpc.status.UNAVAILABLE);
  });

  it('mutual TLS: answers a client with a certificate from the client CA', async () => {
    await answered(new SidecarClient({ address: mutual.address, tls: { ca: certs.ca.pem, cert: certs.clientCert.pem, key: certs.clientKey.pem } }));
    // Streams too.
    const client = new SidecarClient({ address: mutual.address, tls: { ca: certs.ca.pem, cert: certs.clientCert.pem, key: certs.clientKey.pem } });
    try {
      const stream = client.openStream('eterm');
      const items = asItems(cases(), false);
      assertAnswers(
        await stream.extract(items),
        cases(),
        items.map((i) => i.key),
      );
      await stream.end();
    } finally {
      client.close();
    }
  });

  it('mutual TLS: refuses a client without a certificate, or with one from another CA', async () => {
    for (const tlsOptions of [{ ca: certs.ca.pem }, { ca: certs.ca.pem, cert: certs.strangerCert.pem, key: certs.strangerKey.pem }]) {
      const client = new SidecarClient({ address: mutual.address, maxRetries: 0, deadlineMs: 5_000, tls: tlsOptions });
      const error = await grpcFailure(client.extract(asItems(cases())));
      client.close();
      assert.equal(error.code, grpc.status.UNAVAILABLE, `refused: ${error.details}`);
    }
  });
});
