/**
 * A small, strict, single-pass XML scanner that answers exactly what the xml rules ask of a
 * payload, and checks on the way that the document is well-formed the way the reference tool's
 * parser (Erlang's xmerl, non-validating, not namespace-conformant) sees it.
 *
 * Why not a general parser: fast-xml-parser builds a whole object tree and parses about 60,000
 * of bench/xml-parser.ts's MongooseIM messages per CPU second; this walks the bytes once (about
 * 5.5 times as fast), allocates almost nothing, and builds a string only for the `jid` it returns. Anything it does not understand is malformed, never
 * guessed at.
 *
 * What "well-formed" means here (each point checked against xmerl: xml-rules.test.ts case by case,
 * xml-differential.test.ts over thousands of seeded messages, mutations and gibberish):
 * - The payload is UTF-8; invalid UTF-8 or a character outside XML's Char range (controls other
 *   than tab/LF/CR, U+FFFE, U+FFFF, surrogates) is malformed wherever the scanner reads: before
 *   and inside the root element, and in comments/PIs after it.
 * - Before the root: white space, comments and processing instructions. A PI target starting with
 *   [Xx][Mm][Ll] is refused (so is `<?xml ...?>`: the reference prepends its own declaration, so a
 *   payload's own would be a second one), except the well-known `xml-stylesheet`. Any `<!DOCTYPE`
 *   or other `<!` markup declaration is refused: we never expand DTD entities (our deviation).
 * - Names use XML 1.0 fourth-edition character classes (xml-name-chars.ts); colons are plain name
 *   characters. A name of more than 255 characters all below U+0100 is malformed, and so is an
 *   `xmlns`/`xmlns:*` value longer than 255 characters: the reference turns both into Erlang
 *   atoms, which cannot be longer.
 * - Attributes: `Name S? = S? "value"` or `'value'`, white space required between attributes,
 *   no duplicate names, no `<` in values, only the five predefined entity references and
 *   numeric character references (`&#N;`, `&#xH;`, lower-case x) that name a legal character.
 * - Content: text without `]]>` (also when a `&#93;` reference is followed by `]>`, as the
 *   reference re-reads referenced characters), references as above, comments without `--`,
 *   CDATA sections, PIs, child elements; every start tag closed by an end tag of the same name.
 * - After the root element: white space, comments and PIs are still read (and must be
 *   well-formed); the first other byte ends the document and the rest is ignored.
 *
 * Bounds: nesting deeper than limits.maxDepth and more than limits.maxXmlAttributes attributes on
 * one element are malformed. The scan is a loop, never recursion, and linear in the payload.
 */
import { isUtf8 } from 'node:buffer';
import type { DecodeLimits } from './limits.js';
import { isNameChar, isNameStartChar } from './xml-name-chars.js';

/** What the xml rules need to know about a well-formed payload. */
export interface MessageFacts {
  /** The root element is named `message`, without prefix. */
  readonly rootIsMessage: boolean;
  /** The root element's name as written, for error details. */
  readonly rootName: string;
  /** The decoded value of the root's `type` attribute, or null when it has none. */
  readonly rootType: string | null;
  /** Some unprefixed `x` child of the root has muc#user as its default namespace in scope. */
  readonly hasMucUserX: boolean;
  /** How many `jid` attributes the unprefixed `item` children of unprefixed `x` children carry. */
  readonly jidCount: number;
  /**
   * The first such `jid` value, when there is one: as the byte span [start, end) of the payload
   * when those bytes are the value (the common case: no reference, no TAB/LF/CR), else decoded.
   */
  readonly firstJid: { readonly start: number; readonly end: number } | string | null;
  /**
   * What exml_query's lookup of `origin-id` among the root's children finds first (see
   * eterm-fields.ts): nothing, a text child that reads exactly `origin-id` (text runs between
   * elements merged, comments and PIs left out, as exml's parser builds them), or an element
   * named exactly `origin-id`.
   */
  readonly originIdChild: 'none' | 'text' | 'element';
  /** That element's `xmlns` and `id` attribute values (references replaced, nothing normalised), or null. */
  readonly originIdXmlns: string | null;
  readonly originIdValue: string | null;
}

/** The scan's answer: the facts, or why the payload is not well-formed XML. */
export type ScanResult = { readonly facts: MessageFacts } | { readonly malformed: string };

export const MUC_USER_NS = 'http://jabber.org/protocol/muc#user';

// Byte values of the ASCII characters the grammar names.
const TAB = 0x09,
  LF = 0x0a,
  CR = 0x0d,
  SPACE = 0x20,
  BANG = 0x21,
  DQUOTE = 0x22,
  HASH = 0x23;
const AMP = 0x26,
  SQUOTE = 0x27,
  DASH = 0x2d,
  SLASH = 0x2f,
  SEMI = 0x3b,
  LT = 0x3c,
  EQ = 0x3d;
