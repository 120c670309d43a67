/**
 * The floor of the ghz load test: a bare grpc-js server of SenderJidService's contract (same
 * method paths, reflection and health, so ghz drives it exactly as it drives the sidecar) that
 * answers each item without decoding. Each item's Result (key echoed, jid or error) is worked out
 * once at start-up from the bench's own request data; a call then only walks the request's
 * protobuf for the item keys and concatenates their precomputed Results, on the main thread. The
 * response has the sidecar's shape and bytes (`check` proves it), so sidecar items/s divided by
 * floor items/s is what decoding costs the serving over grpc-js's own per-call and per-byte work.
 *
 *   node dist/bench/ghz/floor-server.js serve PORT DATA_DIR        prints "floor: listening on ..." when ready
 *   node dist/bench/ghz/floor-server.js check SIDECAR FLOOR REQUEST.json
 *        sends one request (ghz's JSON form) to both and exits 1 unless the responses are byte-identical
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { extractSenderJid, splitBareJid } from '../../services/decode/index.js';
import { FILE_DESCRIPTOR_SET_BASE64 } from '../../services/sidecar/gen/descriptor-set.js';
import {
  ErrorCode,
  ExtractSenderJidRequest,
  PayloadFormat,
  Result,
  SenderJidServiceDefinition,
} from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';

interface GhzRequest {
  readonly format: string;
  readonly items: readonly { readonly key: string; readonly payload: string }[];
}

const identity = (bytes: Buffer): Buffer => bytes;
const UNARY_PATH = `/${SenderJidServiceDefinition.fullName}/${SenderJidServiceDefinition.methods.extractSenderJid.name}`;

function unaryMethod(): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: UNARY_PATH,
    originalName: 'extractSenderJid',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The Result the sidecar's worker writes for this payload (services/sidecar/worker.ts), encoded. */
function resultFor(key: string, payload: Uint8Array): Uint8Array {
  const answer = extractSenderJid(payload, 'eterm');
  let result: Result;
  if ('jid' in answer) {
    const split = splitBareJid(answer.jid);
    result =
      'reason' in split
        ? {
            key,
            jid: undefined,
            error: {
              code: split.reason === 'jid_without_domain' ? ErrorCode.ERROR_CODE_JID_WITHOUT_DOMAIN : ErrorCode.ERROR_CODE_JID_WITHOUT_LOCAL_PART,
              detail: split.detail,
            },
          }
        : { key, jid: { bareJid: answer.jid, user: split.user, server: split.server }, error: undefined };
  } else {
    const code =
      answer.reason === 'not_groupchat'
        ? ErrorCode.ERROR_CODE_NOT_GROUPCHAT
        : answer.reason === 'payload_too_large'
          ? ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE
          : ErrorCode.ERROR_CODE_MALFORMED;
    result = { key, jid: undefined, error: { code, detail: answer.detail } };
  }
  return Result.encode(result).finish();
}

function varint(n: number): number[] {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return bytes;
}

/** Reads a varint at pos; returns [value, next position]. Lengths here fit in 32 bits. */
function readVarint(b: Buffer, pos: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const c = b[pos++];
    value += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return [value, pos];
    shift += 7;
  }
}

function skipField(b: Buffer, wireType: number, pos: number): number {
  if (wireType === 0) return readVarint(b, pos)[1];
  if (wireType === 2) {
    const [length, at] = readVarint(b, pos);
    return at + length;
  }
  if (wireType === 1) return pos + 8;
  if (wireType === 5) return pos + 4;
  throw new Error(`wire type ${wireType} not expected in ExtractSenderJidRequest`);
}

/**
 * Per key, the response's `results` entry (tag 1, length, Result bytes), from every request file
 * of the bench data (batch-1000.json holds every distinct message).
 */
