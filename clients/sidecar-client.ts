/**
 * Moved to clients/decoder-client/ (remote-stream.ts, types.ts, batch-codec.ts). This shim keeps
 * the importers not yet switched building; it goes once they import from the new room.
 */
export * from './decoder-client/remote-stream.js';
export type { ErrorCodeName, ExtractItem, ExtractResult, ExtractStream, PayloadFormat } from './decoder-client/types.js';
