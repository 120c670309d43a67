/**
 * Checks that bytes hold exactly one term that Erlang's binary_to_term would accept, without
 * building it. It is iterative (an explicit stack of child counts), so nesting costs no JS stack,
 * and stops at `maxDepth` nested containers. Bytes after the complete term are not looked at,
 * as binary_to_term ignores them.
 *
 * Found empirically against OTP 25 (see test/decode): a LIST_EXT of length 0 is just its tail;
 * BIT_BINARY_EXT needs 1..8 bits when it has bytes and 0 bits when it has none; NEW_FLOAT_EXT
 * must be finite; bignums of any sign byte and with leading zero digits are fine up to
 * MAX_BIG_BYTES; atoms hold at most 255 characters and UTF-8 atoms must be strict UTF-8;
 * a map must not repeat a key (checked by the caller through `mapPositions`).
 *
 * The switches name their tags as number literals (with the name beside): an imported constant
 * is not folded by V8 here, and the switch would become a chain of loads and compares.
 */
import * as T from './eterm-tags.js';
import { countStrictUtf8CodePoints } from './utf8.js';

const FRAME_LIST = 1;
const FRAME_OTHER = 0;

/** Reusable stack; grown on demand up to maxDepth. */
let remainingStack = new Int32Array(64);
let kindStack = new Uint8Array(64);
let startStack = new Int32Array(64);

/** Buffers up to this size share one end table; larger ones get their own, dropped after use. */
const SHARED_END_TABLE_BYTES = 1024 * 1024;
let sharedEnds = new Int32Array(4096);

/**
 * Filled by validateTerm for the bytes it last accepted: at the offset of each tuple and map tag,
 * the offset just after it; at the offset of each LIST_EXT tag, the offset of its tail. This makes
 * skipping a container O(1) for the rules that walk the term afterwards (skipTerm).
 */
export let termEnds: Int32Array = sharedEnds;

/**
 * @returns the offset just after the term, or a string saying why binary_to_term (or our depth
 * bound) rejects it. Positions of MAP_EXT tags are appended to `mapPositions`.
 */
