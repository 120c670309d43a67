/**
 * Flags and environment variables -> the sidecar's config: precedence, defaults, and refusals
 * that name the flag and the variable.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { ConfigError, SETTINGS, envVarOf, loadConfig, parseHostPort } from '../../services/sidecar/config.js';

describe('sidecar config', () => {
  it('has the documented defaults', () => {
    const config = loadConfig([], {});
    assert.equal(config.listen, '127.0.0.1:50051');
    assert.equal(config.metricsListen, '127.0.0.1:9464');
    assert.equal(config.maxItemsPerBatch, 10_000);
    assert.equal(config.maxPayloadBytes, 1024 * 1024);
    assert.equal(config.maxRequestBytes, 64 * 1024 * 1024);
    assert.equal(config.maxDecompressedBytes, 16 * 1024 * 1024);
    assert.equal(config.poolSize, availableParallelism());
    assert.equal(config.tlsCert, null);
  });

  it('takes every setting from a flag or its environment variable; the flag wins', () => {
    const env = { MIM_SENDER_JID_LISTEN: '0.0.0.0:6000', MIM_SENDER_JID_POOL_SIZE: '3', MIM_SENDER_JID_METRICS_LISTEN: 'off' };
    const fromEnv = loadConfig([], env);
    assert.equal(fromEnv.listen, '0.0.0.0:6000');
    assert.equal(fromEnv.poolSize, 3);
    assert.equal(fromEnv.metricsListen, null);
    const fromFlag = loadConfig(['--listen', '[::1]:7000', '--pool-size=5'], env);
    assert.equal(fromFlag.listen, '[::1]:7000');
    assert.equal(fromFlag.poolSize, 5);
    for (const setting of SETTINGS) assert.match(envVarOf(setting.flag), /^MIM_SENDER_JID_[A-Z_]+$/);
  });

  it('refuses bad values, naming the flag and the variable', () => {
    const refuses = (argv: string[], env: Record<string, string>, pattern: RegExp) =>
      assert.throws(
        () => loadConfig(argv, env),
        (error: unknown) => error instanceof ConfigError && pattern.test(error.message),
      );
    refuses(['--max-items-per-batch', '0'], {}, /--max-items-per-batch \(MIM_SENDER_JID_MAX_ITEMS_PER_BATCH\): 0 is out of range/);
    refuses([], { MIM_SENDER_JID_MAX_PAYLOAD_BYTES: '1MB' }, /--max-payload-bytes.*'1MB' is not a whole number of bytes/);
    refuses(['--listen', 'localhost'], {}, /--listen.*not HOST:PORT/);
    refuses(['--listen', '127.0.0.1:70000'], {}, /port 70000 is over 65535/);
    refuses(['--tls-cert', 'a.pem'], {}, /go together/);
    refuses(['--tls-client-ca', 'ca.pem'], {}, /go together|needs TLS/);
    refuses(['--log-level', 'loud'], {}, /is not one of/);
    refuses(['--no-such-flag', '1'], {}, /Unknown option/);
  });

  it('parses host:port, IPv6 in brackets', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseHostPort('[::1]:50051'), { host: '::1', port: 50051 });
    assert.deepEqual(parseHostPort('localhost:80'), { host: 'localhost', port: 80 });
  });
});
