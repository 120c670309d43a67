/**
 * Tags of Erlang's external term format (erts/emulator/beam/external.h) that these payloads can hold.
 * Everything not listed here (pids, ports, references, funs, exports, FLOAT_EXT, atom cache
 * references, distribution headers) is rejected as malformed.
 */
export const VERSION_MAGIC = 131;
export const COMPRESSED = 80;
export const NEW_FLOAT_EXT = 70;
export const BIT_BINARY_EXT = 77;
export const SMALL_INTEGER_EXT = 97;
export const INTEGER_EXT = 98;
export const ATOM_EXT = 100;
export const SMALL_TUPLE_EXT = 104;
export const LARGE_TUPLE_EXT = 105;
export const NIL_EXT = 106;
export const STRING_EXT = 107;
export const LIST_EXT = 108;
export const BINARY_EXT = 109;
export const SMALL_BIG_EXT = 110;
export const LARGE_BIG_EXT = 111;
export const SMALL_ATOM_EXT = 115;
export const MAP_EXT = 116;
export const ATOM_UTF8_EXT = 118;
export const SMALL_ATOM_UTF8_EXT = 119;

/** Largest bignum binary_to_term accepts (OTP 25, found by bisection): 4,194,296 digit bytes. */
export const MAX_BIG_BYTES = 4_194_296;
/** An atom holds at most 255 characters. */
export const MAX_ATOM_CHARACTERS = 255;

export function readU32(b: Uint8Array, pos: number): number {
  return ((b[pos] << 24) >>> 0) + ((b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]);
}

export function readU16(b: Uint8Array, pos: number): number {
  return (b[pos] << 8) | b[pos + 1];
}
