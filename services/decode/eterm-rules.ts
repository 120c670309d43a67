/**
 * The eterm rules of the semantics page (rules 0 to 7), on the bytes of term_to_binary(Packet),
 * as the reference escript's jid_from_eterm/1 evaluates them:
 *
 *   {xmlel, <<"message">>, MsgAttrs, MsgChildren} = binary_to_term(ETerm)          % else -1
 *   lists:keyfind(<<"type">>, 1, MsgAttrs) must be {_, <<"groupchat">>}            % else -2
 *   lists:keyfind([{<<"xmlns">>, ?MUC_USER}], 3, MsgChildren) = {xmlel, <<"x">>, _, XChildren}  % else -2
 *   {xmlel, _, ItemAttrs, _} = lists:keyfind(<<"item">>, 2, XChildren)            % else -1
 *   {_, JID} = lists:keyfind(<<"jid">>, 1, ItemAttrs), JID a binary                 % else -1
 *
 * A badarg of lists:keyfind (not a list, improper tail before a match) is a crash there: -1.
 * exml 4 extension: an attribute map stands for the attribute list (same keys, same values), and
 * the muc#user x is also found by the map #{<<"xmlns">> => ?MUC_USER}.
 * The term is validated whole first (binary_to_term rejects a bad byte anywhere), then walked in place.
 */
import { fail, type Answer, type Failure } from './answer.js';
import {
  atomEquals,
  BADARG,
  binaryAt,
  binaryEquals,
  binaryLength,
  binaryStart,
  findMapKey,
  keyfind,
  keyfindBinary,
  NOT_FOUND,
  skipTerm,
  tupleArity,
  tupleElement,
  tupleFirst,
} from './eterm-cursor.js';
import { inflateCompressedTerm } from './eterm-inflate.js';
import { findDuplicateMapKey } from './eterm-map-keys.js';
import * as T from './eterm-tags.js';
import { validateTerm } from './eterm-validate.js';
import { bareJidFromUtf8 } from './jid.js';
import type { DecodeLimits } from './limits.js';

export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
export const XMLEL = ascii('xmlel');
const MESSAGE = ascii('message');
export const TYPE = ascii('type');
export const GROUPCHAT = ascii('groupchat');
export const XMLNS = ascii('xmlns');
const MUC_USER = ascii('http://jabber.org/protocol/muc#user');
const X = ascii('x');
const ITEM = ascii('item');
const JID = ascii('jid');

/** An attribute name as a test of a map key, made once: no closure per lookup on the hot path. */
export type NameTest = (b: Uint8Array, pos: number) => boolean;
export const nameTest =
  (name: Uint8Array): NameTest =>
  (b, pos) =>
    binaryEquals(b, pos, name);
export const isTypeKey = nameTest(TYPE);
const isJidKey = nameTest(JID);
export const isXmlnsKey = nameTest(XMLNS);

const mapPositions: number[] = [];

export function extractFromEterm(payload: Uint8Array, limits: DecodeLimits): Answer {
  const root = openTerm(payload, limits);
  if (typeof root !== 'number') return root;
  return applyRules(openedTerm, root);
}

/** Set by openTerm: the bytes the opened term lies in (the payload, or what it inflated to). */
export let openedTerm: Uint8Array = new Uint8Array(0);

/**
 * binary_to_term as far as the rules need it: checks the version byte, inflates a compressed term,
 * validates the whole term within the limits. The answers of every field (sender, origin_id,
 * is_groupchat) start here. @returns the root term's offset in `openedTerm`, or why it does not decode.
 */
export function openTerm(payload: Uint8Array, limits: DecodeLimits): number | Failure {
  if (payload.length === 0) return fail('malformed', 'empty payload');
  if (payload[0] !== 131 /* VERSION_MAGIC */) return fail('malformed', `not an Erlang external term: first byte ${payload[0]}, not 131`);
  // One array type through the reader keeps V8's element loads monomorphic: Buffers are what
  // stdio, gRPC and the database drivers hand over, so a plain Uint8Array gets a Buffer view.
  let b: Uint8Array = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  let root = 1;
  if (payload.length > 1 && payload[1] === 80 /* COMPRESSED */) {
    const inflated = inflateCompressedTerm(b, limits);
    if (!(inflated instanceof Uint8Array)) return inflated;
    b = inflated;
    root = 0;
  }
  mapPositions.length = 0;
  const end = validateTerm(b, root, limits.maxDepth, mapPositions);
  if (typeof end === 'string') return fail('malformed', end);
  if (mapPositions.length > 0) {
    let duplicate: string | undefined;
    try {
      duplicate = findDuplicateMapKey(b, mapPositions);
    } catch (error) {
      // Comparing keys recurses; only a depth limit raised far above the default can exhaust the stack.
      if (!(error instanceof RangeError)) throw error;
      duplicate = 'map keys nested too deeply to compare';
    }
    if (duplicate !== undefined) return fail('malformed', duplicate);
  }
  openedTerm = b;
  return root;
}