const GT = 0x3e,
  QMARK = 0x3f,
  RBRACKET = 0x5d;

// Per-ASCII-byte classes.
const C_WS = 1,
  C_NAME_START = 2,
  C_NAME = 4;
const ASCII_CLASS: Uint8Array = (() => {
  const t = new Uint8Array(128);
  for (const c of [TAB, LF, CR, SPACE]) t[c] = C_WS;
  for (let c = 0; c < 128; c++) {
    if (isNameStartChar(c)) t[c] |= C_NAME_START;
    if (isNameChar(c)) t[c] |= C_NAME;
  }
  return t;
})();

/** The longest Erlang atom, in characters: names and namespace URIs become atoms in xmerl. */
const MAX_ATOM_CHARS = 255;
const DUPLICATE_SCAN_LINEAR_MAX = 16;

const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);
const B_MESSAGE = bytesOf('message');
const B_TYPE = bytesOf('type');
const B_XMLNS = bytesOf('xmlns');
const B_JID = bytesOf('jid');
const B_X = bytesOf('x');
const B_ITEM = bytesOf('item');
const B_GROUPCHAT = bytesOf('groupchat');
const B_MUC_USER = bytesOf(MUC_USER_NS);
const B_STYLESHEET = bytesOf('-stylesheet');
const B_CDATA = bytesOf('[CDATA[');
const B_DOCTYPE = bytesOf('DOCTYPE');
const B_ORIGIN_ID = bytesOf('origin-id');
const B_ID = bytesOf('id');
const ORIGIN_ID = 'origin-id';

/** Where an element sits, as far as the rules care. */
const ROLE_ROOT = 1,
  ROLE_X = 2,
  ROLE_ITEM = 3,
  ROLE_ORIGIN_ID = 4,
  ROLE_OTHER = 0;

const utf8 = new TextDecoder('utf-8');

/**
 * One scan's state. Fields instead of return tuples: the hot path must not allocate, and
 * failures are values (a detail string) rather than exceptions.
 */
class Scanner {
  private readonly b: Uint8Array;
  private readonly n: number;
  /** The whole payload is valid UTF-8 (checked natively once); else every character is decoded. */
  private readonly validUtf8: boolean;
  private error = '';
  /** Set by decodeChar: the byte length of the character just decoded. */
  private step = 0;
  /** Set by scanReference: the referenced code point. */
  private refCp = 0;
  /** Set by scanAttValue: whether the raw bytes are the decoded value (no reference, no TAB/LF/CR). */
  private valueSimple = true;
  /** Set by scanAttValue for simple values: their length in characters. */
  private valueChars = 0;
  /** Set by scanStartTag: the tag ended with `/>`. */
  private selfClosing = false;

  private attrSet: Set<string> | null = null;

  // What the rules need, filled in as the scan passes.
  private rootIsMessage = false;
  private rootNameStart = 0;
  private rootNameEnd = 0;
  private rootType: string | null = null;
  private rootNsIsMucUser = false;
  private ownNsSeen = false;
  private ownNsIsMucUser = false;
  private hasMucUserX = false;
  private jidCount = 0;
  private firstJidStart = -1;
  private firstJidEnd = -1;
  private firstJidSimple = true;
  /** The origin-id lookup has not met its first match among the root's children yet. */
  private originIdPending = true;
  private originIdChild: 'none' | 'text' | 'element' = 'none';
  private originIdXmlns: string | null = null;
  private originIdValue: string | null = null;
  /** The root's text run since its last child element, while it can still read `origin-id`. */
  private rootRun = '';
  /** The run holds white space or is too long: it cannot read `origin-id`. */
  private rootRunDead = false;

  constructor(
    payload: Uint8Array,
    private readonly limits: DecodeLimits,
  ) {
    this.b = payload;
    this.n = payload.length;
    this.validUtf8 = isUtf8(payload);
  }

  scan(): ScanResult {
    if (this.n === 0) return { malformed: 'empty payload' };
    let i = this.scanProlog(0);
    if (i >= 0) i = this.scanRootElement(i);
    if (i >= 0) i = this.scanTrailer(i);
    if (i < 0) return { malformed: this.error };
    return {
      facts: {
        rootIsMessage: this.rootIsMessage,
        rootName: this.rootIsMessage ? 'message' : utf8.decode(this.b.subarray(this.rootNameStart, Math.min(this.rootNameEnd, this.rootNameStart + 200))),
        rootType: this.rootType,
        hasMucUserX: this.hasMucUserX,
        jidCount: this.jidCount,
        firstJid:
          this.jidCount === 0
            ? null
            : this.firstJidSimple
              ? { start: this.firstJidStart, end: this.firstJidEnd }
              : this.attValueString(this.firstJidStart, this.firstJidEnd, false),
        originIdChild: this.originIdChild,
        originIdXmlns: this.originIdXmlns,
        originIdValue: this.originIdValue,
      },
    };
  }

