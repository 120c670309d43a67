/**
 * The Java example (clients/java: grpc-java, stubs generated at build time by the
 * protobuf-maven-plugin with pinned protoc and protoc-gen-grpc-java from Maven Central) built by
 * clients/java/setup.sh, as the README says, and run against a real `mim-sender-jid serve`
 * process, plain and with mutual TLS. Its printed answers must be Erlang's for payloads Erlang
 * made. The setup's first run downloads from Maven Central; needs `mvn` and Java 17 on PATH.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { erlangFieldCases } from '../support/erlang-fields.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certificates.js';
import { REPO_ROOT, SETUP_TIMEOUT_MS, assertAnswersMatchErlang, run, writePolyglotPayloads, type PolyglotPayloads } from './polyglot-cases.js';

const JAR = join(REPO_ROOT, 'clients/java/target/extract-sender-jid.jar');
const RUN_TIMEOUT_MS = 60_000;
/** A C locale: the example must print Unicode JIDs as UTF-8 all the same. */
const JAVA_ENV = { ...process.env, LC_ALL: 'C', LANG: 'C' };

function java(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('java', ['-jar', JAR, ...args], { timeout: RUN_TIMEOUT_MS, maxBuffer: 16 << 20, env: JAVA_ENV });
}

describe('Java client (grpc-java, clients/java)', () => {
  let plain: SidecarProcess | undefined;
  let secure: SidecarProcess | undefined;
  let certs: TestCertificates | undefined;
  let dir = '';
  let payloads: PolyglotPayloads;

  before(async () => {
    await run('bash', [join(REPO_ROOT, 'clients/java/setup.sh')], { cwd: REPO_ROOT, timeout: SETUP_TIMEOUT_MS, maxBuffer: 16 << 20 });
    assert.ok(existsSync(JAR), 'setup.sh built no jar');
    assert.ok(
      existsSync(join(REPO_ROOT, 'clients/java/target/generated-sources/protobuf/java/com/mongooseim/mam/v1/SenderJidProto.java')),
      'the outer class is not SenderJidProto in com.mongooseim.mam.v1 (java_package, java_outer_classname)',
    );
    dir = mkdtempSync(join(tmpdir(), 'mim-java-'));
    payloads = writePolyglotPayloads(dir);
    certs = makeTestCertificates();
    plain = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off']);
    secure = await startSidecarProcess([
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      'off',
      '--tls-cert',
      certs.serverCert.path,
      '--tls-key',
      certs.serverKey.path,
      '--tls-client-ca',
      certs.ca.path,
    ]);
  });
  after(async () => {
    await plain?.stop();
    await secure?.stop();
    certs?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a second setup run says one line', async () => {
    const { stdout, stderr } = await run('bash', [join(REPO_ROOT, 'clients/java/setup.sh')], { cwd: REPO_ROOT, timeout: SETUP_TIMEOUT_MS });
    assert.equal(stderr, '');
    assert.equal(stdout.trimEnd().split('\n').length, 1, stdout);
  });

  it('answers every named Erlang case (--format eterm) as Erlang does, in UTF-8 under a C locale', async () => {
    const { stdout } = await java(['--address', plain!.address, '--format', 'eterm', ...payloads.eterm.files]);
    assertAnswersMatchErlang(stdout, payloads.eterm);
  });

  it('answers XML payloads (--format xml) as Erlang does', async () => {
    const { stdout } = await java(['--address', plain!.address, '--format', 'xml', ...payloads.xml.files]);
    assertAnswersMatchErlang(stdout, payloads.xml);
  });

  it('answers mixed eterm, compressed eterm and XML with the default format (auto), over mutual TLS', async () => {
    const { stdout } = await java([
      '--address',
      secure!.address,
      '--ca',
      certs!.ca.path,
      '--cert',
      certs!.clientCert.path,
      '--key',
      certs!.clientKey.path,
      '--timeout',
      '30',
      ...payloads.mixed.files,
    ]);
    assertAnswersMatchErlang(stdout, payloads.mixed);
  });

  it('--fields: origin_id and is_groupchat of every Erlang field case (eterm and xml, format auto) as Erlang answers them, in UTF-8', async () => {
    const cases = erlangFieldCases();
    const files = cases.map((c, i) => {
      const file = join(dir, `fields-${i}.${c.format === 'xml' ? 'xml' : 'bin'}`);
      writeFileSync(file, c.payload);
      return file;
    });
    const expected = cases.map((c, i) => {
      const origin = c.originId === 'malformed' ? 'ERROR_CODE_MALFORMED' : c.originId.originId === null ? 'NULL' : c.originId.originId;
      const groupchat = c.isGroupchat === 'malformed' ? 'ERROR_CODE_MALFORMED' : String(c.isGroupchat);
      return `${files[i]}\torigin_id=${origin}\tis_groupchat=${groupchat}`;
    });
    const { stdout } = await java(['--address', plain!.address, '--fields', ...files]);
    // An id may hold a tab or a newline (XML keeps them), so lines are compared as one text.
    assert.equal(stdout, expected.join('\n') + '\n');
  });

  it('reports a failed call on stderr with exit 1 (a client certificate the server does not trust)', async () => {
    await assert.rejects(
      java([
        '--address',
        secure!.address,
        '--ca',
        certs!.ca.path,
        '--cert',
        certs!.strangerCert.path,
        '--key',
        certs!.strangerKey.path,
        '--timeout',
        '20',
        payloads.mixed.files[0],
      ]),
      (error: NodeJS.ErrnoException & { code?: unknown; stderr?: string; stdout?: string }) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr ?? '', /^sidecar call failed: UNAVAILABLE: /m);
        assert.equal(error.stdout, '');
        return true;
      },
    );
  });
});
