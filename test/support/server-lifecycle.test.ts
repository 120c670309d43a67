/**
 * The lifecycle every test server shares (server-lifecycle.ts), on the smallest server there is: a
 * node child listening on a free loopback port. Started until it answers, stopped with its data
 * kept, started again, removed with its directory; a start that fails leaves no directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { childServer, freeLoopbackPorts, launchTestServer, type ChildServerOptions } from './server-lifecycle.js';

function answers(port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error) => resolve(error.message));
  });
}

function listener(dir: string, port: number, script = `require('net').createServer().listen(${port}, '127.0.0.1')`): ChildServerOptions {
  return {
    name: 'listener',
    spawn: () => spawn(process.execPath, ['-e', script], { cwd: dir, stdio: 'ignore' }),
    ready: () => answers(port),
    readyTimeoutMs: 30_000,
    pollMs: 50,
    stopTimeoutMs: 5_000,
    logTail: () => 'the listener has no log',
  };
}

test('started until it answers, stopped and started again on its data, removed with its directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mim-lifecycle-'));
  writeFileSync(join(dir, 'data'), 'kept');
  const [port] = await freeLoopbackPorts(1);
  const server = await launchTestServer(dir, childServer(listener(dir, port)));
  try {
    assert.equal(await answers(port), true);
    await server.stopServer();
    assert.notEqual(await answers(port), true, 'stopped');
    assert.ok(existsSync(join(dir, 'data')), 'its data stays');
    await server.restart();
    assert.equal(await answers(port), true, 'started again');
  } finally {
    await server.stop();
  }
  assert.notEqual(await answers(port), true, 'gone');
  assert.equal(existsSync(dir), false, 'its directory removed');
  await server.stop(); // idempotent
});

test('a server that exits before it is ready: the start throws with its name and log, and leaves no directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mim-lifecycle-'));
  const [port] = await freeLoopbackPorts(1);
  await assert.rejects(
    launchTestServer(dir, childServer(listener(dir, port, 'process.exit(3)'))),
    /^Error: listener exited with 3 before it was ready\nthe listener has no log$/,
  );
  assert.equal(existsSync(dir), false);
});

test('distinct free ports', async () => {
  const ports = await freeLoopbackPorts(5);
  assert.equal(new Set(ports).size, 5);
});
