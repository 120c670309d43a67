/**
 * The origin_id and is_groupchat answers of an eterm payload (docs/extraction-rules.md, "origin_id"
 * and "is_groupchat"), as MongooseIM computes them when it archives a message:
 *
 *   3.7.0  mod_mam_utils:get_origin_id(Packet) ->
 *              exml_query:path(Packet, [{element_with_ns, <<"origin-id">>, ?NS_STANZAID}, {attr, <<"id">>}], none)
 *   6.2.1  mod_mam_utils:is_groupchat(exml_query:attr(Packet, <<"type">>))      % =:= <<"groupchat">>
 *
 * with exml_query as MongooseIM 3.7.0 pinned it (esl/exml 6ca4f88):
 *   subelement_with_name_and_ns: lists:keyfind(Name, 2, Children), then that one tuple's xmlns must be NS
 *   attr(#xmlel{attrs = Attrs}, Name, Default): lists:keyfind(Name, 1, Attrs) must be {Name, V} or false
 * A crash of those functions (badarg of keyfind, a found tuple that is not an #xmlel{}, an attribute
 * tuple that is not a pair) is `malformed`. exml 4 attribute maps stand for attribute lists, as
 * for the sender.
 */
import { fail } from './answer.js';
import {
  atomEquals,
  BADARG,
  binaryAt,
  binaryEquals,
  binaryLength,
  binaryStart,
  findMapKey,
  keyfindBinary,
  NOT_FOUND,
  skipTerm,
  tupleArity,
  tupleElement,
  tupleFirst,
} from './eterm-cursor.js';
import { openedTerm, openTerm } from './eterm-rules.js';
import type { DecodeLimits } from './limits.js';
import type { FieldAnswers, GroupchatAnswer, OriginIdAnswer } from './message-fields.js';
import { decodeStrictUtf8 } from './utf8.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const XMLEL = ascii('xmlel');
const TYPE = ascii('type');
const GROUPCHAT = ascii('groupchat');
const XMLNS = ascii('xmlns');
const ORIGIN_ID = ascii('origin-id');
const ID = ascii('id');
/** ?NS_STANZAID of MongooseIM's mongoose_ns.hrl (XEP-0359). */
const NS_STANZAID = ascii('urn:xmpp:sid:0');

const NOT_A_PAIR = -3;

export function fieldsFromEterm(payload: Uint8Array, limits: DecodeLimits): FieldAnswers {
  const root = openTerm(payload, limits);
  if (typeof root !== 'number') return { originId: root, isGroupchat: root };
  const b = openedTerm;
  if (!isXmlel(b, root)) {
    // Both functions need an #xmlel{}; MongooseIM archived nothing else, so this is not its message.
    const notElement = fail('malformed', 'the term is not an xmlel element {xmlel, Name, Attrs, Children}');
    return { originId: notElement, isGroupchat: notElement };
  }
  return { originId: originId(b, root), isGroupchat: isGroupchat(b, root) };
}

function isXmlel(b: Uint8Array, pos: number): boolean {
  return tupleArity(b, pos) === 4 && atomEquals(b, tupleFirst(b, pos), XMLEL);
}

function isGroupchat(b: Uint8Array, root: number): GroupchatAnswer {
  const value = attr(b, tupleElement(b, root, 3), TYPE);
  if (value === BADARG) return fail('malformed', 'the message attributes are not a proper list (keyfind of type fails)');
  if (value === NOT_A_PAIR) return fail('malformed', 'the first type attribute is not a {Name, Value} pair');
  if (value === NOT_FOUND) return { isGroupchat: false };
  return { isGroupchat: binaryEquals(b, value, GROUPCHAT) };
}

function originId(b: Uint8Array, root: number): OriginIdAnswer {
  const found = keyfindBinary(b, tupleElement(b, root, 4), 2, ORIGIN_ID);
  if (found === BADARG) return fail('malformed', 'the message children are not a proper list (keyfind of origin-id fails)');
  if (found === NOT_FOUND) return { originId: null };
  if (!isXmlel(b, found)) return fail('malformed', 'the first child named origin-id is not an xmlel element');
  const attrs = tupleElement(b, found, 3);
  const ns = attr(b, attrs, XMLNS);
  if (ns === BADARG) return fail('malformed', 'the origin-id attributes are not a proper list (keyfind of xmlns fails)');
  if (ns === NOT_A_PAIR) return fail('malformed', 'the first xmlns attribute of origin-id is not a {Name, Value} pair');
  if (ns === NOT_FOUND || !binaryEquals(b, ns, NS_STANZAID)) return { originId: null };
  const id = attr(b, attrs, ID);
  if (id === BADARG) return fail('malformed', 'the origin-id attributes are not a proper list (keyfind of id fails)');
  if (id === NOT_A_PAIR) return fail('malformed', 'the first id attribute of origin-id is not a {Name, Value} pair');
  if (id === NOT_FOUND) return { originId: null };
  if (!binaryAt(b, id)) return fail('malformed', 'the origin-id id attribute value is not a binary');
  const text = decodeStrictUtf8(b, binaryStart, binaryStart + binaryLength);
  if (text === undefined) return fail('malformed', 'the origin-id id attribute value is not valid UTF-8');
  return { originId: text };
}

/**
 * exml_query:attr/3's lookup in a list (or, exml 4, a map) of attributes.
 * @returns the value's offset, NOT_FOUND, BADARG or NOT_A_PAIR (a case_clause crash in exml_query).
 */
function attr(b: Uint8Array, attrs: number, name: Uint8Array): number {
  if (b[attrs] === 116 /* MAP_EXT */) {
    const key = findMapKey(b, attrs, (bytes, pos) => binaryEquals(bytes, pos, name));
    return key === NOT_FOUND ? NOT_FOUND : skipTerm(b, key);
  }
  const pair = keyfindBinary(b, attrs, 1, name);
  if (pair < 0) return pair;
  if (tupleArity(b, pair) !== 2) return NOT_A_PAIR;
  return tupleElement(b, pair, 2);
}
