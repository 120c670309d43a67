/**
 * JSON as Riak writes it. Riak's HTTP resources encode with mochijson2 and its default options,
 * which escape every non-ASCII character as `\uXXXX` (UTF-16 surrogate pairs above U+FFFF) and
 * fail on a binary that is not valid UTF-8 (mochijson2:json_encode_string/2 goes through
 * xmerl_ucs:from_utf8/1, which exits). The double writes the same bytes, so a client that only
 * handled raw UTF-8 in responses would fail here as it would against Riak.
 */

/** Thrown where mochijson2 would exit: the resource then answers 500. */
export class NotUtf8Error extends Error {
  override readonly name = 'NotUtf8Error';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A register value as Riak holds it (bytes) turned into the string mochijson2 would encode. */
export function registerText(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new NotUtf8Error('register value is not valid UTF-8');
  }
}

/** JSON.stringify, then every non-ASCII UTF-16 unit escaped, as mochijson2 does by default. */
export function mochiEncode(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