function applyRules(b: Uint8Array, root: number): Answer {
  // Rule 1
  if (tupleArity(b, root) !== 4) return fail('malformed', 'the term is not a 4-tuple {xmlel, Name, Attrs, Children}');
  const tag = tupleFirst(b, root);
  if (!atomEquals(b, tag, XMLEL)) return fail('malformed', 'the term is not an xmlel element');
  const name = skipTerm(b, tag);
  if (!binaryEquals(b, name, MESSAGE)) return fail('malformed', 'the element is not a <<"message">>');
  const attrs = skipTerm(b, name);
  const children = skipTerm(b, attrs);

  // Rule 2
  const typeValue = attributeValue(b, attrs, TYPE, isTypeKey);
  if (typeValue === BADARG) return fail('malformed', 'the message attributes are not a proper list (keyfind of type fails)');
  if (typeValue === NOT_FOUND) return fail('not_groupchat', 'the message has no type attribute');
  if (typeValue === NOT_A_PAIR) return fail('not_groupchat', 'the first type attribute is not a {Name, Value} pair');
  if (!binaryEquals(b, typeValue, GROUPCHAT)) return fail('not_groupchat', 'the message type is not groupchat');

  // Rule 3
  const x = keyfind(b, children, 3, isMucUserAttributes);
  if (x === BADARG) return fail('malformed', 'the message children are not a proper list (keyfind of the muc#user x fails)');
  if (x === NOT_FOUND) return fail('not_groupchat', 'no child has exactly the attributes [{xmlns, muc#user}]');
  if (tupleArity(b, x) !== 4) return fail('not_groupchat', 'the child with the muc#user attributes is not an xmlel');
  const xTag = tupleFirst(b, x);
  if (!atomEquals(b, xTag, XMLEL)) return fail('not_groupchat', 'the child with the muc#user attributes is not an xmlel');
  const xName = skipTerm(b, xTag);
  if (!binaryEquals(b, xName, X)) return fail('not_groupchat', 'the first child with the muc#user attributes is not named x');
  const xChildren = skipTerm(b, skipTerm(b, xName));

  // Rule 4
  const item = keyfindBinary(b, xChildren, 2, ITEM);
  if (item === BADARG) return fail('malformed', 'the x children are not a proper list (keyfind of item fails)');
  if (item === NOT_FOUND) return fail('malformed', 'the muc#user x has no item');
  if (tupleArity(b, item) !== 4 || !atomEquals(b, tupleFirst(b, item), XMLEL)) {
    return fail('malformed', 'the first child of x named item is not an xmlel element');
  }
  const itemAttrs = tupleElement(b, item, 3);

  // Rule 5
  const jidValue = attributeValue(b, itemAttrs, JID, isJidKey);
  if (jidValue === BADARG) return fail('malformed', 'the item attributes are not a proper list (keyfind of jid fails)');
  if (jidValue === NOT_FOUND) return fail('malformed', 'the item has no jid attribute');
  if (jidValue === NOT_A_PAIR) return fail('malformed', 'the first jid attribute is not a {Name, Value} pair');
  if (!binaryAt(b, jidValue)) return fail('malformed', 'the jid attribute value is not a binary');

  // Rule 6
  const jid = bareJidFromUtf8(b, binaryStart, binaryStart + binaryLength);
  if (jid === undefined) return fail('malformed', 'the jid attribute value is not valid UTF-8');
  return { jid };
}

export const NOT_A_PAIR = -3;

/**
 * exml_query:attr/3's lookup: the value of the first attribute `name` (`isName`: nameTest(name))
 * in an attribute list, or in an attribute map (exml 4).
 * @returns the value's offset, NOT_FOUND, BADARG or NOT_A_PAIR (a case_clause crash in exml_query).
 */
export function attributeValue(b: Uint8Array, attrs: number, name: Uint8Array, isName: NameTest): number {
  if (b[attrs] === 116 /* MAP_EXT */) {
    const key = findMapKey(b, attrs, isName);
    return key === NOT_FOUND ? NOT_FOUND : skipTerm(b, key);
  }
  const pair = keyfindBinary(b, attrs, 1, name);
  if (pair < 0) return pair;
  if (tupleArity(b, pair) !== 2) return NOT_A_PAIR;
  return tupleElement(b, pair, 2);
}

/** Does the term equal [{<<"xmlns">>, ?MUC_USER}] (or, exml 4, #{<<"xmlns">> => ?MUC_USER})? */
function isMucUserAttributes(b: Uint8Array, pos: number): boolean {
  if (b[pos] === 116 /* MAP_EXT */) {
    if (T.readU32(b, pos + 1) !== 1) return false;
    return isXmlnsKey(b, pos + 5) && binaryEquals(b, skipTerm(b, pos + 5), MUC_USER);
  }
  // A list of exactly one element, the pair, however its LIST_EXT cells are cut.
  let p = pos;
  let seen = 0;
  for (;;) {
    const tag = b[p];
    if (tag === 106 /* NIL_EXT */) return seen === 1;
    if (tag === 107 /* STRING_EXT */) return seen === 1 && T.readU16(b, p + 1) === 0;
    if (tag !== 108 /* LIST_EXT */) return false;
    const count = T.readU32(b, p + 1);
    p += 5;
    for (let i = 0; i < count; i++) {
      if (++seen > 1) return false;
      if (tupleArity(b, p) !== 2) return false;
      const key = tupleFirst(b, p);
      if (!isXmlnsKey(b, key)) return false;
      const value = skipTerm(b, key);
      if (!binaryEquals(b, value, MUC_USER)) return false;
      p = skipTerm(b, value);
    }
  }
}
