/**
 * binary_to_term refuses a map that holds the same key twice, where "the same" is Erlang's exact
 * equality of terms, not of bytes: `a` written as ATOM_EXT or SMALL_ATOM_UTF8_EXT, 1 as
 * SMALL_INTEGER_EXT or SMALL_BIG_EXT, "ab" as STRING_EXT or a LIST_EXT of integers, a binary as
 * BINARY_EXT or an 8-bit BIT_BINARY_EXT, 0.0 and -0.0 (OTP 25) are all one key each.
 * So each key is turned into a canonical string first. Maps are rare in these payloads (exml 4
 * attributes), so this is off the hot path. Runs only on terms validateTerm accepted.
 */
import * as T from './eterm-tags.js';
import { skipTerm } from './eterm-cursor.js';

const utf8 = new TextDecoder('utf-8');

/** @returns a message naming the first map with a repeated key, or undefined if there is none. */
export function findDuplicateMapKey(b: Uint8Array, mapPositions: readonly number[]): string | undefined {
  for (const mapPos of mapPositions) {
    const pairs = T.readU32(b, mapPos + 1);
    const seen = new Set<string>();
    let pos = mapPos + 5;
    for (let i = 0; i < pairs; i++) {
      const key = canonicalTerm(b, pos);
      if (seen.has(key)) return `map at byte ${mapPos} repeats a key`;
      seen.add(key);
      pos = skipTerm(b, skipTerm(b, pos));
    }
  }
  return undefined;
}

/** A string equal for two encodings exactly when Erlang's =:= holds between their terms. */
export function canonicalTerm(b: Uint8Array, pos: number): string {
  const tag = b[pos];
  switch (tag) {
    case T.SMALL_INTEGER_EXT:
      return `i${b[pos + 1]};`;
    case T.INTEGER_EXT:
      return `i${(b[pos + 1] << 24) | (b[pos + 2] << 16) | (b[pos + 3] << 8) | b[pos + 4]};`;
    case T.SMALL_BIG_EXT:
      return bigCanonical(b, pos + 3, b[pos + 1], b[pos + 2]);
    case T.LARGE_BIG_EXT:
      return bigCanonical(b, pos + 6, T.readU32(b, pos + 1), b[pos + 5]);
    case T.NEW_FLOAT_EXT: {
      const value = new DataView(b.buffer, b.byteOffset + pos + 1, 8).getFloat64(0);
      return `f${value === 0 ? 0 : value};`;
    }
    case T.ATOM_EXT:
      return atomCanonical(latin1(b, pos + 3, T.readU16(b, pos + 1)));
    case T.SMALL_ATOM_EXT:
      return atomCanonical(latin1(b, pos + 2, b[pos + 1]));
    case T.ATOM_UTF8_EXT:
      return atomCanonical(utf8.decode(b.subarray(pos + 3, pos + 3 + T.readU16(b, pos + 1))));
    case T.SMALL_ATOM_UTF8_EXT:
      return atomCanonical(utf8.decode(b.subarray(pos + 2, pos + 2 + b[pos + 1])));
    case T.BINARY_EXT: {
      const n = T.readU32(b, pos + 1);
      return `b${n}:${latin1(b, pos + 5, n)}`;
    }
    case T.BIT_BINARY_EXT: {
      const n = T.readU32(b, pos + 1);
      const bits = b[pos + 6 - 1];
      if (n === 0 || bits === 8) return `b${n}:${latin1(b, pos + 6, n)}`;
      // The unused low bits of the last byte are not part of the term.
      const last = b[pos + 6 + n - 1] & ((0xff << (8 - bits)) & 0xff);
      return `B${n}.${bits}:${latin1(b, pos + 6, n - 1)}${String.fromCharCode(last)}`;
    }
    case T.SMALL_TUPLE_EXT:
      return tupleCanonical(b, pos + 2, b[pos + 1]);
    case T.LARGE_TUPLE_EXT:
      return tupleCanonical(b, pos + 5, T.readU32(b, pos + 1));
    case T.MAP_EXT: {
      const pairs: string[] = [];
      let p = pos + 5;
      for (let i = T.readU32(b, pos + 1); i > 0; i--) {
        const key = canonicalTerm(b, p);
        p = skipTerm(b, p);
        pairs.push(`${key}=${canonicalTerm(b, p)}`);
        p = skipTerm(b, p);
      }
      return `#${pairs.length}:${pairs.sort().join(',')}}`;
    }
    case T.NIL_EXT:
    case T.STRING_EXT:
    case T.LIST_EXT:
      return listCanonical(b, pos);
    default:
      throw new Error(`canonicalTerm: tag ${tag} at byte ${pos} was not validated`);
  }
}

function listCanonical(b: Uint8Array, pos: number): string {
  const parts: string[] = [];
  let p = pos;
  for (;;) {
    const tag = b[p];
    if (tag === T.NIL_EXT) return `[${parts.join(',')}]`;
    if (tag === T.STRING_EXT) {
      const n = T.readU16(b, p + 1);
      for (let i = 0; i < n; i++) parts.push(`i${b[p + 3 + i]};`);
      return `[${parts.join(',')}]`;
    }
    if (tag !== T.LIST_EXT) return `[${parts.join(',')}|${canonicalTerm(b, p)}]`;
    const n = T.readU32(b, p + 1);
    p += 5;
    for (let i = 0; i < n; i++) {
      parts.push(canonicalTerm(b, p));
      p = skipTerm(b, p);
    }
  }
}

function tupleCanonical(b: Uint8Array, first: number, arity: number): string {
  const parts: string[] = [];
  let p = first;
  for (let i = 0; i < arity; i++) {
    parts.push(canonicalTerm(b, p));
    p = skipTerm(b, p);
  }
  return `{${arity}:${parts.join(',')}}`;
}

function bigCanonical(b: Uint8Array, digits: number, n: number, sign: number): string {
  let hex = '';
  for (let i = n - 1; i >= 0; i--) hex += b[digits + i].toString(16).padStart(2, '0');
  const magnitude = hex === '' ? 0n : BigInt(`0x${hex}`);
  return `i${sign !== 0 ? -magnitude : magnitude};`;
}

function atomCanonical(name: string): string {
  return `a${name.length}:${name}`;
}

function latin1(b: Uint8Array, from: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[from + i]);
  return s;
}