  private fail(detail: string, at: number): number {
    this.error = `${detail} (at byte ${at})`;
    return -1;
  }

  // ---- document structure -------------------------------------------------------------------

  /** White space, comments and PIs before the root; returns the index of the root's `<`. */
  private scanProlog(i: number): number {
    const b = this.b;
    for (;;) {
      i = this.skipWs(i);
      if (i >= this.n) return this.fail('no root element', i);
      if (b[i] !== LT) return this.fail('text before the root element', i);
      const next = b[i + 1];
      if (next === QMARK) {
        i = this.scanPi(i + 2);
        if (i < 0) return -1;
      } else if (next === BANG) {
        if (b[i + 2] === DASH && b[i + 3] === DASH) {
          i = this.scanComment(i + 4);
          if (i < 0) return -1;
        } else if (this.matches(i + 2, B_DOCTYPE)) {
          return this.fail('DOCTYPE declaration refused: DTDs are never processed (MongooseIM stores none)', i);
        } else {
          return this.fail('markup declaration or CDATA before the root element', i);
        }
      } else {
        return i;
      }
    }
  }

  /** After the root: white space, comments and PIs are read; anything else ends the document. */
  private scanTrailer(i: number): number {
    const b = this.b;
    for (;;) {
      i = this.skipWs(i);
      if (b[i] !== LT) return i;
      if (b[i + 1] === QMARK) {
        i = this.scanPi(i + 2);
      } else if (b[i + 1] === BANG && b[i + 2] === DASH && b[i + 3] === DASH) {
        i = this.scanComment(i + 4);
      } else {
        return i;
      }
      if (i < 0) return -1;
    }
  }

  /**
   * The root element and everything inside it, as a loop over an explicit stack of open element
   * names (never recursion). `i` is at the root's `<`; returns the index after its end.
   */
  private scanRootElement(i: number): number {
    const b = this.b;
    const n = this.n;
    const maxDepth = this.limits.maxDepth;
    const stack = openElementStack(maxDepth);
    let depth = 0;
    let parentIsX = false; // the open depth-2 element is an unprefixed `x`
    i += 1; // past '<' of the root

    // Each turn of this loop starts at a start tag's name (just after '<').
    for (;;) {
      const nameStart = i;
      i = this.scanName(i);
      if (i < 0) return -1;
      const nameEnd = i;
      depth += 1;
      if (depth > maxDepth) return this.fail(`elements nested deeper than ${maxDepth}`, nameStart);
      let role = ROLE_OTHER;
      if (depth === 1) {
        role = ROLE_ROOT;
        this.rootIsMessage = this.spanEquals(nameStart, nameEnd, B_MESSAGE);
        this.rootNameStart = nameStart;
        this.rootNameEnd = nameEnd;
      } else if (depth === 2 && this.spanEquals(nameStart, nameEnd, B_X)) {
        role = ROLE_X;
      } else if (depth === 3 && parentIsX && this.spanEquals(nameStart, nameEnd, B_ITEM)) {
        role = ROLE_ITEM;
      }
      if (depth === 2 && this.originIdPending) {
        // The keyfind passes the text run before this child, then this child.
        if (!this.endRootRun() && this.spanEquals(nameStart, nameEnd, B_ORIGIN_ID)) {
          role = ROLE_ORIGIN_ID;
          this.originIdPending = false;
          this.originIdChild = 'element';
        }
      }
      i = this.scanAttributes(i, role);
      if (i < 0) return -1;
      if (role === ROLE_X) {
        const mucUser = this.ownNsSeen ? this.ownNsIsMucUser : this.rootNsIsMucUser;
        if (mucUser) this.hasMucUserX = true;
      }
      if (this.selfClosing) {
        depth -= 1;
        if (depth === 0) {
          this.endRootRun();
          return i;
        }
      } else {
        stack[2 * depth] = nameStart;
        stack[2 * depth + 1] = nameEnd;
        if (depth === 2) parentIsX = role === ROLE_X;
      }

      // Content of the innermost open element, until the next start tag.
      for (;;) {
        const textStart = i;
        i = this.scanText(i);
        if (i < 0) return -1;
        if (depth === 1 && this.originIdPending && i > textStart) this.addRootText(textStart, i);
        // scanText stops only at '<' (with at least one more byte) or fails.
        const next = b[i + 1];
        if (next === SLASH) {
          const start = stack[2 * depth];
          const len = stack[2 * depth + 1] - start;
          let j = i + 2;
          if (j + len > n) return this.fail('unexpected end in an end tag', j);
          for (let k = 0; k < len; k++) {
            if (b[j + k] !== b[start + k]) return this.fail('end tag does not match the open element', j);
          }
          j += len;
          // The end tag's name must end where the start tag's did: `</ab>` does not close `<a>`.
          if (j < n && isNameContinuation(b, j)) return this.fail('end tag does not match the open element', i + 2);
          j = this.skipWs(j);
          if (b[j] !== GT) return this.fail("expected '>' to close the end tag", j);
          i = j + 1;
          depth -= 1;
          if (depth === 0) {
            this.endRootRun();
            return i;
          }
        } else if (next === BANG) {
          if (b[i + 2] === DASH && b[i + 3] === DASH) {
            i = this.scanComment(i + 4);
          } else if (this.matches(i + 2, B_CDATA)) {
            const cdataStart = i + 9;
            i = this.scanCdata(cdataStart);
            if (i > 0 && depth === 1 && this.originIdPending) this.addRootCdata(cdataStart, i - 3);
          } else {
            return this.fail("'<!' that is neither a comment nor CDATA inside an element", i);
          }
          if (i < 0) return -1;
        } else if (next === QMARK) {
          i = this.scanPi(i + 2);
          if (i < 0) return -1;
        } else {
          i += 1;
          break; // a child start tag
        }
      }
    }
  }