export function validateTerm(b: Uint8Array, start: number, maxDepth: number, mapPositions: number[]): number | string {
  const end = b.length;
  let ends = sharedEnds;
  if (ends.length <= end) {
    if (end < SHARED_END_TABLE_BYTES) ends = sharedEnds = new Int32Array(Math.min(SHARED_END_TABLE_BYTES, Math.max(end + 1, ends.length * 2)));
    else ends = new Int32Array(end + 1);
  }
  termEnds = ends;
  let remaining = remainingStack;
  let kinds = kindStack;
  let starts = startStack;
  let pos = start;
  let sp = 0;
  for (;;) {
    if (pos >= end) return `truncated term: data ends at byte ${pos}`;
    const tagPos = pos;
    const tag = b[pos];
    let children = 0;
    let kind = FRAME_OTHER;
    // The two commonest tags of an exml term first, outside the switch.
    if (tag === 109 /* BINARY_EXT */) {
      if (pos + 5 > end) return `truncated binary at byte ${tagPos}`;
      pos += 5 + ((b[pos + 1] << 24) >>> 0) + ((b[pos + 2] << 16) | (b[pos + 3] << 8) | b[pos + 4]);
    } else if (tag === 104 /* SMALL_TUPLE_EXT */) {
      if (pos + 2 > end) return `truncated tuple at byte ${tagPos}`;
      children = b[pos + 1];
      pos += 2;
    } else
      switch (tag) {
        case 97 /* SMALL_INTEGER_EXT */:
          pos += 2;
          break;
        case 98 /* INTEGER_EXT */:
          pos += 5;
          break;
        case 70 /* NEW_FLOAT_EXT */: {
          if (pos + 9 > end) return `truncated float at byte ${tagPos}`;
          // An all-ones exponent is NaN or infinity: binary_to_term refuses both.
          if ((b[pos + 1] & 0x7f) === 0x7f && (b[pos + 2] & 0xf0) === 0xf0) return `non-finite float at byte ${tagPos}`;
          pos += 9;
          break;
        }
        case 110 /* SMALL_BIG_EXT */:
          if (pos + 2 > end) return `truncated bignum at byte ${tagPos}`;
          pos += 3 + b[pos + 1];
          break;
        case 111 /* LARGE_BIG_EXT */: {
          if (pos + 5 > end) return `truncated bignum at byte ${tagPos}`;
          const n = T.readU32(b, pos + 1);
          if (n > T.MAX_BIG_BYTES) return `bignum of ${n} bytes at byte ${tagPos} is larger than Erlang allows`;
          pos += 6 + n;
          break;
        }
        case 100 /* ATOM_EXT */: {
          if (pos + 3 > end) return `truncated atom at byte ${tagPos}`;
          const n = T.readU16(b, pos + 1);
          if (n > T.MAX_ATOM_CHARACTERS) return `atom of ${n} characters at byte ${tagPos}`;
          pos += 3 + n;
          break;
        }
        case 115 /* SMALL_ATOM_EXT */:
          if (pos + 2 > end) return `truncated atom at byte ${tagPos}`;
          pos += 2 + b[pos + 1];
          break;
        case T.ATOM_UTF8_EXT:
        case T.SMALL_ATOM_UTF8_EXT: {
          const small = tag === T.SMALL_ATOM_UTF8_EXT;
          const header = small ? 2 : 3;
          if (pos + header > end) return `truncated atom at byte ${tagPos}`;
          const n = small ? b[pos + 1] : T.readU16(b, pos + 1);
          const from = pos + header;
          if (from + n > end) return `truncated atom at byte ${tagPos}`;
          let ascii = true;
          for (let i = from; i < from + n; i++) {
            if (b[i] >= 0x80) {
              ascii = false;
              break;
            }
          }
          if (!ascii || n > T.MAX_ATOM_CHARACTERS) {
            const chars = countStrictUtf8CodePoints(b, from, from + n);
            if (chars < 0) return `invalid UTF-8 in atom at byte ${tagPos}`;
            if (chars > T.MAX_ATOM_CHARACTERS) return `atom of ${chars} characters at byte ${tagPos}`;
          }
          pos = from + n;
          break;
        }
        case 109 /* BINARY_EXT */:
          if (pos + 5 > end) return `truncated binary at byte ${tagPos}`;
          pos += 5 + T.readU32(b, pos + 1);
          break;
        case 77 /* BIT_BINARY_EXT */: {
          if (pos + 6 > end) return `truncated bitstring at byte ${tagPos}`;
          const n = T.readU32(b, pos + 1);
          const bits = b[pos + 5];
          if (n === 0 ? bits !== 0 : bits < 1 || bits > 8) return `bitstring with ${bits} bits in its last of ${n} bytes at byte ${tagPos}`;
          pos += 6 + n;
          break;
        }
        case 107 /* STRING_EXT */: {
          if (pos + 3 > end) return `truncated string at byte ${tagPos}`;
          const n = T.readU16(b, pos + 1);
          // A charlist is a list: one level of nesting, like a LIST_EXT of small integers.
          if (n > 0 && sp >= maxDepth) return `terms nested deeper than the limit of ${maxDepth} at byte ${tagPos}`;
          pos += 3 + n;
          break;
        }
        case 106 /* NIL_EXT */:
          pos += 1;
          break;
        case 104 /* SMALL_TUPLE_EXT */:
          if (pos + 2 > end) return `truncated tuple at byte ${tagPos}`;
          children = b[pos + 1];
          pos += 2;
          break;
        case 105 /* LARGE_TUPLE_EXT */:
          if (pos + 5 > end) return `truncated tuple at byte ${tagPos}`;
          children = T.readU32(b, pos + 1);
          pos += 5;
          break;
        case 108 /* LIST_EXT */:
          if (pos + 5 > end) return `truncated list at byte ${tagPos}`;
          children = T.readU32(b, pos + 1);
          kind = FRAME_LIST;
          pos += 5;
          if (children === 0) {
            ends[tagPos] = pos;
            continue; // [] ++ Tail: the tail follows and stands for the whole list
          }
          break;
        case 116 /* MAP_EXT */:
          if (pos + 5 > end) return `truncated map at byte ${tagPos}`;
          children = T.readU32(b, pos + 1) * 2;
          mapPositions.push(tagPos);
          pos += 5;
          break;
        default:
          return `unsupported term tag ${tag} at byte ${tagPos}`;
      }
    if (pos > end) return `truncated term: data ends before byte ${pos}`;
    if (children > 0) {
      // Every child takes at least one byte: a count beyond the data is truncation, said at once.
      if (children > end - pos) return `truncated term: ${children} elements announced at byte ${tagPos}, ${end - pos} bytes left`;
      if (sp >= maxDepth) return `terms nested deeper than the limit of ${maxDepth} at byte ${tagPos}`;
      if (sp === remaining.length) {
        growStack();
        remaining = remainingStack;
        kinds = kindStack;
        starts = startStack;
      }
      remaining[sp] = children;
      kinds[sp] = kind;
      starts[sp] = tagPos;
      sp++;
      continue;
    }
    if (tag === 104 /* SMALL_TUPLE_EXT */ || tag === 105 /* LARGE_TUPLE_EXT */ || tag === 116 /* MAP_EXT */) ends[tagPos] = pos;
    // A term is complete: count it off its container, closing every container it completes.
    for (;;) {
      if (sp === 0) return pos;
      if (--remaining[sp - 1] > 0) break;
      sp--;
      ends[starts[sp]] = pos;
      // A list's tail is read next, at the list's own level: it does not nest.
      if (kinds[sp] === FRAME_LIST) break;
    }
  }
}

function growStack(): void {
  const remaining = new Int32Array(remainingStack.length * 2);
  remaining.set(remainingStack);
  const kinds = new Uint8Array(kindStack.length * 2);
  kinds.set(kindStack);
  const starts = new Int32Array(startStack.length * 2);
  starts.set(startStack);
  remainingStack = remaining;
  kindStack = kinds;
  startStack = starts;
}
