/**
 * `--url` checked before anything connects: the scheme the backend speaks, and a value that
 * parses as the driver will read it. A URL may hold a password, so a refusal never prints the
 * value as given: it names the part that is wrong, or shows the URL with its user and password
 * (and any query, which may hold `password=`) replaced by `***`.
 */
import { UsageError } from './registry.js';

export interface UrlRules {
  /** Schemes accepted, without `:` or `//` (`postgres`, `postgresql`). */
  readonly schemes: readonly string[];
  /** What a right URL looks like, for the message (`postgres://USER:PASSWORD@HOST:5432/DATABASE`). */
  readonly example: string;
  /** Where credentials go when the URL must not hold them (a flag), or undefined when it may. */
  readonly credentialsElsewhere?: string;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** The URL for a message: `scheme://***@host...`, any query as `?***`; unchanged when it holds neither. */
export function redactUrl(raw: string): string {
  const scheme = SCHEME.exec(raw)?.[0] ?? '';
  let rest = raw.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  if (at !== -1) rest = `***${rest.slice(at)}`;
  const query = rest.indexOf('?');
  if (query !== -1) rest = `${rest.slice(0, query)}?***`;
  return scheme + rest;
}

/** The scheme of `raw` (lower case, without `://`), or null when it does not start with one. */
export function schemeOf(raw: string): string | null {
  return SCHEME.exec(raw)?.[1].toLowerCase() ?? null;
}

const ENCODING_HINT = 'a user or password holding / # ? @ % : or a space must be percent-encoded (%2F %23 %3F %40 %25 %3A %20)';

/**
 * Checks one URL of `--url` (`flag` names it in messages, e.g. `--url` or `--url (2nd node)`).
 * Throws `UsageError` without echoing a secret; returns the parsed URL.
 */
export function checkUrl(flag: string, raw: string, rules: UrlRules): URL {
  const scheme = schemeOf(raw.trim());
  const expected = rules.schemes.map((s) => `${s}://`).join(' or ');
  if (scheme === null) throw new UsageError(`${flag} must start with ${expected} (${rules.example})`);
  if (!rules.schemes.includes(scheme)) throw new UsageError(`${flag} has scheme ${scheme}://; this backend needs ${expected} (${rules.example})`);
  if (rules.credentialsElsewhere !== undefined && raw.includes('@')) {
    throw new UsageError(`${flag} must not hold a user or password (they would show in ps): ${rules.credentialsElsewhere}`);
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    // An empty host (`postgres://user@/db`: the driver's default host) parses with one in place.
    try {
      url = new URL(raw.trim().replace('@/', '@placeholder/'));
    } catch {
      throw new UsageError(`${flag} ${redactUrl(raw.trim())} is not a URL (${rules.example}); ${ENCODING_HINT}`);
    }
  }
  const hasCredentials = url.username !== '' || url.password !== '';
  if (!hasCredentials && /@/.test(url.pathname + url.search + url.hash)) {
    // `user:pa/ss@host`: the `/` ended the host, and the rest was read as the path.
    throw new UsageError(`${flag} ${redactUrl(raw.trim())}: the part before '@' was not read as user and password; ${ENCODING_HINT}`);
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    throw new UsageError(`${flag} ${redactUrl(raw.trim())}: the user or password holds a % that is not an escape; ${ENCODING_HINT}`);
  }
  return url;
}
