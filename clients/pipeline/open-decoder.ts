/**
 * Moved to clients/decoder-client/index.ts. This shim keeps the importers not yet switched
 * building; it goes once they import from the new room.
 */
export { openDecoder, type Decoder, type DecoderOptions } from '../decoder-client/index.js';