function precomputedEntries(dataDir: string): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const request = JSON.parse(readFileSync(join(dataDir, 'batch-1000.json'), 'utf8')) as GhzRequest;
  for (const item of request.items) {
    if (entries.has(item.key)) continue;
    const result = resultFor(item.key, Buffer.from(item.payload, 'base64'));
    entries.set(item.key, Buffer.concat([Buffer.of(0x0a, ...varint(result.length)), result]));
  }
  return entries;
}

/** The floor's whole work per call: find each item's key, concatenate its entry. */
function answer(request: Buffer, entries: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let pos = 0;
  while (pos < request.length) {
    const [tag, at] = readVarint(request, pos);
    if (tag !== 0x12) {
      pos = skipField(request, tag & 7, at);
      continue;
    }
    const [itemLength, itemStart] = readVarint(request, at);
    const itemEnd = itemStart + itemLength;
    let key = '';
    for (let p = itemStart; p < itemEnd;) {
      const [itemTag, fieldAt] = readVarint(request, p);
      if (itemTag === 0x12) {
        const [keyLength, keyStart] = readVarint(request, fieldAt);
        key = request.toString('utf8', keyStart, keyStart + keyLength);
        p = keyStart + keyLength;
      } else {
        p = skipField(request, itemTag & 7, fieldAt);
      }
    }
    let entry = entries.get(key);
    if (entry === undefined) {
      const result = Result.encode({
        key,
        jid: undefined,
        error: { code: ErrorCode.ERROR_CODE_MALFORMED, detail: 'floor: not a key of the bench data' },
      }).finish();
      entry = Buffer.concat([Buffer.of(0x0a, ...varint(result.length)), result]);
    }
    parts.push(entry);
    total += entry.length;
    pos = itemEnd;
  }
  return Buffer.concat(parts, total);
}

async function serve(port: number, dataDir: string): Promise<void> {
  const entries = precomputedEntries(dataDir);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': -1 });
  server.addService(
    { extractSenderJid: unaryMethod() },
    {
      extractSenderJid(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
        callback(null, answer(call.request, entries));
      },
    },
  );
  new HealthImplementation({ '': 'SERVING', [SenderJidServiceDefinition.fullName]: 'SERVING' }).addToServer(server);
  new ReflectionService(protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64'))).addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  process.stdout.write(`floor: listening on 127.0.0.1:${bound}, ${entries.size} precomputed results\n`);
  const stop = (): void => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function call(address: string, request: Buffer): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(UNARY_PATH, identity, identity, request, { deadline: Date.now() + 30_000 }, (error, response) => {
      client.close();
      if (error || response === undefined) reject(error ?? new Error('no response'));
      else resolve(response);
    });
  });
}

async function check(sidecar: string, floor: string, requestFile: string): Promise<number> {
  const json = JSON.parse(readFileSync(requestFile, 'utf8')) as GhzRequest;
  const request = Buffer.from(
    ExtractSenderJidRequest.encode({
      format: PayloadFormat.PAYLOAD_FORMAT_ETERM,
      items: json.items.map((item) => ({ key: item.key, payload: Buffer.from(item.payload, 'base64'), format: PayloadFormat.PAYLOAD_FORMAT_UNSPECIFIED })),
    }).finish(),
  );
  const [fromSidecar, fromFloor] = await Promise.all([call(sidecar, request), call(floor, request)]);
  if (fromSidecar.equals(fromFloor)) {
    process.stdout.write(`floor: its response to ${requestFile.split('/').pop()} is byte-identical to the sidecar's (${fromFloor.length} bytes)\n`);
    return 0;
  }
  process.stderr.write(`floor: responses differ: sidecar ${fromSidecar.length} bytes, floor ${fromFloor.length} bytes\n`);
  return 1;
}

const [command, ...args] = process.argv.slice(2);
if (command === 'serve' && args.length === 2) {
  await serve(Number(args[0]), args[1]);
} else if (command === 'check' && args.length === 3) {
  process.exitCode = await check(args[0], args[1], args[2]);
} else {
  process.stderr.write('usage: floor-server.js serve PORT DATA_DIR | check SIDECAR FLOOR REQUEST.json\n');
  process.exitCode = 2;
}