  /**
   * Attributes of a start tag and its closing `>` or `/>`; `i` is just after the element name.
   * For the root, an `x` child and an `item` grandchild, remembers what the rules need.
   */
  private scanAttributes(i: number, role: number): number {
    const b = this.b;
    let count = 0;
    this.attrSet = null;
    this.ownNsSeen = false;
    this.ownNsIsMucUser = false;
    i = this.skipWs(i);
    for (;;) {
      if (i >= this.n) return this.fail('unexpected end in a start tag', i);
      const c = b[i];
      if (c === GT) {
        this.selfClosing = false;
        return i + 1;
      }
      if (c === SLASH) {
        if (b[i + 1] !== GT) return this.fail("expected '>' after '/' in a start tag", i + 1);
        this.selfClosing = true;
        return i + 2;
      }
      const nameStart = i;
      i = this.scanName(i);
      if (i < 0) return -1;
      const nameEnd = i;
      i = this.skipWs(i);
      if (b[i] !== EQ) return this.fail("expected '=' after an attribute name", i);
      i = this.skipWs(i + 1);
      const valueStart = i + 1;
      i = this.scanAttValue(i);
      if (i < 0) return -1;
      const valueEnd = i - 1;
      if (i < this.n && b[i] !== SLASH && b[i] !== GT && !isWs(b[i])) {
        return this.fail('white space required between attributes', i);
      }
      count += 1;
      if (count > this.limits.maxXmlAttributes) {
        return this.fail(`more than ${this.limits.maxXmlAttributes} attributes on one element`, nameStart);
      }
      if (this.isDuplicateAttribute(nameStart, nameEnd, count)) {
        return this.fail('duplicate attribute', nameStart);
      }
      if (this.isXmlnsName(nameStart, nameEnd)) {
        const chars = this.valueSimple ? this.valueChars : countCodePoints(this.attValueString(valueStart, valueEnd, false));
        if (chars > MAX_ATOM_CHARS) {
          return this.fail(`namespace name longer than ${MAX_ATOM_CHARS} characters`, valueStart);
        }
        if (nameEnd - nameStart === B_XMLNS.length && role !== ROLE_OTHER) {
          this.ownNsSeen = true;
          this.ownNsIsMucUser = this.attValueEquals(valueStart, valueEnd, B_MUC_USER, MUC_USER_NS);
          if (role === ROLE_ROOT) this.rootNsIsMucUser = this.ownNsIsMucUser;
          if (role === ROLE_ORIGIN_ID) this.originIdXmlns = this.rawValueString(valueStart, valueEnd);
        }
      } else if (role === ROLE_ROOT) {
        if (this.spanEquals(nameStart, nameEnd, B_TYPE)) {
          this.rootType = this.attValueEquals(valueStart, valueEnd, B_GROUPCHAT, 'groupchat')
            ? 'groupchat'
            : this.attValueString(valueStart, valueEnd, this.valueSimple);
        }
      } else if (role === ROLE_ORIGIN_ID && this.spanEquals(nameStart, nameEnd, B_ID)) {
        this.originIdValue = this.rawValueString(valueStart, valueEnd);
      } else if (role === ROLE_ITEM && this.spanEquals(nameStart, nameEnd, B_JID)) {
        this.jidCount += 1;
        if (this.jidCount === 1) {
          this.firstJidStart = valueStart;
          this.firstJidEnd = valueEnd;
          this.firstJidSimple = this.valueSimple;
        }
      }
      i = this.skipWs(i);
    }
  }

  // ---- the origin-id lookup among the root's children ---------------------------------------

