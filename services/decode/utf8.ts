/**
 * Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), as Erlang
 * checks UTF-8 atoms and as string:lowercase/1 needs its binary.
 * @returns the number of code points in b[from, to), or -1 if the bytes are not strict UTF-8.
 */
export function countStrictUtf8CodePoints(b: Uint8Array, from: number, to: number): number {
  let count = 0;
  let i = from;
  while (i < to) {
    const c = b[i];
    count++;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2) return -1; // continuation byte or overlong 2-byte lead
    if (c < 0xe0) {
      if (i + 1 >= to || (b[i + 1] & 0xc0) !== 0x80) return -1;
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= to) return -1;
      const c1 = b[i + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80) return -1;
      if (c === 0xe0 && c1 < 0xa0) return -1; // overlong
      if (c === 0xed && c1 >= 0xa0) return -1; // surrogate
      i += 3;
      continue;
    }
    if (c < 0xf5) {
      if (i + 3 >= to) return -1;
      const c1 = b[i + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80 || (b[i + 3] & 0xc0) !== 0x80) return -1;
      if (c === 0xf0 && c1 < 0x90) return -1; // overlong
      if (c === 0xf4 && c1 >= 0x90) return -1; // above U+10FFFF
      i += 4;
      continue;
    }
    return -1;
  }
  return count;
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true });
/** Up to this many bytes are decoded here (no call into the runtime's decoder); longer ones by TextDecoder. */
const SHORT_TEXT_BYTES = 512;
const codeUnits = new Uint16Array(SHORT_TEXT_BYTES);

/** Strict UTF-8 bytes to a string; undefined if they are not strict UTF-8. */
export function decodeStrictUtf8(b: Uint8Array, from: number, to: number): string | undefined {
  if (to - from > SHORT_TEXT_BYTES) {
    try {
      return fatalDecoder.decode(b.subarray(from, to));
    } catch {
      return undefined;
    }
  }
  if (countStrictUtf8CodePoints(b, from, to) < 0) return undefined;
  let n = 0;
  let i = from;
  while (i < to) {
    const c = b[i];
    let cp: number;
    if (c < 0x80) {
      cp = c;
      i++;
    } else if (c < 0xe0) {
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      i += 2;
    } else if (c < 0xf0) {
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      i += 3;
    } else {
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
      i += 4;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      codeUnits[n++] = 0xd800 + (cp >> 10);
      codeUnits[n++] = 0xdc00 + (cp & 0x3ff);
    } else {
      codeUnits[n++] = cp;
    }
  }
  return String.fromCharCode.apply(null, codeUnits.subarray(0, n) as unknown as number[]);
}
