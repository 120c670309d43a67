/**
 * grpcurl v1.9.3 (pinned, installed from the Go module proxy by test/support/install-grpcurl.sh)
 * against a real `mim-sender-jid serve` process, through server reflection only (no proto file):
 * the README's commands run as written, every Erlang case through grpcurl's JSON, and the
 * per-language options (go_package, java_*) as reflection serves them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { erlangFieldCases } from '../support/erlang-fields.js';
import { erlangCases, erlangRandomMessages, type PayloadRecord } from '../support/erlang-payloads.js';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.js';
import { REPO_ROOT, SETUP_TIMEOUT_MS, run } from './polyglot-cases.js';

const GRPCURL = join(REPO_ROOT, '.tmp/go-bin/grpcurl');
const RUN_TIMEOUT_MS = 60_000;
const SERVICE = 'mongooseim.mam.v1.SenderJidService';

/** The README's ExtractSenderJid command, word for word but for the address (ADDRESS). */
const README_COMMAND = `grpcurl -plaintext -d "{\\"format\\":\\"PAYLOAD_FORMAT_AUTO\\",\\"items\\":[
    {\\"key\\":\\"42\\",\\"payload\\":\\"$(base64 -w0 message-42.bin)\\"},
    {\\"key\\":\\"43\\",\\"payload\\":\\"$(printf '<message type="chat"/>' | base64 -w0)\\",\\"format\\":\\"PAYLOAD_FORMAT_XML\\"}]}" \\
  ADDRESS mongooseim.mam.v1.SenderJidService/ExtractSenderJid`;

/** The README's ExtractMessageFields command, word for word but for the address (ADDRESS). */
const README_FIELDS_COMMAND = `grpcurl -plaintext -d "{\\"format\\":\\"PAYLOAD_FORMAT_AUTO\\",\\"items\\":[
    {\\"key\\":\\"42\\",\\"payload\\":\\"$(base64 -w0 message-42.bin)\\"},
    {\\"key\\":\\"43\\",\\"payload\\":\\"$(printf '<message type="groupchat"/>' | base64 -w0)\\",\\"format\\":\\"PAYLOAD_FORMAT_XML\\"}]}" \\
  ADDRESS mongooseim.mam.v1.SenderJidService/ExtractMessageFields`;

interface JsonResult {
  key: string;
  jid?: { bare_jid: string; user: string; server: string };
  error?: { code: string; detail: string };
}

