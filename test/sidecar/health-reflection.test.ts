/**
 * grpc.health.v1.Health and server reflection, called as grpcurl and ghz call them: with no
 * proto file of ours at hand (the reflection client below knows only reflection.proto).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { SERVICE_NAME, type RunningSidecar } from '../../services/sidecar/server.js';
import { startTestSidecar } from '../support/test-sidecar.js';

const require = createRequire(import.meta.url);
const REFLECTION_PROTO = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function clientOf(protoFile: string, servicePath: string[], address: string): AnyClient {
  const definition = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true, longs: String, enums: String, defaults: true }));
  let node: unknown = definition;
  for (const part of servicePath) node = (node as Record<string, unknown>)[part];
  const Client = node as grpc.ServiceClientConstructor;
  return new Client(address, grpc.credentials.createInsecure()) as AnyClient;
}

export function healthCheck(client: AnyClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 10_000 }, (error: Error | null, response: { status: string }) =>
      error ? reject(error) : resolve(response.status),
    );
  });
}

describe('health and reflection', () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startTestSidecar();
  });
  after(async () => {
    await sidecar?.shutdown(1_000);
  });

  it('health: SERVING for the server and for SenderJidService; NOT_FOUND for others', async () => {
    const health = clientOf(healthProtoPath, ['grpc', 'health', 'v1', 'Health'], sidecar.address);
    try {
      assert.equal(await healthCheck(health, ''), 'SERVING');
      assert.equal(await healthCheck(health, SERVICE_NAME), 'SERVING');
      await assert.rejects(healthCheck(health, 'no.such.Service'), (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('reflection: lists the services and gives the descriptor of SenderJidService', async () => {
    const reflection = clientOf(REFLECTION_PROTO, ['grpc', 'reflection', 'v1', 'ServerReflection'], sidecar.address);
    try {
      const call = (reflection.ServerReflectionInfo as () => grpc.ClientDuplexStream<unknown, Record<string, unknown>>)();
      const answers: Record<string, unknown>[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on('data', (answer: Record<string, unknown>) => answers.push(answer));
        call.on('end', resolve);
        call.on('error', reject);
      });
      call.write({ list_services: '' });
      call.write({ file_containing_symbol: SERVICE_NAME });
      call.write({ file_containing_symbol: 'grpc.health.v1.Health' });
      call.end();
      await done;
      assert.equal(answers.length, 3);
      const listed = (answers[0].list_services_response as { service: { name: string }[] }).service.map((s) => s.name);
      assert.ok(listed.includes(SERVICE_NAME), `listed: ${listed.join(', ')}`);
      assert.ok(listed.includes('grpc.health.v1.Health'), `listed: ${listed.join(', ')}`);
      const files = (answers[1].file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
      assert.ok(files.length >= 1);
      // The descriptor is real: wrap the FileDescriptorProtos in a FileDescriptorSet (field 1,
      // length-delimited) and load it: the service and its two methods are there.
      const set = Buffer.concat(files.flatMap((file) => [Buffer.from([0x0a]), varint(file.length), file]));
      const definition = protoLoader.loadFileDescriptorSetFromBuffer(set);
      const service = definition[SERVICE_NAME] as Record<string, { requestStream: boolean; responseStream: boolean }>;
      assert.ok(service !== undefined, `descriptor defines ${SERVICE_NAME}`);
      assert.deepEqual(Object.keys(service).sort(), ['ExtractMessageFields', 'ExtractSenderJid', 'ExtractSenderJidStream']);
      assert.equal(service.ExtractSenderJidStream.requestStream, true);
      assert.equal(service.ExtractSenderJidStream.responseStream, true);
      assert.ok(definition['mongooseim.mam.v1.ErrorCode'] !== undefined);
      // Health is described too, with the map entry named as protoc names it (Go clients such as
      // grpcurl refuse a descriptor whose implicit map entry is named otherwise).
      const healthFiles = (answers[2].file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
      const healthFile = healthFiles.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes)).find((f) => f.package === 'grpc.health.v1');
      assert.ok(healthFile !== undefined, 'a descriptor of grpc.health.v1');
      assert.deepEqual(
        healthFile.service.map((svc) => svc.name),
        ['Health'],
      );
      const list = healthFile.messageType.find((m) => m.name === 'HealthListResponse');
      assert.deepEqual(
        list?.nestedType.map((n) => [n.name, n.options?.mapEntry]),
        [['StatusesEntry', true]],
      );
    } finally {
      reflection.close();
    }
  });
});

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}
