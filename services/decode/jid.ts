/**
 * Rule 6 of the semantics page: the reference answers
 *   [Bare | _] = string:split(string:lowercase(JID), "/")
 * string:lowercase/1 maps every code point on its own with Unicode's full lower-case mapping
 * (U+0130 becomes "i" + U+0307) and no context rule (a final capital sigma becomes σ, not ς).
 * string:split/2 works on grapheme clusters: a "/" that a combining mark follows is part of a
 * larger cluster and does not split. Both are matched here.
 */

import { decodeStrictUtf8 } from './utf8.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Lower-casing of single non-ASCII code points, filled on first use. */
const lowerCache = new Map<number, string>();

/**
 * Capital letters that Node's Unicode (16+) lower-cases but OTP 25's Unicode 14 does not know, so
 * string:lowercase/1 leaves them as they are (found by test/decode/jid.test.ts, which compares every
 * code point with Erlang's answer).
 */
const NEWER_LATIN_CAPITALS = new Set([0x1c89, 0xa7cb, 0xa7cc, 0xa7ce, 0xa7d2, 0xa7d4, 0xa7da, 0xa7dc]);

function unknownToUnicode14(cp: number): boolean {
  return NEWER_LATIN_CAPITALS.has(cp) || (cp >= 0x10d50 && cp <= 0x10d65) || (cp >= 0x16ea0 && cp <= 0x16eb8);
}

function lowerCodePoint(cp: number): string {
  let lower = lowerCache.get(cp);
  if (lower === undefined) {
    // One code point on its own: toLowerCase has no neighbours to apply the final-sigma rule to.
    lower = unknownToUnicode14(cp) ? String.fromCodePoint(cp) : String.fromCodePoint(cp).toLowerCase();
    lowerCache.set(cp, lower);
  }
  return lower;
}

/**
 * Per-code-point full lower-casing, without the final-sigma rule (unlike String.prototype.toLowerCase).
 * toLowerCase has no other context rule without a locale, so it is used as it is unless the text holds
 * a capital sigma or a letter newer than Unicode 14.
 */
export function lowercasePerCodePoint(raw: string): string {
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x3a3) continue;
    if (c === 0x3a3 || c === 0x1c89 || (c >= 0xa7cb && c <= 0xa7dc) || c === 0xd803 || c === 0xd81b) {
      plain = false;
      break;
    }
  }
  if (plain) return raw.toLowerCase();
  let out = '';
  for (const ch of raw) {
    const cp = ch.codePointAt(0) as number;
    out += cp < 0x80 ? ch.toLowerCase() : lowerCodePoint(cp);
  }
  return out;
}

/**
 * Everything before the first "/" that string:split/2 splits at: one that the next code point
 * does not join into a larger grapheme cluster (a combining mark, ZWJ, a spacing mark). What comes
 * before the slash does not matter to Erlang (checked: a Prepend character before it still splits).
 */
export function cutAtFirstSlash(s: string): string {
  let slash = s.indexOf('/');
  while (slash >= 0) {
    const after = slash + 1 < s.length ? s.charCodeAt(slash + 1) : 0;
    if (after < 0x80 || slashStandsAlone(s, slash)) return s.slice(0, slash);
    slash = s.indexOf('/', slash + 1);
  }
  return s;
}

let graphemes: Intl.Segmenter | undefined;

function slashStandsAlone(s: string, slash: number): boolean {
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  // The slash and the code point after it (at most two UTF-16 units) decide the first cluster.
  for (const { segment } of graphemes.segment(s.slice(slash, slash + 3))) return segment === '/';
  return true;
}

/** The bare JID the reference answers for this raw item jid: lower-cased, cut at the first "/". */
export function normalizeJid(raw: string): string {
  return cutAtFirstSlash(lowercasePerCodePoint(raw));
}

/**
 * Archives repeat their senders: the bare JIDs of recently seen jid values, by their bytes.
 * Bounded: emptied when full. Keyed by a hash, confirmed by comparing the bytes.
 */
const JID_CACHE_ENTRIES = 4096;
const jidCache = new Map<number, { readonly bytes: Uint8Array; readonly bareJid: string }>();

/** normalizeJid of UTF-8 bytes; undefined if they are not strict UTF-8 (string:lowercase/1 crashes: -1). */
export function bareJidFromUtf8(b: Uint8Array, from: number, to: number): string | undefined {
  // A cheap key: the length and up to 8 bytes from each end. Two values sharing it only evict
  // each other; the byte comparison below keeps answers exact.
  const n = to - from;
  let hash = Math.imul(0x811c9dc5 ^ n, 0x01000193);
  const head = Math.min(n, 8);
  for (let i = 0; i < head; i++) hash = Math.imul(hash ^ b[from + i], 0x01000193);
  for (let i = Math.max(head, n - 8); i < n; i++) hash = Math.imul(hash ^ b[from + i], 0x01000193);
  const cached = jidCache.get(hash);
  if (cached !== undefined && sameBytes(cached.bytes, b, from, to)) return cached.bareJid;
  const bareJid = computeBareJid(b, from, to);
  if (bareJid !== undefined && to - from <= 1024) {
    if (jidCache.size >= JID_CACHE_ENTRIES) jidCache.clear();
    // A copy: b may be a Buffer (whose slice() is a view) over the inflater's reused output.
    jidCache.set(hash, { bytes: Uint8Array.prototype.slice.call(b, from, to), bareJid });
  }
  return bareJid;
}

function sameBytes(cached: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  if (cached.length !== to - from) return false;
  for (let i = 0; i < cached.length; i++) if (cached[i] !== b[from + i]) return false;
  return true;
}

function computeBareJid(b: Uint8Array, from: number, to: number): string | undefined {
  let ascii = true;
  for (let i = from; i < to; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    // ASCII: next to a slash there is no combining mark, so the first slash cuts.
    let cut = from;
    while (cut < to && b[cut] !== 0x2f) cut++;
    const bytes = b.subarray(from, cut);
    // apply() passes every byte as an argument: only for JID-sized values.
    const text = bytes.length <= 1024 ? String.fromCharCode.apply(null, bytes as unknown as number[]) : utf8.decode(bytes);
    return text.toLowerCase();
  }
  const raw = decodeStrictUtf8(b, from, to);
  return raw === undefined ? undefined : normalizeJid(raw);
}

export type SplitJid = { user: string; server: string } | { reason: 'jid_without_local_part' | 'jid_without_domain'; detail: string };

/** Splits a bare JID at its first "@" into local part and domain, refusing an empty part or a missing "@". */
export function splitBareJid(bareJid: string): SplitJid {
  const at = bareJid.indexOf('@');
  if (at < 0) return { reason: 'jid_without_local_part', detail: `JID '${bareJid}' has no '@'` };
  if (at === 0) return { reason: 'jid_without_local_part', detail: `JID '${bareJid}' has an empty local part` };
  if (at === bareJid.length - 1) return { reason: 'jid_without_domain', detail: `JID '${bareJid}' has an empty domain` };
  return { user: bareJid.slice(0, at), server: bareJid.slice(at + 1) };
}