  /** Text of the root's content, [start, end) of the payload, already checked by scanText. */
  private addRootText(start: number, end: number): void {
    if (this.rootRunDead) return;
    const b = this.b;
    for (let k = start; k < end; k++) {
      if (isWs(b[k])) {
        this.rootRunDead = true; // the usual case: indentation between the root's children
        return;
      }
    }
    if (end - start > 16 * ORIGIN_ID.length) {
      this.rootRunDead = true;
      return;
    }
    this.rootRun += this.rawValueString(start, end);
    if (this.rootRun.length > ORIGIN_ID.length) this.rootRunDead = true;
  }

  /** A CDATA section's content in the root: exml merges it with the text around it. */
  private addRootCdata(start: number, end: number): void {
    if (this.rootRunDead) return;
    if (end - start > 4 * ORIGIN_ID.length) {
      this.rootRunDead = true;
      return;
    }
    this.rootRun += decodeUtf8(this.b, start, end);
    if (this.rootRun.length > ORIGIN_ID.length) this.rootRunDead = true;
  }

  /** Ends the current text run of the root. @returns whether it reads exactly `origin-id` (the lookup's match). */
  private endRootRun(): boolean {
    const match = this.originIdPending && !this.rootRunDead && this.rootRun === ORIGIN_ID;
    if (match) {
      this.originIdPending = false;
      this.originIdChild = 'text';
    }
    this.rootRun = '';
    this.rootRunDead = false;
    return match;
  }

  /**
   * Text or an attribute value as exml's parser reads it: references replaced, every other
   * character as written (no white-space normalisation, unlike xmerl). Already validated.
   */
  private rawValueString(start: number, end: number): string {
    const b = this.b;
    let out = '';
    let i = start;
    while (i < end) {
      const c = b[i];
      if (c === AMP) {
        i = this.scanReference(i);
        out += String.fromCodePoint(this.refCp);
      } else if (c < 0x80) {
        out += String.fromCharCode(c);
        i += 1;
      } else {
        out += String.fromCodePoint(this.decodeChar(i));
        i += this.step;
      }
    }
    return out;
  }

  // ---- lexical pieces -----------------------------------------------------------------------

  /** A Name at i; returns the index after it. Malformed if it does not start with a name start. */
  private scanName(i: number): number {
    const b = this.b;
    const n = this.n;
    if (i >= n) return this.fail('unexpected end where a name was expected', i);
    const start = i;
    let chars = 1;
    let latin1 = true;
    const c0 = b[i];
    if (c0 < 0x80) {
      if ((ASCII_CLASS[c0] & C_NAME_START) === 0) return this.fail('invalid name start character', i);
      i += 1;
    } else {
      const cp = this.decodeChar(i);
      if (cp < 0 || !isNameStartChar(cp)) return this.fail('invalid name start character', i);
      latin1 = cp <= 0xff;
      i += this.step;
    }
    while (i < n) {
      const c = b[i];
      if (c < 0x80) {
        if ((ASCII_CLASS[c] & C_NAME) === 0) break;
        i += 1;
      } else {
        const cp = this.decodeChar(i);
        if (cp < 0) return this.fail('invalid UTF-8 or character in a name', i);
        if (!isNameChar(cp)) break;
        if (cp > 0xff) latin1 = false;
        i += this.step;
      }
      chars += 1;
    }
    if (latin1 && chars > MAX_ATOM_CHARS) {
      return this.fail(`name longer than ${MAX_ATOM_CHARS} characters`, start);
    }
    return i;
  }

  /** A quoted attribute value at i (the quote); returns the index after the closing quote. */
  private scanAttValue(i: number): number {
    const b = this.b;
    const n = this.n;
    const quote = b[i];
    if (quote !== DQUOTE && quote !== SQUOTE) return this.fail('attribute value must be quoted', i);
    i += 1;
    let simple = true;
    let chars = 0;
    for (;;) {
      if (i >= n) return this.fail('unterminated attribute value', i);
      const c = b[i];
      // Most bytes: ASCII above '<', which can be neither a quote, '&', '<' nor a control.
      if (c > LT && c < 0x80) {
        i += 1;
        chars += 1;
        continue;
      }
      if (c === quote) break;
      if (c >= 0x80) {
        const len = this.charLen(i);
        if (len < 0) return this.fail('invalid UTF-8 or character in an attribute value', i);
        i += len;
      } else if (c === AMP) {
        i = this.scanReference(i);
        if (i < 0) return -1;
        simple = false;
        continue;
      } else if (c === LT) {
        return this.fail("'<' in an attribute value", i);
      } else if (c < SPACE) {
        if (c !== TAB && c !== LF && c !== CR) return this.fail('control character in an attribute value', i);
        simple = false;
        i += 1;
      } else {
        i += 1;
      }
      chars += 1;
    }
    this.valueSimple = simple;
    this.valueChars = chars;
    return i + 1;
  }

