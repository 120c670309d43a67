/**
 * The in-process path decodes without a socket: while a decoder is opened, used and closed, no
 * TCP server listens and no connection is made (every net listen and connect of this thread is
 * counted). The same count sees the remote path connect, so the check can fail.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { openDecoder } from '../../clients/decoder-client/index.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { erlangRandomMessages } from '../support/erlang-payloads.js';
import { assertMatchesErlang, itemsOf } from './decode-paths.js';

/** Counts listen() and connect() calls of node:net (grpc-js and http2 go through them) until restored. */
function countSockets(): { listens: number; connects: number; restore(): void } {
  const counts = { listens: 0, connects: 0, restore() {} };
  const listen = net.Server.prototype.listen;
  const connect = net.Socket.prototype.connect;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    counts.listens++;
    return (listen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof listen;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    counts.connects++;
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof connect;
  counts.restore = () => {
    net.Server.prototype.listen = listen;
    net.Socket.prototype.connect = connect;
  };
  return counts;
}

const tcpHandles = (): string[] => process.getActiveResourcesInfo().filter((kind) => kind.startsWith('TCP'));

describe('in-process decoding opens no socket', () => {
  const records = erlangRandomMessages(50, 3);
  let restore = (): void => {};
  after(() => restore());

  it('decodes batches with no listen, no connect, no TCP handle', async () => {
    assert.deepEqual(tcpHandles(), [], 'no TCP handle before');
    const counts = countSockets();
    restore = counts.restore;
    try {
      const decoder = await openDecoder({ maxInFlightBatches: 2, workers: 1 });
      const stream = decoder.openStream('auto');
      const items = itemsOf(records, 'local');
      assertMatchesErlang(await stream.extract(items), items, records);
      assert.deepEqual(tcpHandles(), [], 'no TCP handle while decoding');
      await stream.end();
      await decoder.close();
    } finally {
      counts.restore();
    }
    assert.deepEqual({ listens: counts.listens, connects: counts.connects }, { listens: 0, connects: 0 });
  });

  it('(the same count sees the remote path listen and connect)', async () => {
    const counts = countSockets();
    restore = counts.restore;
    const sidecar = await startTestSidecar();
    try {
      const decoder = await openDecoder({ sidecar: sidecar.address, maxInFlightBatches: 2 });
      const stream = decoder.openStream('auto');
      const items = itemsOf(records, 'remote');
      assertMatchesErlang(await stream.extract(items), items, records);
      await stream.end();
      await decoder.close();
    } finally {
      counts.restore();
      await sidecar.shutdown(1_000);
    }
    assert.ok(counts.listens >= 1 && counts.connects >= 1, JSON.stringify(counts));
  });
});
