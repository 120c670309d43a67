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
  keyfindBinary,
  NOT_FOUND,
  tupleArity,
  tupleElement,
  tupleFirst,
} from './eterm-cursor.js';
import { ascii, attributeValue, GROUPCHAT, isTypeKey, isXmlnsKey, nameTest, NOT_A_PAIR, openedTerm, openTerm, TYPE, XMLEL, XMLNS } from './eterm-rules.js';
import type { DecodeLimits } from './limits.js';
import type { FieldAnswers, GroupchatAnswer, OriginIdAnswer } from './message-fields.js';
import { decodeStrictUtf8 } from './utf8.js';

const ORIGIN_ID = ascii('origin-id');
const ID = ascii('id');
const isIdKey = nameTest(ID);
/** ?NS_STANZAID of MongooseIM's mongoose_ns.hrl (XEP-0359). */
const NS_STANZAID = ascii('urn:xmpp:sid:0');

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
  const value = attributeValue(b, tupleElement(b, root, 3), TYPE, isTypeKey);
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
  const ns = attributeValue(b, attrs, XMLNS, isXmlnsKey);
  if (ns === BADARG) return fail('malformed', 'the origin-id attributes are not a proper list (keyfind of xmlns fails)');
  if (ns === NOT_A_PAIR) return fail('malformed', 'the first xmlns attribute of origin-id is not a {Name, Value} pair');
  if (ns === NOT_FOUND || !binaryEquals(b, ns, NS_STANZAID)) return { originId: null };
  const id = attributeValue(b, attrs, ID, isIdKey);
  if (id === BADARG) return fail('malformed', 'the origin-id attributes are not a proper list (keyfind of id fails)');
  if (id === NOT_A_PAIR) return fail('malformed', 'the first id attribute of origin-id is not a {Name, Value} pair');
  if (id === NOT_FOUND) return { originId: null };
  if (!binaryAt(b, id)) return fail('malformed', 'the origin-id id attribute value is not a binary');
  const text = decodeStrictUtf8(b, binaryStart, binaryStart + binaryLength);
  if (text === undefined) return fail('malformed', 'the origin-id id attribute value is not valid UTF-8');
  return { originId: text };
}