  /**
   * Character data from i up to the next '<' (returned), with its references checked.
   * Fails at the end of the payload: text only ever ends at markup inside the root.
   */
  private scanText(i: number): number {
    const b = this.b;
    const n = this.n;
    for (;;) {
      if (i >= n) return this.fail('unexpected end inside an element (unclosed element)', i);
      const c = b[i];
      if (c > GT) {
        if (c < 0x80) {
          if (c === RBRACKET && b[i + 1] === RBRACKET && b[i + 2] === GT) {
            return this.fail("']]>' in text", i);
          }
          i += 1;
        } else if (this.validUtf8 && c < 0xe0) {
          i += 2; // a two-byte character of valid UTF-8 is always a legal XML character
        } else {
          const len = this.charLen(i);
          if (len < 0) return this.fail('invalid UTF-8 or character in text', i);
          i += len;
        }
      } else if (c === LT) {
        if (i + 1 >= n) return this.fail("unexpected end after '<'", i);
        return i;
      } else if (c === AMP) {
        i = this.scanReference(i);
        if (i < 0) return -1;
        // The reference re-reads a referenced character as if it had been written: `&#93;]>` is `]]>`.
        if (this.refCp === RBRACKET && b[i] === RBRACKET && b[i + 1] === GT) {
          return this.fail("']]>' in text (through a character reference)", i);
        }
      } else if (c < SPACE && c !== TAB && c !== LF && c !== CR) {
        return this.fail('control character in text', i);
      } else {
        i += 1;
      }
    }
  }

  /**
   * `&...;` at i; returns the index after ';' and sets refCp. Only the five predefined entities
   * and character references to legal characters: there is no DTD to declare any other.
   */
  private scanReference(i: number): number {
    const b = this.b;
    const at = i;
    i += 1;
    if (b[i] === HASH) {
      i += 1;
      let value = 0;
      let digits = 0;
      if (b[i] === 0x78 /* x */) {
        i += 1;
        for (;;) {
          const c = b[i];
          let d: number;
          if (c >= 0x30 && c <= 0x39) d = c - 0x30;
          else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
          else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
          else break;
          value = Math.min(value * 16 + d, 0x110000);
          digits += 1;
          i += 1;
        }
      } else {
        for (;;) {
          const c = b[i]; // undefined past the end: every comparison is false, so test for digits
          if (!(c >= 0x30 && c <= 0x39)) break;
          value = Math.min(value * 10 + (c - 0x30), 0x110000);
          digits += 1;
          i += 1;
        }
      }
      if (digits === 0 || b[i] !== SEMI) return this.fail('malformed character reference', at);
      if (!isXmlChar(value)) return this.fail('character reference to an illegal character', at);
      this.refCp = value;
      return i + 1;
    }
    // amp lt gt apos quot
    const c1 = b[i],
      c2 = b[i + 1],
      c3 = b[i + 2],
      c4 = b[i + 3],
      c5 = b[i + 4];
    if (c1 === 0x6c /* l */ && c2 === 0x74 && c3 === SEMI) {
      this.refCp = LT;
      return i + 3;
    }
    if (c1 === 0x67 /* g */ && c2 === 0x74 && c3 === SEMI) {
      this.refCp = GT;
      return i + 3;
    }
    if (c1 === 0x61 /* a */) {
      if (c2 === 0x6d && c3 === 0x70 && c4 === SEMI) {
        this.refCp = AMP;
        return i + 4;
      }
      if (c2 === 0x70 && c3 === 0x6f && c4 === 0x73 && c5 === SEMI) {
        this.refCp = SQUOTE;
        return i + 5;
      }
    }
    if (c1 === 0x71 /* q */ && c2 === 0x75 && c3 === 0x6f && c4 === 0x74 && c5 === SEMI) {
      this.refCp = DQUOTE;
      return i + 5;
    }
    return this.fail('unknown entity reference (only amp, lt, gt, apos, quot exist without a DTD)', at);
  }

  /** A comment body at i (after `<!--`); returns the index after `-->`. */
  private scanComment(i: number): number {
    const b = this.b;
    const n = this.n;
    const at = i - 4;
    for (;;) {
      if (i >= n) return this.fail('unterminated comment', at);
      const c = b[i];
      if (c === DASH && b[i + 1] === DASH) {
        if (b[i + 2] === GT) return i + 3;
        return this.fail("'--' inside a comment", i);
      }
      i = this.skipChar(i, 'a comment');
      if (i < 0) return -1;
    }
  }

  /** A CDATA section body at i (after `<![CDATA[`); returns the index after `]]>`. */
  private scanCdata(i: number): number {
    const b = this.b;
    const n = this.n;
    const at = i - 9;
    for (;;) {
      if (i >= n) return this.fail('unterminated CDATA section', at);
      const c = b[i];
      if (c === RBRACKET && b[i + 1] === RBRACKET && b[i + 2] === GT) return i + 3;
      i = this.skipChar(i, 'CDATA');
      if (i < 0) return -1;
    }
  }