describe('grpcurl (reflection, no proto file)', () => {
  let sidecar: SidecarProcess | undefined;
  let dir = '';

  before(async () => {
    await run('bash', [join(REPO_ROOT, 'test/support/install-grpcurl.sh')], { cwd: REPO_ROOT, timeout: SETUP_TIMEOUT_MS, maxBuffer: 16 << 20 });
    dir = mkdtempSync(join(tmpdir(), 'mim-grpcurl-'));
    sidecar = await startSidecarProcess(['--listen', '127.0.0.1:0', '--metrics-listen', 'off']);
  });
  after(async () => {
    await sidecar?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function grpcurl(args: string[], input?: string): Promise<{ stdout: string }> {
    const child = run(GRPCURL, args, { timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20 });
    if (input !== undefined) child.child.stdin?.end(input);
    return child;
  }

  it('lists the service and health, and health says SERVING', async () => {
    const { stdout } = await grpcurl(['-plaintext', sidecar!.address, 'list']);
    const services = stdout.trim().split('\n');
    assert.ok(services.includes(SERVICE) && services.includes('grpc.health.v1.Health'), stdout);
    const health = await grpcurl(['-plaintext', '-d', JSON.stringify({ service: SERVICE }), sidecar!.address, 'grpc.health.v1.Health/Check']);
    assert.deepEqual(JSON.parse(health.stdout), { status: 'SERVING' });
  });

  it("runs the README's ExtractSenderJid command as written, on a message Erlang made", async () => {
    const message = erlangCases().find((c) => c.name === 'reference example (minor 1)');
    assert.ok(message && 'jid' in message.expected);
    writeFileSync(join(dir, 'message-42.bin'), message.payload);
    const { stdout } = await run('bash', ['-c', README_COMMAND.replace('ADDRESS', sidecar!.address)], {
      cwd: dir,
      env: { ...process.env, PATH: `${join(REPO_ROOT, '.tmp/go-bin')}:${process.env.PATH}` },
      timeout: RUN_TIMEOUT_MS,
    });
    const [user, server] = message.expected.jid.split('@');
    assert.deepEqual(JSON.parse(stdout), {
      results: [
        { key: '42', jid: { bare_jid: message.expected.jid, user, server } },
        { key: '43', error: { code: 'ERROR_CODE_NOT_GROUPCHAT', detail: 'xml: <message> type is "chat", not "groupchat"' } },
      ],
    });
    // grpcurl escapes < and > in JSON strings: the README shows it so.
    assert.match(stdout, /"detail": "xml: \\u003cmessage\\u003e type is \\"chat\\", not \\"groupchat\\""/);
  });

  it("runs the README's ExtractMessageFields command as written, on a message Erlang made", async () => {
    const message = erlangFieldCases().find((c) => c.name === 'chat with origin-id (compressed)');
    assert.ok(message && message.originId !== 'malformed' && message.originId.originId !== null);
    writeFileSync(join(dir, 'message-42.bin'), message.payload);
    const { stdout } = await run('bash', ['-c', README_FIELDS_COMMAND.replace('ADDRESS', sidecar!.address)], {
      cwd: dir,
      env: { ...process.env, PATH: `${join(REPO_ROOT, '.tmp/go-bin')}:${process.env.PATH}` },
      timeout: RUN_TIMEOUT_MS,
    });
    assert.deepEqual(JSON.parse(stdout), {
      results: [
        { key: '42', origin_id: { origin_id: message.originId.originId }, is_groupchat: { is_groupchat: false } },
        { key: '43', origin_id: { none: {} }, is_groupchat: { is_groupchat: true } },
      ],
    });
  });

  it('answers every Erlang case sent as grpcurl JSON (-d @, base64 payloads) as Erlang does', async () => {
    const records: PayloadRecord[] = [...erlangCases(), ...erlangRandomMessages(10, 4_243)];
    const request = {
      items: records.map((r, i) => ({
        key: String(i),
        payload: Buffer.from(r.payload).toString('base64'),
        format: r.format === 'xml' ? 'PAYLOAD_FORMAT_XML' : 'PAYLOAD_FORMAT_ETERM',
      })),
    };
    const { stdout } = await grpcurl(['-plaintext', '-d', '@', sidecar!.address, `${SERVICE}/ExtractSenderJid`], JSON.stringify(request));
    const results = (JSON.parse(stdout) as { results: JsonResult[] }).results;
    assert.equal(results.length, records.length);
    results.forEach((result, i) => {
      const expected = records[i].expected;
      const what = `${records[i].name}: ${JSON.stringify(result)}, Erlang ${JSON.stringify(expected)}`;
      assert.equal(result.key, String(i), what);
      if ('jid' in expected && /^[^@]+@.+$/su.test(expected.jid)) {
        const at = expected.jid.indexOf('@');
        assert.deepEqual(result.jid, { bare_jid: expected.jid, user: expected.jid.slice(0, at), server: expected.jid.slice(at + 1) }, what);
      } else if ('jid' in expected) {
        assert.ok(result.error?.code === 'ERROR_CODE_JID_WITHOUT_LOCAL_PART' || result.error?.code === 'ERROR_CODE_JID_WITHOUT_DOMAIN', what);
      } else if (expected.code === '-2') {
        assert.equal(result.error?.code, 'ERROR_CODE_NOT_GROUPCHAT', what);
      } else {
        assert.ok(result.error?.code === 'ERROR_CODE_MALFORMED' || result.error?.code === 'ERROR_CODE_PAYLOAD_TOO_LARGE', what);
      }
    });
  });

  it('reflection serves the contract with its per-language options', async () => {
    const protoset = join(dir, 'sender_jid.protoset');
    await grpcurl(['-plaintext', '-protoset-out', protoset, sidecar!.address, 'describe', SERVICE]);
    const set = fromBinary(FileDescriptorSetSchema, readFileSync(protoset));
    const file = set.file.find((f) => f.name === 'mongooseim/mam/v1/sender_jid.proto');
    assert.ok(file?.options, 'no sender_jid.proto, or no options, in what reflection serves');
    assert.equal(file.options.goPackage, 'mim-sender-jid/clients/go/gen/mongooseim/mam/v1;mamv1');
    assert.equal(file.options.javaPackage, 'com.mongooseim.mam.v1');
    assert.equal(file.options.javaMultipleFiles, true);
    assert.equal(file.options.javaOuterClassname, 'SenderJidProto');
    assert.equal(file.options.csharpNamespace, 'Mongooseim.Mam.V1');
  });
});
