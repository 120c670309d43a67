/**
 * Reading a term that validateTerm has just accepted, in place: no term is built, positions are
 * byte offsets. Nothing here checks bounds again, and skipping relies on validateTerm's end table.
 */
import * as T from './eterm-tags.js';
import { termEnds } from './eterm-validate.js';

/**
 * @returns the offset just after the term at pos. Containers are passed in one step through the
 * end table validateTerm filled; only a list's tail (usually NIL) is read.
 */
export function skipTerm(b: Uint8Array, pos: number): number {
  for (;;) {
    switch (b[pos]) {
      case 97 /* SMALL_INTEGER_EXT */:
        return pos + 2;
      case 98 /* INTEGER_EXT */:
        return pos + 5;
      case 70 /* NEW_FLOAT_EXT */:
        return pos + 9;
      case 110 /* SMALL_BIG_EXT */:
        return pos + 3 + b[pos + 1];
      case 111 /* LARGE_BIG_EXT */:
        return pos + 6 + T.readU32(b, pos + 1);
      case 100 /* ATOM_EXT */:
      case T.ATOM_UTF8_EXT:
        return pos + 3 + T.readU16(b, pos + 1);
      case 115 /* SMALL_ATOM_EXT */:
      case T.SMALL_ATOM_UTF8_EXT:
        return pos + 2 + b[pos + 1];
      case 109 /* BINARY_EXT */:
        return pos + 5 + T.readU32(b, pos + 1);
      case 77 /* BIT_BINARY_EXT */:
        return pos + 6 + T.readU32(b, pos + 1);
      case 107 /* STRING_EXT */:
        return pos + 3 + T.readU16(b, pos + 1);
      case 106 /* NIL_EXT */:
        return pos + 1;
      case 104 /* SMALL_TUPLE_EXT */:
      case 105 /* LARGE_TUPLE_EXT */:
      case 116 /* MAP_EXT */:
        return termEnds[pos];
      case 108 /* LIST_EXT */:
        pos = termEnds[pos];
        break; // then pass the tail
      default:
        throw new Error(`skipTerm: tag ${b[pos]} at byte ${pos} was not validated`);
    }
  }
}

/** Set by binaryAt: where the bytes of the binary found start, and how many there are. */
export let binaryStart = 0;
export let binaryLength = 0;

/**
 * Is the term at pos a binary (BINARY_EXT, or a BIT_BINARY_EXT whose last byte is whole)?
 * If so, sets binaryStart/binaryLength.
 */
export function binaryAt(b: Uint8Array, pos: number): boolean {
  const tag = b[pos];
  if (tag === 109 /* BINARY_EXT */) {
    binaryStart = pos + 5;
    binaryLength = T.readU32(b, pos + 1);
    return true;
  }
  if (tag === 77 /* BIT_BINARY_EXT */) {
    const n = T.readU32(b, pos + 1);
    if (n !== 0 && b[pos + 5] !== 8) return false;
    binaryStart = pos + 6;
    binaryLength = n;
    return true;
  }
  return false;
}

/** Is the term at pos the binary holding exactly these bytes? (Locals only: this runs for every attribute.) */
export function binaryEquals(b: Uint8Array, pos: number, expected: Uint8Array): boolean {
  const tag = b[pos];
  let from: number;
  if (tag === 109 /* BINARY_EXT */) {
    from = pos + 5;
  } else if (tag === 77 /* BIT_BINARY_EXT */) {
    if (b[pos + 5] !== 8 && T.readU32(b, pos + 1) !== 0) return false;
    from = pos + 6;
  } else {
    return false;
  }
  const n = expected.length;
  if (T.readU32(b, pos + 1) !== n) return false;
  for (let i = 0; i < n; i++) if (b[from + i] !== expected[i]) return false;
  return true;
}

/** Is the term at pos the atom with this ASCII name, whichever of the four atom tags wrote it? */
export function atomEquals(b: Uint8Array, pos: number, name: Uint8Array): boolean {
  const tag = b[pos];
  let from: number;
  let n: number;
  if (tag === 100 /* ATOM_EXT */ || tag === T.ATOM_UTF8_EXT) {
    n = T.readU16(b, pos + 1);
    from = pos + 3;
  } else if (tag === 115 /* SMALL_ATOM_EXT */ || tag === T.SMALL_ATOM_UTF8_EXT) {
    n = b[pos + 1];
    from = pos + 2;
  } else {
    return false;
  }
  if (n !== name.length) return false;
  for (let i = 0; i < n; i++) if (b[from + i] !== name[i]) return false;
  return true;
}

