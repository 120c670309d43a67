/**
 * SenderJidService as grpc-js serves it here: byte-for-byte (de)serializers, so that requests stay
 * raw bytes on the main thread and the workers do every bit of protobuf work.
 */
import type * as grpc from '@grpc/grpc-js';
import { SenderJidServiceDefinition, protobufPackage } from './gen/mongooseim/mam/v1/sender_jid.js';

export const SERVICE_NAME = `${protobufPackage}.SenderJidService`;

type RawMethod<RequestStream extends boolean, ResponseStream extends boolean> = grpc.MethodDefinition<Buffer, Buffer> & {
  requestStream: RequestStream;
  responseStream: ResponseStream;
};

const identity = (bytes: Buffer): Buffer => bytes;

/** The HTTP/2 path of a method of SenderJidService, e.g. `/mongooseim.mam.v1.SenderJidService/ExtractSenderJid`. */
export function methodPath(method: { readonly name: string }): string {
  return `/${SenderJidServiceDefinition.fullName}/${method.name}`;
}

/** A grpc-js method definition from the generated plain description, with byte-for-byte (de)serializers. */
function rawMethod<Req extends boolean, Res extends boolean>(
  key: string,
  method: { readonly name: string; readonly requestStream: Req; readonly responseStream: Res },
): RawMethod<Req, Res> {
  return {
    path: methodPath(method),
    originalName: key,
    requestStream: method.requestStream,
    responseStream: method.responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The service with byte-for-byte (de)serializers: workers do the protobuf work. */
export const RAW_SERVICE = {
  extractSenderJid: rawMethod('extractSenderJid', SenderJidServiceDefinition.methods.extractSenderJid),
  extractSenderJidStream: rawMethod('extractSenderJidStream', SenderJidServiceDefinition.methods.extractSenderJidStream),
  extractMessageFields: rawMethod('extractMessageFields', SenderJidServiceDefinition.methods.extractMessageFields),
};
