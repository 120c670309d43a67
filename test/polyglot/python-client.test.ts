/**
 * The polyglot example, clients/python/extract_sender_jid.py (grpcio, stubs from grpcio-tools),
 * against a real sidecar. Needs `bash clients/python/setup.sh` (test/run.sh runs it); without
 * it the test fails, saying so.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import { erlangFieldCases } from '../support/erlang-fields.js';
import { payloadCases } from '../sidecar/payloads.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PYTHON = process.env.MIM_SENDER_JID_TEST_PYTHON ?? join(REPO_ROOT, '.tmp/venv/bin/python');
const SCRIPT = join(REPO_ROOT, 'clients/python/extract_sender_jid.py');
const run = promisify(execFile);

describe('Python client (grpcio)', () => {
  let sidecar: RunningSidecar;
  let secure: RunningSidecar;
  let certs: TestCertificates;
  let dir: string;

  before(async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run 'bash clients/python/setup.sh' (test/run.sh does)`);
    assert.ok(existsSync(join(REPO_ROOT, 'clients/python/gen/mongooseim/mam/v1/sender_jid_pb2_grpc.py')), 'stubs missing: run clients/python/setup.sh');
    dir = mkdtempSync(join(tmpdir(), 'mim-py-'));
    certs = makeTestCertificates();
    sidecar = await startTestSidecar();
    secure = await startTestSidecar({ tlsCert: certs.serverCert.path, tlsKey: certs.serverKey.path, tlsClientCa: certs.ca.path });
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
    await secure?.shutdown(1_000);
    certs?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function writeCases(): { files: string[]; expected: string[] } {
    const cases = payloadCases();
    const chosen = [cases.compressed[0], cases.plain[1], cases.xml[0], cases.compressed[2], cases.xml[2], cases.compressed[7]];
    const files = chosen.map((c, i) => {
      const file = join(dir, `payload-${i}.${c.format === 'xml' ? 'xml' : 'bin'}`);
      writeFileSync(file, c.payload);
      return file;
    });
    const expected = chosen.map((c, i) =>
      'code' in c.expected ? `${files[i]}\tERROR_CODE_${c.expected.code.toUpperCase()}\t` : `${files[i]}\t${c.expected.bareJid}`,
    );
    return { files, expected };
  }

  function assertLines(stdout: string, expected: string[]): void {
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, expected.length, stdout);
    lines.forEach((line, i) => {
      if (expected[i].endsWith('\t')) {
        assert.ok(line.startsWith(expected[i]) && line.length > expected[i].length, `line ${i}: ${line} (expected ${expected[i]}detail)`);
      } else {
        assert.equal(line, expected[i]);
      }
    });
  }

  it('sends payload files and prints one answer per file, in order', async () => {
    const { files, expected } = writeCases();
    const { stdout } = await run(PYTHON, [SCRIPT, '--address', sidecar.address, ...files], { timeout: 60_000 });
    assertLines(stdout, expected);
  });

  it('--fields asks ExtractMessageFields and prints origin_id and is_groupchat per file, as Erlang answers them', async () => {
    const names = [
      'chat with origin-id (compressed)',
      'groupchat without origin-id (xml)',
      'origin-id empty (minor 2)',
      'type attribute 3-tuple (minor 1)',
      'cdata origin-id before the element (xml)',
    ];
    const cases = erlangFieldCases();
    const chosen = names.map((name) => {
      const c = cases.find((x) => x.name === name);
      assert.ok(c, name);
      return c;
    });
    const files = chosen.map((c, i) => {
      const file = join(dir, `fields-${i}.${c.format === 'xml' ? 'xml' : 'bin'}`);
      writeFileSync(file, c.payload);
      return file;
    });
    const expected = chosen.map((c, i) => {
      const origin = c.originId === 'malformed' ? 'ERROR_CODE_MALFORMED' : c.originId.originId === null ? 'NULL' : c.originId.originId;
      const groupchat = c.isGroupchat === 'malformed' ? 'ERROR_CODE_MALFORMED' : String(c.isGroupchat);
      return `${files[i]}\torigin_id=${origin}\tis_groupchat=${groupchat}`;
    });
    const { stdout } = await run(PYTHON, [SCRIPT, '--address', sidecar.address, '--fields', ...files], { timeout: 60_000 });
    assert.deepEqual(stdout.trimEnd().split('\n'), expected);
  });

  it('speaks mutual TLS', async () => {
    const { files, expected } = writeCases();
    const { stdout } = await run(
      PYTHON,
      [SCRIPT, '--address', secure.address, '--ca', certs.ca.path, '--cert', certs.clientCert.path, '--key', certs.clientKey.path, ...files],
      { timeout: 60_000 },
    );
    assertLines(stdout, expected);
  });
});