/** Arity of the tuple at pos, or -1 if the term is not a tuple. */
export function tupleArity(b: Uint8Array, pos: number): number {
  const tag = b[pos];
  if (tag === 104 /* SMALL_TUPLE_EXT */) return b[pos + 1];
  if (tag === 105 /* LARGE_TUPLE_EXT */) return T.readU32(b, pos + 1);
  return -1;
}

/** Offset of the first element of the tuple at pos (a tuple, as tupleArity said). */
export function tupleFirst(b: Uint8Array, pos: number): number {
  return b[pos] === 104 /* SMALL_TUPLE_EXT */ ? pos + 2 : pos + 5;
}

/** Offset of element `n` (1-based, as in Erlang's element/2) of the tuple at pos. */
export function tupleElement(b: Uint8Array, pos: number, n: number): number {
  let p = tupleFirst(b, pos);
  for (let i = 1; i < n; i++) p = skipTerm(b, p);
  return p;
}

export const NOT_FOUND = -1;
/** lists:keyfind/3 raised badarg: the "list" is not a list, or ends in an improper tail before a match. */
export const BADARG = -2;

/**
 * lists:keyfind(Key, N, List) for the list at pos, where `matches(b, elementPos)` says whether
 * element N of a tuple equals Key. Non-tuples and tuples shorter than N are passed over, and the
 * search stops at the first match, whatever follows it.
 * @returns the offset of the matching tuple, NOT_FOUND, or BADARG.
 */
export function keyfind(b: Uint8Array, pos: number, n: number, matches: (b: Uint8Array, pos: number) => boolean): number {
  let p = pos;
  for (;;) {
    const tag = b[p];
    if (tag === 106 /* NIL_EXT */ || tag === 107 /* STRING_EXT */) return NOT_FOUND; // a charlist holds only integers
    if (tag !== 108 /* LIST_EXT */) return BADARG;
    const count = T.readU32(b, p + 1);
    p += 5;
    for (let i = 0; i < count; i++) {
      const arity = tupleArity(b, p);
      if (arity >= n && matches(b, tupleElement(b, p, n))) return p;
      p = skipTerm(b, p);
    }
    // p is now the tail: another list continues the search, anything else ends it.
  }
}

/** keyfind where Key is a binary: element N must be that binary (the common case, without a callback). */
export function keyfindBinary(b: Uint8Array, pos: number, n: number, key: Uint8Array): number {
  let p = pos;
  for (;;) {
    const tag = b[p];
    if (tag === 106 /* NIL_EXT */ || tag === 107 /* STRING_EXT */) return NOT_FOUND;
    if (tag !== 108 /* LIST_EXT */) return BADARG;
    const count = T.readU32(b, p + 1);
    p += 5;
    for (let i = 0; i < count; i++) {
      const t = b[p];
      if (t === 104 /* SMALL_TUPLE_EXT */ || t === 105 /* LARGE_TUPLE_EXT */) {
        const arity = t === 104 ? b[p + 1] : T.readU32(b, p + 1);
        if (arity >= n) {
          let e = t === 104 ? p + 2 : p + 5;
          for (let k = 1; k < n; k++) e = skipTerm(b, e);
          if (binaryEquals(b, e, key)) return p;
        }
        p = termEnds[p];
      } else {
        p = skipTerm(b, p);
      }
    }
  }
}

/**
 * Iterates a map's pairs: calls visit(keyPos, valuePos) for each until it returns true.
 * @returns the key offset visit accepted, or NOT_FOUND.
 */
export function findMapKey(b: Uint8Array, pos: number, matchesKey: (b: Uint8Array, pos: number) => boolean): number {
  let p = pos + 5;
  for (let i = T.readU32(b, pos + 1); i > 0; i--) {
    if (matchesKey(b, p)) return p;
    p = skipTerm(b, skipTerm(b, p));
  }
  return NOT_FOUND;
}