  /** A processing instruction at i (after `<?`); returns the index after `?>`. */
  private scanPi(i: number): number {
    const b = this.b;
    const n = this.n;
    const at = i - 2;
    if ((b[i] | 0x20) === 0x78 && (b[i + 1] | 0x20) === 0x6d && (b[i + 2] | 0x20) === 0x6c) {
      // Targets starting with "xml" are reserved; the reference accepts only xml-stylesheet.
      if (!this.matches(i + 3, B_STYLESHEET)) {
        return this.fail('XML declaration or reserved PI target in the payload (the reference already prepends a declaration)', at);
      }
      i += 3 + B_STYLESHEET.length;
    } else {
      i = this.scanName(i);
      if (i < 0) return -1;
    }
    if (b[i] === QMARK && b[i + 1] === GT) return i + 2;
    if (!isWs(b[i])) return this.fail("expected white space or '?>' after a PI target", i);
    i = this.skipWs(i);
    for (;;) {
      if (i >= n) return this.fail('unterminated processing instruction', at);
      const c = b[i];
      if (c === QMARK && b[i + 1] === GT) return i + 2;
      i = this.skipChar(i, 'a PI');
      if (i < 0) return -1;
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The legal XML character at i inside `where` (a comment, CDATA, a PI): the index after it, or -1. */
  private skipChar(i: number, where: string): number {
    const c = this.b[i];
    if (c >= 0x80) {
      const len = this.charLen(i);
      return len < 0 ? this.fail(`invalid UTF-8 or character in ${where}`, i) : i + len;
    }
    if (c < SPACE && c !== TAB && c !== LF && c !== CR) return this.fail(`control character in ${where}`, i);
    return i + 1;
  }

  /**
   * The UTF-8 character at i (first byte >= 0x80) if it is valid UTF-8 (shortest form, no
   * surrogate, at most U+10FFFF) and a legal XML character; else -1. Sets `step`.
   */
  private decodeChar(i: number): number {
    const b = this.b;
    const n = this.n;
    const c = b[i];
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) {
      if (i + 1 >= n || (b[i + 1] & 0xc0) !== 0x80) return -1;
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      this.step = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (i + 2 >= n || (b[i + 1] & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80) return -1;
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      if (cp < 0x800) return -1;
      this.step = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (i + 3 >= n || (b[i + 1] & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80 || (b[i + 3] & 0xc0) !== 0x80) {
        return -1;
      }
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
      if (cp < 0x10000) return -1;
      this.step = 4;
    } else {
      return -1;
    }
    return isXmlChar(cp) ? cp : -1;
  }

  /**
   * Byte length of the non-ASCII character at i if it is legal, else -1. When the whole payload
   * is known to be valid UTF-8 (one native check up front), only U+FFFE/U+FFFF remain to refuse.
   */
  private charLen(i: number): number {
    if (this.validUtf8) {
      const b = this.b;
      const c = b[i];
      if (c < 0xe0) return 2;
      if (c < 0xf0) return c === 0xef && b[i + 1] === 0xbf && b[i + 2] >= 0xbe ? -1 : 3;
      return 4;
    }
    return this.decodeChar(i) < 0 ? -1 : this.step;
  }

  private skipWs(i: number): number {
    const b = this.b;
    const n = this.n;
    while (i < n) {
      const c = b[i];
      if (c !== SPACE && c !== LF && c !== TAB && c !== CR) break;
      i += 1;
    }
    return i;
  }

  private matches(i: number, what: Uint8Array): boolean {
    if (i + what.length > this.n) return false;
    for (let k = 0; k < what.length; k++) if (this.b[i + k] !== what[k]) return false;
    return true;
  }

  private spanEquals(start: number, end: number, what: Uint8Array): boolean {
    return end - start === what.length && this.matches(start, what);
  }

  /** `xmlns` or `xmlns:...`: the attributes whose values xmerl turns into atoms. */
  private isXmlnsName(start: number, end: number): boolean {
    const len = end - start;
    return (len === 5 || (len > 5 && this.b[start + 5] === 0x3a)) && this.matches(start, B_XMLNS);
  }

  /** Whether the decoded attribute value equals `expected`, without decoding when it is simple. */
  private attValueEquals(start: number, end: number, bytes: Uint8Array, expected: string): boolean {
    if (this.valueSimple) return this.spanEquals(start, end, bytes);
    return this.attValueString(start, end, false) === expected;
  }

  /**
   * The value of an attribute as the reference reads it (XML 1.0 §3.3.3 for CDATA attributes, as
   * xmerl implements it): each literal TAB, LF or CR becomes a space (CR LF gives two spaces: no
   * end-of-line folding), references are replaced, and after a character reference to white
   * space, the white space that follows it (literal or referenced) is dropped.
   */
  private attValueString(start: number, end: number, simple: boolean): string {
    if (simple) return decodeUtf8(this.b, start, end);
    const b = this.b;
    let out = '';
    let i = start;
    while (i < end) {
      const c = b[i];
      if (c === AMP) {
        const isCharRef = b[i + 1] === HASH;
        i = this.scanReference(i); // already validated by scanAttValue
        out += String.fromCodePoint(this.refCp);
        if (isCharRef && isWsCp(this.refCp)) {
          for (;;) {
            if (i < end && isWs(b[i])) {
              i += 1;
            } else if (i < end && b[i] === AMP && b[i + 1] === HASH) {
              const after = this.scanReference(i);
              if (!isWsCp(this.refCp)) break;
              i = after;
            } else {
              break;
            }
          }
        }
      } else if (c === TAB || c === LF || c === CR) {
        out += ' ';
        i += 1;
      } else if (c < 0x80) {
        out += String.fromCharCode(c);
        i += 1;
      } else {
        out += String.fromCodePoint(this.decodeChar(i));
        i += this.step;
      }
    }
    return out;
  }

  /** Names of this element's attributes so far are in attrStart/attrEnd[0 .. count-2]. */
  private isDuplicateAttribute(start: number, end: number, count: number): boolean {
    const b = this.b;
    const len = end - start;
    if (count <= DUPLICATE_SCAN_LINEAR_MAX) {
      for (let k = 0; k < count - 1; k++) {
        const s = attrStart[k];
        if (attrEnd[k] - s !== len) continue;
        let same = true;
        for (let m = 0; m < len; m++) {
          if (b[s + m] !== b[start + m]) {
            same = false;
            break;
          }
        }
        if (same) return true;
      }
      this.remember(count - 1, start, end);
      return false;
    }
    // Many attributes: a set keeps the check linear.
    if (this.attrSet === null) {
      this.attrSet = new Set();
      for (let k = 0; k < count - 1; k++) this.attrSet.add(latin1(b, attrStart[k], attrEnd[k]));
    }
    const key = latin1(b, start, end);
    if (this.attrSet.has(key)) return true;
    this.attrSet.add(key);
    return false;
  }

  private remember(k: number, start: number, end: number): void {
    attrStart[k] = start;
    attrEnd[k] = end;
  }
}

/** XML 1.0 Char: TAB, LF, CR, U+0020..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF. */
function isXmlChar(cp: number): boolean {
  return cp >= 0x20 ? cp <= 0xd7ff || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff) : cp === TAB || cp === LF || cp === CR;
}

function isWs(c: number): boolean {
  return c === SPACE || c === LF || c === TAB || c === CR;
}

const isWsCp = isWs;

/** Whether the byte at j continues a name (so the name before it is longer than expected). */
function isNameContinuation(b: Uint8Array, j: number): boolean {
  const c = b[j];
  if (c < 0x80) return (ASCII_CLASS[c] & C_NAME) !== 0;
  // A non-ASCII byte after a complete name: either a name character (a longer name) or
  // something the end tag does not allow; both mean "no match".
  return true;
}

/** Valid UTF-8 bytes to a string: a JS loop for short ASCII runs beats a native call's overhead. */
function decodeUtf8(b: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let s = '';
    for (let k = start; k < end; k++) {
      const c = b[k];
      if (c >= 0x80) return utf8.decode(b.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8.decode(b.subarray(start, end));
}

function countCodePoints(s: string): number {
  let count = 0;
  for (let k = 0; k < s.length; k++) {
    const u = s.charCodeAt(k);
    if (u < 0xdc00 || u > 0xdfff) count += 1;
  }
  return count;
}

function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let k = start; k < end; k++) s += String.fromCharCode(b[k]);
  return s;
}

/**
 * Attribute name spans of the element being scanned, for the duplicate check: reused across
 * scans (the decoder is synchronous); only the first DUPLICATE_SCAN_LINEAR_MAX are kept here.
 */
const attrStart = new Int32Array(DUPLICATE_SCAN_LINEAR_MAX);
const attrEnd = new Int32Array(DUPLICATE_SCAN_LINEAR_MAX);

/** Open element name spans [start, end) per depth, reused across scans (the decoder is synchronous). */
let sharedStack = new Int32Array(2 * (512 + 2));
function openElementStack(maxDepth: number): Int32Array {
  if (sharedStack.length < 2 * (maxDepth + 2)) sharedStack = new Int32Array(2 * (maxDepth + 2));
  return sharedStack;
}

/** Scans one payload: well-formedness plus the facts the xml rules need. */
export function scanMessage(payload: Uint8Array, limits: DecodeLimits): ScanResult {
  return new Scanner(payload, limits).scan();
}
