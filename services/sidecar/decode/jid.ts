/**
 * Rule 6 of the semantics page: the reference answers
 *   [Bare | _] = string:split(string:lowercase(JID), "/")
 * string:lowercase/1 maps every code point on its own with Unicode's full lower-case mapping
 * (U+0130 becomes "i" + U+0307) and no context rule (a final capital sigma becomes σ, not ς).
 * string:split/2 works on grapheme clusters: a "/" that a combining mark follows (or a Prepend
 * character precedes) is part of a larger cluster and does not split. Both are matched here.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Lower-casing of single non-ASCII code points, filled on first use. */
const lowerCache = new Map<number, string>();

function lowerCodePoint(cp: number): string {
  let lower = lowerCache.get(cp);
  if (lower === undefined) {
    // One code point on its own: toLowerCase has no neighbours to apply the final-sigma rule to.
    lower = String.fromCodePoint(cp).toLowerCase();
    lowerCache.set(cp, lower);
  }
  return lower;
}

/** Per-code-point full lower-casing, without the final-sigma rule (unlike String.prototype.toLowerCase). */
export function lowercasePerCodePoint(raw: string): string {
  let ascii = true;
  for (let i = 0; i < raw.length; i++) {
    if (raw.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return raw.toLowerCase();
  let out = '';
  for (const ch of raw) {
    const cp = ch.codePointAt(0) as number;
    out += cp < 0x80 ? ch.toLowerCase() : lowerCodePoint(cp);
  }
  return out;
}

let graphemes: Intl.Segmenter | undefined;

/** Everything before the first "/" that is a grapheme cluster of its own (string:split/2). */
export function cutAtFirstSlash(s: string): string {
  let slash = s.indexOf('/');
  while (slash >= 0) {
    const before = slash === 0 ? 0 : s.charCodeAt(slash - 1);
    const after = slash + 1 < s.length ? s.charCodeAt(slash + 1) : 0;
    // Next to ASCII (or an end) a slash is always a cluster of its own.
    if (before < 0x80 && after < 0x80) return s.slice(0, slash);
    return cutAtFirstSlashCluster(s);
  }
  return s;
}

function cutAtFirstSlashCluster(s: string): string {
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  for (const { segment, index } of graphemes.segment(s)) {
    if (segment === '/') return s.slice(0, index);
  }
  return s;
}

/** The bare JID the reference answers for this raw item jid: lower-cased, cut at the first "/". */
export function normalizeJid(raw: string): string {
  return cutAtFirstSlash(lowercasePerCodePoint(raw));
}

/** normalizeJid of UTF-8 bytes; undefined if they are not strict UTF-8 (string:lowercase/1 crashes: -1). */
export function bareJidFromUtf8(b: Uint8Array, from: number, to: number): string | undefined {
  let ascii = true;
  for (let i = from; i < to; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    // Build the lower-cased bare JID straight from the bytes: no decoder, no second pass.
    let out = '';
    for (let i = from; i < to; i++) {
      const c = b[i];
      if (c === 0x2f) break;
      out += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
    }
    return out;
  }
  let raw: string;
  try {
    raw = utf8.decode(b.subarray(from, to));
  } catch {
    return undefined;
  }
  return normalizeJid(raw);
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
